"""Turn a detector's raw outputs into candidate boxes (network-input pixels), scores and classes.

One function per supported output layout (see `ccc_enclave.counting.spec` for the layouts). Every decoder
returns candidates whose score is at least the given threshold; NMS happens afterwards, so decoders
stay pure array transforms that are easy to test against hand-built tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ccc_enclave.counting.spec import DetectorSpec
from ccc_enclave.errors import EnclaveError


class DecodeError(EnclaveError, RuntimeError):
    """The model's outputs do not have the layout its spec promises (a wrong spec, not a bad image)."""


@dataclass(frozen=True)
class Candidates:
    boxes: np.ndarray  # [M, 4] float32 xyxy in network-input pixels
    scores: np.ndarray  # [M] float32
    class_ids: np.ndarray  # [M] int64

    @staticmethod
    def empty() -> Candidates:
        return Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def _output(outputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in outputs:
        raise DecodeError(f"model has no output named {name!r} (outputs: {sorted(outputs)})")
    return np.asarray(outputs[name])


def _single_output(outputs: Mapping[str, np.ndarray], spec: DetectorSpec) -> np.ndarray:
    if spec.output_name is not None:
        return _output(outputs, spec.output_name)
    if not outputs:
        raise DecodeError("model produced no outputs")
    return np.asarray(next(iter(outputs.values())))


def _threshold(
    class_scores: np.ndarray, threshold: float, classes: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(row, class) index pairs with score >= threshold, for [M, C] scores; only `classes` if given.

    Restricting to the classes the counter reads (cat and its competitors, 10 of 80) gives the same
    pairs for those classes, in the same order, at an eighth of the comparisons.
    """
    if classes is None:
        rows, found = np.nonzero(class_scores >= threshold)
        return rows, found.astype(np.int64)
    rows, columns = np.nonzero(class_scores[:, classes] >= threshold)
    return rows, classes[columns]


def decode_nanodet(
    outputs: Mapping[str, np.ndarray], spec: DetectorSpec, threshold: float, classes: np.ndarray | None = None
) -> Candidates:
    """NanoDet (GFL head): per stride, class scores + per-side distance distributions."""
    width, height = spec.input_wh
    bins = spec.reg_max + 1
    all_boxes, all_scores, all_classes = [], [], []
    for stride in spec.strides:
        cls = _output(outputs, f"cls_{stride}")
        box = _output(outputs, f"box_{stride}")
        grid_w, grid_h = width // stride, height // stride
        cells = grid_w * grid_h
        if cls.shape != (1, cells, spec.num_classes):
            raise DecodeError(f"cls_{stride} has shape {cls.shape}, expected (1, {cells}, {spec.num_classes})")
        if box.shape != (1, cells, 4 * bins):
            raise DecodeError(f"box_{stride} has shape {box.shape}, expected (1, {cells}, {4 * bins})")
        rows, found = _threshold(cls[0], threshold, classes)
        if rows.size == 0:
            continue
        cell_ids = np.unique(rows)
        logits = box[0, cell_ids].astype(np.float32).reshape(-1, 4, bins)
        logits -= logits.max(axis=2, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=2, keepdims=True)
        distances = (probs @ np.arange(bins, dtype=np.float32)) * stride  # [K, 4]: l, t, r, b
        cx = (cell_ids % grid_w + 0.5) * stride
        cy = (cell_ids // grid_w + 0.5) * stride
        cell_boxes = np.stack(
            [cx - distances[:, 0], cy - distances[:, 1], cx + distances[:, 2], cy + distances[:, 3]], axis=1
        )
        position = np.searchsorted(cell_ids, rows)
        all_boxes.append(cell_boxes[position])
        all_scores.append(cls[0, rows, found])
        all_classes.append(found)
    if not all_boxes:
        return Candidates.empty()
    boxes = np.concatenate(all_boxes).astype(np.float32)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    return Candidates(boxes, np.concatenate(all_scores).astype(np.float32), np.concatenate(all_classes))


def _cxcywh_to_xyxy(values: np.ndarray) -> np.ndarray:
    cx, cy, w, h = values[:, 0], values[:, 1], values[:, 2], values[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def decode_yolov5(
    outputs: Mapping[str, np.ndarray], spec: DetectorSpec, threshold: float, classes: np.ndarray | None = None
) -> Candidates:
    """YOLOv5 export: [1, N, 5 + C] rows of cx, cy, w, h, objectness, class probabilities."""
    raw = _single_output(outputs, spec)
    if raw.ndim != 3 or raw.shape[0] != 1 or raw.shape[2] != 5 + spec.num_classes:
        raise DecodeError(f"yolov5 output has shape {raw.shape}, expected (1, N, {5 + spec.num_classes})")
    rows = raw[0].astype(np.float32)
    scores = rows[:, 4:5] * rows[:, 5:]
    index, found = _threshold(scores, threshold, classes)
    return Candidates(_cxcywh_to_xyxy(rows[index, :4]), scores[index, found], found)


def decode_yolov8(
    outputs: Mapping[str, np.ndarray], spec: DetectorSpec, threshold: float, classes: np.ndarray | None = None
) -> Candidates:
    """YOLOv8 export: [1, 4 + C, N] columns of cx, cy, w, h, class scores; no objectness."""
    raw = _single_output(outputs, spec)
    if raw.ndim != 3 or raw.shape[0] != 1 or raw.shape[1] != 4 + spec.num_classes:
        raise DecodeError(f"yolov8 output has shape {raw.shape}, expected (1, {4 + spec.num_classes}, N)")
    rows = raw[0].T.astype(np.float32)
    scores = rows[:, 4:]
    index, found = _threshold(scores, threshold, classes)
    return Candidates(_cxcywh_to_xyxy(rows[index, :4]), scores[index, found], found)


DECODERS: dict[str, Callable[[Mapping[str, np.ndarray], DetectorSpec, float, np.ndarray | None], Candidates]] = {
    "nanodet": decode_nanodet,
    "yolov5": decode_yolov5,
    "yolov8": decode_yolov8,
}


def decode(
    outputs: Mapping[str, np.ndarray],
    spec: DetectorSpec,
    threshold: float | None = None,
    classes: np.ndarray | None = None,
) -> Candidates:
    """Candidates scoring at least `threshold` (default: the spec's score threshold), of `classes` if given."""
    return DECODERS[spec.decoder](outputs, spec, spec.score_threshold if threshold is None else threshold, classes)
