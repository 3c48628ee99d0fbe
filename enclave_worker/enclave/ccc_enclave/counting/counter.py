"""`CatCounter`: image in, number of cats (with boxes, scores and timings) out.

This is the API the enclave server calls: build one `CatCounter` per process (the onnxruntime
session behind it is cached and warmed up), then call `count_bytes(data)` per job, or
`load_image` + `count(array)`. Pipeline, per view (the whole image, plus tiles if the spec asks):
letterbox -> ONNX -> decode -> per-class NMS -> back to original pixels; then over all views:
score threshold -> drop cats a competing class out-scores -> NMS across views -> drop group boxes
and nested duplicates. `collect` + `finalize` split that pipeline so threshold sweeps run the
model once per image.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ccc_enclave.counting.batch_input import BatchWriter, ViewPass
from ccc_enclave.counting.decoders import decode
from ccc_enclave.counting.images import DEFAULT_MAX_PIXELS, load_image
from ccc_enclave.counting.letterbox import Letterbox, preprocess
from ccc_enclave.counting.postprocess import nms, nms_per_class, suppress_competitors, suppress_groups
from ccc_enclave.counting.session import LoadedModel, SessionProfile, available_cpus, load_model, views_per_image
from ccc_enclave.counting.spec import DetectorSpec
from ccc_enclave.counting.views import View, plan_views


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


@dataclass(frozen=True)
class Collected:
    """Per-view detections (after per-class NMS) of the cat and competing classes, original pixels."""

    boxes: np.ndarray  # [M, 4] float32
    scores: np.ndarray  # [M] float32
    class_ids: np.ndarray  # [M] int64
    view_ids: np.ndarray  # [M] int64, 0 = whole image
    pre_ms: float
    infer_ms: float
    post_ms: float


Pipeline = Literal["optimised", "reference"]


class CatCounter:
    """Counts cats with the detector described by `spec` (see `ccc_enclave.counting.spec`). Thread-safe.

    `pipeline="optimised"` (the default, what the enclave runs) writes every view into one batch
    tensor (`batch_input.BatchWriter`) and runs them in one onnxruntime call when the model has a
    dynamic batch axis (per view otherwise), and decodes only the classes the counter reads.
    `pipeline="reference"` is the earlier path, one `letterbox.preprocess` and one call per view,
    kept so `ccc bench count` can prove the two give the same counts and boxes.

    `concurrent_jobs`: how many images the caller counts at once on these CPUs. One (`ccc count`,
    `ccc bench count`): the tuned session's threads spin-wait between parallel sections, which is
    faster when nothing else needs the CPUs; more (the enclave counts two jobs at once): they
    sleep instead, so the other job's decryption, decoding and encryption get the CPU
    (`session.session_options`). Only the session's waiting changes, never the arithmetic.
    """

    def __init__(
        self,
        spec: DetectorSpec,
        *,
        threads: int | None = None,
        profile: SessionProfile = "tuned",
        pipeline: Pipeline = "optimised",
        concurrent_jobs: int = 1,
    ) -> None:
        if concurrent_jobs < 1:
            raise ValueError("concurrent_jobs must be >= 1")
        self.spec = spec
        self.pipeline: Pipeline = pipeline
        warm_up_batch = views_per_image(spec) if pipeline == "optimised" else 1
        self._model: LoadedModel = load_model(
            spec, threads=threads, profile=profile, warm_up_batch=warm_up_batch, spinning=concurrent_jobs == 1
        )
        self._writer = BatchWriter(spec, workers=min(available_cpus(), views_per_image(spec)))
        self._wanted = np.asarray((spec.cat_class, *spec.competitors), dtype=np.int64)

    @property
    def model(self) -> ModelInfo:
        return ModelInfo(name=self.spec.name, sha256=self._model.sha256)

    @property
    def startup_ms(self) -> dict[str, float]:
        """How long loading the model took when this process first loaded it (read, hash, create, warm_up)."""
        return dict(self._model.startup_ms)

    @property
    def batched(self) -> bool:
        """True when an image's views go to onnxruntime in one call (optimised path, dynamic batch axis)."""
        return self.pipeline == "optimised" and self._model.batched

    def count_bytes(self, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> CountResult:
        """Decode untrusted image bytes (raises `ImageError` with a reason) and count the cats."""
        return self.count(load_image(data, max_pixels=max_pixels))

    def count(self, image: np.ndarray) -> CountResult:
        """Count cats in an (H, W, 3) uint8 RGB image."""
        collected = self.collect(image)
        start = time.perf_counter()
        detections = finalize(collected, self.spec)
        post_ms = collected.post_ms + (time.perf_counter() - start) * 1000
        return CountResult(
            cats=len(detections),
            detections=detections,
            timings=Timings(pre_ms=collected.pre_ms, infer_ms=collected.infer_ms, post_ms=post_ms),
            image_size=(int(image.shape[1]), int(image.shape[0])),
        )

    def collect(self, image: np.ndarray, *, min_score: float | None = None) -> Collected:
        """Run every view and gather candidates scoring >= `min_score` (default: the spec's threshold)."""
        _check_image(image)
        spec = self.spec
        threshold = spec.score_threshold if min_score is None else min_score
        height, width = image.shape[:2]
        views = plan_views(width, height, spec.tile_grid, spec.tile_overlap)
        mirrors = (False, True) if spec.mirror_views else (False,)
        passes = [ViewPass(view, mirrored) for view in views for mirrored in mirrors]
        if self.pipeline == "reference":
            return self._collect_reference(image, passes, threshold)
        return self._collect_batched(image, passes, threshold)

    def _collect_batched(self, image: np.ndarray, passes: list[ViewPass], threshold: float) -> Collected:
        t0 = time.perf_counter()
        batch, placements = self._writer.fill(image, passes)
        t1 = time.perf_counter()
        model = self._model
        with model.run_lock:
            if model.batched:
                raw = model.session.run(None, {model.input_name: batch})
                per_view = [[output[i : i + 1] for output in raw] for i in range(len(passes))]
            else:
                per_view = [model.session.run(None, {model.input_name: batch[i : i + 1]}) for i in range(len(passes))]
        t2 = time.perf_counter()
        parts = [
            self._view_candidates(raw_view, item, placement, image, view_id, threshold, classes=self._wanted)
            for view_id, (raw_view, item, placement) in enumerate(zip(per_view, passes, placements, strict=True))
        ]
        t3 = time.perf_counter()
        return _gather(parts, (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)

    def _collect_reference(self, image: np.ndarray, passes: list[ViewPass], threshold: float) -> Collected:
        parts: list[_Part] = []
        pre_ms = infer_ms = post_ms = 0.0
        for view_id, item in enumerate(passes):
            t0 = time.perf_counter()
            crop = item.view.crop(image)
            tensor, placement = preprocess(crop[:, ::-1] if item.mirrored else crop, self.spec)
            t1 = time.perf_counter()
            raw = self._model.session.run(None, {self._model.input_name: tensor})
            t2 = time.perf_counter()
            parts.append(self._view_candidates(raw, item, placement, image, view_id, threshold, classes=None))
            t3 = time.perf_counter()
            pre_ms += (t1 - t0) * 1000
            infer_ms += (t2 - t1) * 1000
            post_ms += (t3 - t2) * 1000
        return _gather(parts, pre_ms, infer_ms, post_ms)

    def _view_candidates(
        self,
        raw: Sequence[np.ndarray],
        item: ViewPass,
        placement: Letterbox,
        image: np.ndarray,
        view_id: int,
        threshold: float,
        *,
        classes: np.ndarray | None,
    ) -> _Part:
        """Decode one view's outputs -> per-class NMS -> original pixels, minus boxes a tile edge cuts."""
        spec, view = self.spec, item.view
        height, width = image.shape[:2]
        found = decode(dict(zip(self._model.output_names, raw, strict=True)), spec, threshold, classes)
        kept = nms_per_class(found.boxes, found.scores, found.class_ids, spec.iou_threshold)
        kept = kept[np.isin(found.class_ids[kept], self._wanted)]
        local = placement.to_original(found.boxes[kept])
        if item.mirrored:
            crop_w = view.x1 - view.x0
            local = np.stack([crop_w - local[:, 2], local[:, 1], crop_w - local[:, 0], local[:, 3]], axis=1)
        boxes = local + np.asarray([view.x0, view.y0, view.x0, view.y0], dtype=np.float32)
        is_tile = view != View(0, 0, width, height)
        whole = _not_cut(boxes, view, width, height, spec.tile_edge_margin / placement.scale) if is_tile else None
        index = kept if whole is None else kept[whole]
        boxes = boxes if whole is None else boxes[whole]
        return boxes, found.scores[index], found.class_ids[index], np.full(len(index), view_id)


_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _gather(parts: Sequence[_Part], pre_ms: float, infer_ms: float, post_ms: float) -> Collected:
    return Collected(
        boxes=np.concatenate([p[0] for p in parts]).astype(np.float32).reshape(-1, 4),
        scores=np.concatenate([p[1] for p in parts]).astype(np.float32),
        class_ids=np.concatenate([p[2] for p in parts]).astype(np.int64),
        view_ids=np.concatenate([p[3] for p in parts]).astype(np.int64),
        pre_ms=pre_ms,
        infer_ms=infer_ms,
        post_ms=post_ms,
    )


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {type(image).__name__} {shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image has no pixels")


def _not_cut(boxes: np.ndarray, view: View, width: int, height: int, margin: float) -> np.ndarray:
    """Mask of boxes not touching an edge where the tile cuts through the image."""
    left, top, right, bottom = view.inner_edges(width, height)
    cut = np.zeros(len(boxes), dtype=bool)
    if left:
        cut |= boxes[:, 0] <= view.x0 + margin
    if top:
        cut |= boxes[:, 1] <= view.y0 + margin
    if right:
        cut |= boxes[:, 2] >= view.x1 - margin
    if bottom:
        cut |= boxes[:, 3] >= view.y1 - margin
    return ~cut


def finalize(collected: Collected, spec: DetectorSpec) -> tuple[Detection, ...]:
    """Threshold -> competing classes -> NMS across views -> groups and nested duplicates; best first."""
    above = collected.scores >= spec.score_threshold
    is_cat = above & (collected.class_ids == spec.cat_class)
    cat_index = np.flatnonzero(is_cat)
    if spec.competitors:
        competing = np.isin(collected.class_ids, np.asarray(spec.competitors, dtype=np.int64))
        others = np.flatnonzero(above & competing)
        mask = suppress_competitors(
            collected.boxes[cat_index],
            collected.scores[cat_index],
            collected.boxes[others],
            collected.scores[others],
            spec.compete_iou,
        )
        cat_index = cat_index[mask]
    boxes, scores = collected.boxes[cat_index], collected.scores[cat_index]
    kept = nms(boxes, scores, spec.iou_threshold)[: spec.max_detections]
    boxes, scores = boxes[kept], scores[kept]
    mask = suppress_groups(boxes, scores, spec.group_threshold, spec.group_min_members, merge_nested=spec.merge_nested)
    boxes, scores = boxes[mask], scores[mask]
    order = np.argsort(-scores, kind="stable")
    return tuple(
        Detection(box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), score=float(s))
        for b, s in zip(boxes[order], scores[order], strict=True)
    )
