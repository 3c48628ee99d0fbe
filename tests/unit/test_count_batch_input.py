"""The optimised counting path computes exactly what the reference path computes.

`BatchWriter` must give the network the same numbers, bit for bit, as `letterbox.preprocess` per
view; the class-restricted decoders must return the same candidates for the classes asked; the
optimised counter must report the same cats and boxes as the reference counter, batched or not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ccc.evaluation.bench_identity import max_box_difference
from ccc.evaluation.testing import constant_detector, nanodet_outputs
from ccc_enclave.counting import CatCounter, Detection, DetectorSpec
from ccc_enclave.counting.batch_input import BatchWriter, ViewPass, normalisation_table
from ccc_enclave.counting.decoders import decode
from ccc_enclave.counting.letterbox import preprocess, to_tensor
from ccc_enclave.counting.views import plan_views

NANODET_LIKE = {"channel_order": "BGR", "mean": (103.53, 116.28, 123.675), "std": (57.375, 57.12, 58.395)}
YOLO_LIKE = {"channel_order": "RGB", "scale": 1 / 255, "pad_value": 114}
NHWC_WIDE = {**YOLO_LIKE, "layout": "NHWC", "input_size": (64, 96), "decoder": "yolov8"}


def spec_for(**fields: object) -> DetectorSpec:
    return DetectorSpec(**{"model_path": Path("unused.onnx"), "decoder": "nanodet", "input_size": 64, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize("fields", [NANODET_LIKE, YOLO_LIKE, {**YOLO_LIKE, "layout": "NHWC"}])
def test_table_holds_what_to_tensor_computes_for_every_level(fields: dict[str, object]) -> None:
    spec = spec_for(**fields)
    levels = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(1, 256, 3)
    reference = to_tensor(levels, spec)[0]
    reference = reference[:, 0, :] if spec.layout == "NCHW" else reference[0].T
    assert np.array_equal(normalisation_table(spec), reference)


@pytest.mark.parametrize("fields", [NANODET_LIKE, YOLO_LIKE, NHWC_WIDE])
@pytest.mark.parametrize("size", [(97, 61), (64, 64), (40, 130), (300, 200)])
@pytest.mark.parametrize("workers", [1, 2])
def test_batch_is_bit_identical_to_per_view_preprocessing(
    fields: dict[str, object], size: tuple[int, int], workers: int
) -> None:
    spec = spec_for(**fields, tile_grid=2, tile_overlap=0.5)
    width, height = size
    picture = np.random.default_rng(width * height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    passes = [ViewPass(view, mirrored) for view in plan_views(width, height, 2, 0.5) for mirrored in (False, True)]
    writer = BatchWriter(spec, workers=workers)
    batch, placements = writer.fill(picture, passes)
    assert batch.shape[0] == len(passes)
    for index, item in enumerate(passes):
        crop = item.view.crop(picture)
        tensor, placement = preprocess(crop[:, ::-1] if item.mirrored else crop, spec)
        assert np.array_equal(batch[index], tensor[0]), f"pass {index} differs"
        assert placements[index] == placement


@pytest.mark.parametrize("fields", [NANODET_LIKE, {**YOLO_LIKE, "layout": "NHWC"}])
@pytest.mark.parametrize("first, second", [((64, 64), (60, 10)), ((60, 10), (10, 60)), ((10, 60), (60, 10))])
def test_a_reused_buffer_leaves_no_stale_pixels(
    fields: dict[str, object], first: tuple[int, int], second: tuple[int, int]
) -> None:
    """Only the padding strips and the inside are written: each must cover what the last image left."""
    spec = spec_for(**fields, tile_grid=1)
    writer = BatchWriter(spec)
    bright = np.full((first[1], first[0], 3), 255, dtype=np.uint8)
    dark = np.random.default_rng(5).integers(0, 40, (second[1], second[0], 3), dtype=np.uint8)
    writer.fill(bright, [ViewPass(plan_views(*first, 1, 0.0)[0], False)])
    batch, _ = writer.fill(dark, [ViewPass(plan_views(*second, 1, 0.0)[0], False)])
    assert np.array_equal(batch[0], preprocess(dark, spec)[0][0])


def test_decoding_only_some_classes_keeps_exactly_their_candidates() -> None:
    cats = [(12, 20, 44, 36, 1, 0.9), (36, 28, 60, 44, 1, 0.7), (12, 20, 44, 36, 0, 0.95), (4, 12, 36, 44, 2, 0.5)]
    outputs = nanodet_outputs(cats, input_size=(64, 64), num_classes=3)
    spec = spec_for(num_classes=3, cat_class=1)
    everything = decode(outputs, spec, 0.3)
    some = decode(outputs, spec, 0.3, np.asarray([1, 2], dtype=np.int64))
    wanted = np.isin(everything.class_ids, [1, 2])
    assert np.array_equal(some.class_ids, everything.class_ids[wanted])
    assert np.array_equal(some.boxes, everything.boxes[wanted])
    assert np.array_equal(some.scores, everything.scores[wanted])


@pytest.mark.parametrize("batch_axis", [1, "batch"])
def test_optimised_counter_reports_what_the_reference_counter_reports(tmp_path: Path, batch_axis: int | str) -> None:
    cats = [(12, 20, 44, 36, 1, 0.9), (36, 28, 60, 44, 1, 0.7), (12, 20, 44, 36, 0, 0.95)]
    outputs = nanodet_outputs(cats, input_size=(64, 64), num_classes=3)
    model = tmp_path / "model.onnx"
    model.write_bytes(constant_detector(outputs, input_name="input_1", input_shape=(batch_axis, 3, 64, 64)))
    spec = spec_for(
        model_path=model, num_classes=3, cat_class=1, competing_classes=(0,), score_threshold=0.3, **NANODET_LIKE
    )
    picture = np.random.default_rng(3).integers(0, 256, (90, 150, 3), dtype=np.uint8)
    reference = CatCounter(spec, profile="default", pipeline="reference").count(picture)
    optimised = CatCounter(spec).count(picture)
    assert CatCounter(spec).batched is (batch_axis == "batch")
    assert optimised.cats == reference.cats > 0
    assert max_box_difference(optimised.detections, reference.detections) == 0.0


def test_box_difference_pairs_boxes_regardless_of_order() -> None:
    a = [Detection((0, 0, 10, 10), 0.9), Detection((20, 20, 30, 30), 0.8)]
    b = [Detection((20.2, 20, 30, 30), 0.8), Detection((0, 0, 10, 10.1), 0.9)]
    assert max_box_difference(a, b) == pytest.approx(0.2)
    assert max_box_difference(a, b[:1]) == float("inf")
    assert max_box_difference([], []) == 0.0
