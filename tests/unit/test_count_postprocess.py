"""NMS, group/nested suppression, competing classes, tiling views, letterbox and spec validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc_enclave.counting import DetectorSpec, SpecError, load_model_card, load_spec_file
from ccc_enclave.counting.letterbox import letterbox, to_tensor
from ccc_enclave.counting.postprocess import nms, nms_per_class, suppress_competitors, suppress_groups
from ccc_enclave.counting.views import plan_views


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def test_nms_keeps_the_best_of_overlapping_boxes_and_separate_ones() -> None:
    b = boxes((0, 0, 10, 10), (1, 0, 11, 10), (20, 20, 30, 30), (0, 0, 10, 10))
    s = np.array([0.6, 0.9, 0.5, 0.1], np.float32)
    assert nms(b, s, 0.45).tolist() == [1, 2]
    assert nms(b, s, 0.99).tolist() == [1, 0, 2]  # (identical boxes have IoU 1 > 0.99)
    assert nms(boxes(), np.zeros(0, np.float32), 0.5).tolist() == []


def test_nms_is_per_class() -> None:
    b = boxes((0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 10))
    s = np.array([0.9, 0.8, 0.7], np.float32)
    kept = nms_per_class(b, s, np.array([15, 16, 15]), 0.5)
    assert kept.tolist() == [0, 1]


def test_group_box_containing_two_cats_is_dropped_but_not_one_containing_one() -> None:
    cats = boxes((0, 0, 10, 10), (12, 0, 22, 10), (-1, -1, 23, 11), (40, 0, 60, 20), (42, 2, 50, 10))
    scores = np.array([0.5, 0.5, 0.9, 0.6, 0.4], np.float32)
    keep = suppress_groups(cats, scores, 0.8)
    assert keep.tolist() == [True, True, False, True, True]


def test_nested_duplicate_keeps_the_higher_score() -> None:
    cats = boxes((40, 0, 60, 20), (42, 2, 50, 10), (100, 0, 120, 20), (102, 2, 110, 10))
    scores = np.array([0.6, 0.4, 0.3, 0.7], np.float32)
    keep = suppress_groups(cats, scores, 0.8, merge_nested=True)
    assert keep.tolist() == [True, False, False, True]


def test_group_decision_uses_kept_boxes_smallest_first() -> None:
    # Two cats, a group box around them, and a bigger box around the group and one more cat.
    cats = boxes((0, 0, 10, 10), (12, 0, 22, 10), (-1, -1, 23, 11), (30, 0, 40, 10), (-2, -2, 42, 12))
    keep = suppress_groups(cats, np.full(5, 0.5, np.float32), 0.8)
    assert keep.tolist() == [True, True, False, True, False]


@settings(deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 100), st.floats(1, 50), st.floats(1, 50)), max_size=12),
       st.floats(0.5, 1.0))
def test_group_suppression_never_drops_a_box_containing_fewer_than_two_others(rows, threshold) -> None:
    b = boxes(*[(x, y, x + w, y + h) for x, y, w, h in rows])
    keep = suppress_groups(b, np.full(len(b), 0.5, np.float32), threshold)
    assert keep.sum() >= min(1, len(b))
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    for index in np.flatnonzero(~keep):
        others = [j for j in np.flatnonzero(keep) if areas[j] <= areas[index]]
        inside = 0
        for j in others:
            ix = max(0.0, min(b[index, 2], b[j, 2]) - max(b[index, 0], b[j, 0]))
            iy = max(0.0, min(b[index, 3], b[j, 3]) - max(b[index, 1], b[j, 1]))
            inside += ix * iy / areas[j] >= threshold - 1e-6
        assert inside >= 2


def test_competing_class_with_higher_score_removes_the_cat() -> None:
    cats = boxes((0, 0, 10, 10), (50, 50, 60, 60))
    dogs = boxes((0, 0, 10, 11), (50, 50, 60, 60))
    keep = suppress_competitors(cats, np.array([0.5, 0.5], np.float32), dogs, np.array([0.7, 0.3], np.float32), 0.5)
    assert keep.tolist() == [False, True]


@pytest.mark.parametrize(
    ("width", "height", "grid", "overlap"), [(800, 600, 2, 0.5), (1000, 300, 3, 0.4), (50, 40, 2, 0)]
)
def test_tiles_cover_the_image_with_the_full_view_first(width, height, grid, overlap) -> None:
    views = plan_views(width, height, grid, overlap)
    assert (views[0].x0, views[0].y0, views[0].x1, views[0].y1) == (0, 0, width, height)
    covered = np.zeros((height, width), bool)
    for view in views[1:]:
        assert 0 <= view.x0 < view.x1 <= width and 0 <= view.y0 < view.y1 <= height
        covered[view.y0 : view.y1, view.x0 : view.x1] = True
    assert covered.all()
    assert len(views) == 1 + grid * grid
    assert plan_views(width, height, 1, overlap) == views[:1]


@settings(deadline=None, max_examples=60)
@given(st.integers(1, 3000), st.integers(1, 3000))
def test_letterbox_round_trips_boxes(width: int, height: int) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    canvas, placement = letterbox(image, (416, 416))
    assert canvas.shape == (416, 416, 3)
    original = np.array([[0, 0, width, height], [width * 0.25, height * 0.5, width * 0.75, height]], np.float32)
    forward = original * placement.scale + [placement.pad_x, placement.pad_y, placement.pad_x, placement.pad_y]
    back = placement.to_original(forward)
    assert np.allclose(back, original, atol=max(width, height) * 1e-5 + 1e-3)


def test_tensor_layout_channel_order_and_normalisation(tmp_path: Path) -> None:
    canvas = np.zeros((2, 3, 3), np.uint8)
    canvas[..., 0] = 200  # red
    spec = DetectorSpec(model_path=tmp_path / "m.onnx", decoder="yolov5", input_size=16,
                        channel_order="BGR", mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0))
    tensor = to_tensor(canvas, spec)
    assert tensor.shape == (1, 3, 2, 3)
    assert np.allclose(tensor[0, 2], (200 - 3.0) / 2)  # red is the last channel in BGR
    assert np.allclose(tensor[0, 0], (0 - 1.0) / 2)
    nhwc = to_tensor(canvas, spec.with_overrides(layout="NHWC", channel_order="RGB", scale=1 / 255,
                                                 mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
    assert nhwc.shape == (1, 2, 3, 3)
    assert np.allclose(nhwc[0, ..., 0], 200 / 255)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"decoder": "ssd"}, "decoder"),
        ({"cat_class": 80}, "cat_class"),
        ({"score_threshold": 0}, "score_threshold"),
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"input_size": 410}, "stride"),
        ({"input_size": [416]}, "input_size"),
        ({"layout": "nchw"}, "layout"),
        ({"std": [1, 0, 1]}, "std"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"score_threshold": "0.3"}, "score_threshold"),  # strict: no string-to-number coercion
        ({"tile_grid": 9}, "tile_grid"),
        ({"competing_classes": [15]}, "competing"),
    ],
)
def test_spec_files_are_validated_strictly(tmp_path: Path, changes: dict, message: str) -> None:
    data = {"model_path": "m.onnx", "decoder": "nanodet", "input_size": 416} | changes
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError, match=message):
        load_spec_file(path)


def test_spec_file_paths_are_relative_to_the_file_and_sizes_may_be_rectangular(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "spec.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model_path": "m.onnx", "decoder": "yolov8", "input_size": [640, 480],
                                "scale": 1 / 255}))
    spec = load_spec_file(path)
    assert spec.model_path == tmp_path / "sub" / "m.onnx"
    assert spec.input_wh == (640, 480)


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"name": "x"})])
def test_broken_model_cards_are_spec_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "card.json"
    path.write_text(content)
    with pytest.raises(SpecError):
        load_model_card(path)


def test_model_card_thresholds_are_replaced_by_the_counters_measured_defaults(tmp_path: Path) -> None:
    card = {"name": "m", "detector": {"decoder": "nanodet", "score_threshold": 0.9, "iou_threshold": 0.2}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(card))
    spec = load_model_card(path)
    assert spec.model_path == tmp_path / "m.onnx"
    assert (spec.score_threshold, spec.iou_threshold) == (
        DetectorSpec.model_fields["score_threshold"].default, DetectorSpec.model_fields["iou_threshold"].default)
    assert load_model_card(path, use_card_thresholds=True).score_threshold == 0.9
    path.write_text(json.dumps({"detector": {"decoder": "nanodet", "score_threshold": 7}}))
    with pytest.raises(SpecError, match="score_threshold"):  # still validated
        load_model_card(path)
