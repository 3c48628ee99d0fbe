"""`CatCounter`: image in, number of cats (with boxes, scores and timings) out.

This is the API the enclave server calls: build one `CatCounter` per process (the onnxruntime
session behind it is cached and warmed up), then call `count_bytes(data)` per job, or
`load_image` + `count(array)`. Pipeline: letterbox -> ONNX -> decode -> per-class NMS -> keep the
cat class -> drop "group" boxes -> map boxes back to original pixels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ccc.counting.decoders import decode
from ccc.counting.images import DEFAULT_MAX_PIXELS, load_image
from ccc.counting.letterbox import Letterbox, preprocess
from ccc.counting.postprocess import nms_per_class, suppress_groups
from ccc.counting.session import LoadedModel, SessionProfile, load_model
from ccc.counting.spec import DetectorSpec


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original image pixels
    score: float

    def to_dict(self) -> dict[str, object]:
        return {"box": [round(value, 1) for value in self.box], "score": round(self.score, 3)}


@dataclass(frozen=True)
class Timings:
    pre_ms: float
    infer_ms: float
    post_ms: float

    @property
    def total_ms(self) -> float:
        return self.pre_ms + self.infer_ms + self.post_ms


@dataclass(frozen=True)
class ModelInfo:
    name: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


@dataclass(frozen=True)
class CountResult:
    cats: int
    detections: tuple[Detection, ...]  # best score first
    timings: Timings
    image_size: tuple[int, int]  # width, height

    @property
    def best_score(self) -> float | None:
        return max((item.score for item in self.detections), default=None)


class CatCounter:
    """Counts cats with the detector described by `spec` (see `ccc.counting.spec`)."""

    def __init__(self, spec: DetectorSpec, *, threads: int | None = None, profile: SessionProfile = "tuned") -> None:
        self.spec = spec
        self._model: LoadedModel = load_model(spec, threads=threads, profile=profile)

    @property
    def model(self) -> ModelInfo:
        return ModelInfo(name=self.spec.name, sha256=self._model.sha256)

    def count_bytes(self, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> CountResult:
        """Decode untrusted image bytes (raises `ImageError` with a reason) and count the cats."""
        return self.count(load_image(data, max_pixels=max_pixels))

    def count(self, image: np.ndarray) -> CountResult:
        """Count cats in an (H, W, 3) uint8 RGB image."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            shape = getattr(image, "shape", None)
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {type(image).__name__} {shape}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("image has no pixels")
        outputs, placement, pre_ms, infer_ms = self._infer(image)
        after_infer = time.perf_counter()
        detections = postprocess(outputs, placement, self.spec)
        end = time.perf_counter()
        return CountResult(
            cats=len(detections),
            detections=detections,
            timings=Timings(pre_ms=pre_ms, infer_ms=infer_ms, post_ms=(end - after_infer) * 1000),
            image_size=(int(image.shape[1]), int(image.shape[0])),
        )

    def raw_outputs(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], Letterbox]:
        """The model's raw outputs and the letterbox placement (for threshold sweeps and debugging)."""
        outputs, placement, _pre_ms, _infer_ms = self._infer(image)
        return outputs, placement

    def _infer(self, image: np.ndarray) -> tuple[dict[str, np.ndarray], Letterbox, float, float]:
        """Pre-process and run the session; no per-call state on `self`, so threads may share a counter."""
        start = time.perf_counter()
        tensor, placement = preprocess(image, self.spec)
        after_pre = time.perf_counter()
        raw = self._model.session.run(None, {self._model.input_name: tensor})
        after_infer = time.perf_counter()
        outputs = dict(zip(self._model.output_names, raw, strict=True))
        return outputs, placement, (after_pre - start) * 1000, (after_infer - after_pre) * 1000


def postprocess(outputs: Mapping[str, np.ndarray], placement: Letterbox, spec: DetectorSpec) -> tuple[Detection, ...]:
    """Decode -> per-class NMS -> cat class only -> drop group boxes -> original pixels, best first."""
    found = decode(outputs, spec)
    kept = nms_per_class(found.boxes, found.scores, found.class_ids, spec.iou_threshold)
    cats = kept[found.class_ids[kept] == spec.cat_class][: spec.max_detections]
    boxes = found.boxes[cats]
    scores = found.scores[cats]
    not_group = suppress_groups(boxes, spec.group_threshold, spec.group_min_members)
    boxes, scores = placement.to_original(boxes[not_group]), scores[not_group]
    return tuple(
        Detection(box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), score=float(s))
        for b, s in zip(boxes, scores, strict=True)
    )
