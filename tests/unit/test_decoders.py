"""Each decoder end to end: a synthetic ONNX model with known outputs -> the exact cat boxes back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ccc.evaluation.testing import constant_detector, nanodet_outputs
from ccc_enclave.counting import CatCounter, DecodeError, DetectorSpec, ModelError

CAT, DOG = 1, 0


def write_model(tmp_path: Path, outputs: dict[str, np.ndarray], **kwargs: object) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(constant_detector(outputs, **kwargs))  # type: ignore[arg-type]
    return path


def one_view_spec(**fields: object) -> DetectorSpec:
    """A spec that looks at the whole image only: constant models 'see' the same cats in every view."""
    return DetectorSpec(**{"tile_grid": 1, **fields})  # type: ignore[arg-type]


def image(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), 127, dtype=np.uint8)


def boxes_of(result) -> list[list[float]]:
    return sorted([list(np.round(d.box, 3)) for d in result.detections])


def test_nanodet_boxes_come_back_in_original_pixels(tmp_path: Path) -> None:
    # Input 64x64; original image 128x64 -> scale 0.5, resized to 64x32, padded 16 rows top and bottom.
    cat_a = (12, 20, 44, 36, CAT, 0.9)  # centre cell (3, 3) at stride 8
    cat_b = (36, 28, 60, 44, CAT, 0.7)  # centre cell (5, 4) at stride 8
    dog = (12, 20, 44, 36, DOG, 0.95)  # same place as cat_a: another class, must not suppress it
    faint_cat = (4, 12, 36, 44, CAT, 0.2)  # below the threshold
    outputs = nanodet_outputs([cat_a, cat_b, dog, faint_cat], input_size=(64, 64), num_classes=3)
    model = write_model(tmp_path, outputs, input_name="input_1", input_shape=(1, 3, 64, 64))
    spec = one_view_spec(
        model_path=model, input_name="input_1", input_size=64, decoder="nanodet", num_classes=3, cat_class=CAT,
        channel_order="BGR", mean=(103.53, 116.28, 123.675), std=(57.375, 57.12, 58.395), score_threshold=0.3,
    )
    result = CatCounter(spec).count(image(128, 64))
    assert result.cats == 2
    assert boxes_of(result) == [[24.0, 8.0, 88.0, 40.0], [72.0, 24.0, 120.0, 56.0]]
    assert [round(d.score, 3) for d in result.detections] == [0.9, 0.7]  # best first
    assert result.image_size == (128, 64)


def test_nanodet_rejects_outputs_of_the_wrong_shape(tmp_path: Path) -> None:
    outputs = nanodet_outputs([], input_size=(64, 64), num_classes=3)
    outputs["box_16"] = outputs["box_16"][:, :, :40]
    model = write_model(tmp_path, outputs, input_shape=(1, 3, 64, 64))
    spec = one_view_spec(model_path=model, input_size=64, decoder="nanodet", num_classes=3, cat_class=CAT)
    with pytest.raises(DecodeError, match="box_16"):
        CatCounter(spec).count(image(64, 64))


def yolo_rows() -> np.ndarray:
    """cx, cy, w, h, objectness, p(dog), p(cat), p(other) in a 64 wide x 48 high input."""
    return np.array(
        [
            [20, 20, 16, 16, 0.9, 0.05, 0.95, 0.0],  # cat, score 0.855
            [21, 20, 16, 16, 0.8, 0.05, 0.90, 0.0],  # duplicate cat (IoU ~0.88), 0.72: NMS drops it
            [48, 30, 12, 20, 0.9, 0.10, 0.50, 0.0],  # second cat, 0.45
            [20, 20, 16, 16, 0.9, 0.99, 0.01, 0.0],  # a dog on the first cat: other class, ignored
            [40, 10, 8, 8, 0.2, 0.0, 1.0, 0.0],  # faint cat, 0.2: below threshold
        ],
        dtype=np.float32,
    )


# Original 128x96 -> input 64x48 at scale 0.5, no padding: original = input * 2.
EXPECTED_YOLO = [[24.0, 24.0, 56.0, 56.0], [84.0, 40.0, 108.0, 80.0]]


def test_yolov5_decodes_objectness_times_class(tmp_path: Path) -> None:
    model = write_model(tmp_path, {"output0": yolo_rows()[np.newaxis]}, input_shape=(1, 3, 48, 64))
    spec = one_view_spec(model_path=model, input_size=(64, 48), decoder="yolov5", num_classes=3, cat_class=CAT,
                        scale=1 / 255)
    result = CatCounter(spec).count(image(128, 96))
    assert result.cats == 2
    assert boxes_of(result) == EXPECTED_YOLO
    assert [round(d.score, 3) for d in result.detections] == [0.855, 0.45]


def test_yolov8_decodes_transposed_layout_without_objectness(tmp_path: Path) -> None:
    rows = np.delete(yolo_rows(), 4, axis=1)  # no objectness column
    rows[1, 5] = 0.72  # the duplicate stays weaker than the first cat
    rows[4, 5] = 0.2  # the faint cat stays faint without objectness
    model = write_model(tmp_path, {"output0": rows.T[np.newaxis]}, input_shape=(1, 48, 64, 3))
    spec = one_view_spec(model_path=model, input_size=(64, 48), layout="NHWC", decoder="yolov8", num_classes=3,
                        cat_class=CAT, scale=1 / 255)
    result = CatCounter(spec).count(image(128, 96))
    assert boxes_of(result) == EXPECTED_YOLO
    assert [round(d.score, 3) for d in result.detections] == [0.95, 0.5]


def test_named_output_is_used_when_several_exist(tmp_path: Path) -> None:
    decoy = np.zeros((1, 4, 6), np.float32)
    model = write_model(tmp_path, {"decoy": decoy, "output0": yolo_rows()[np.newaxis]}, input_shape=(1, 3, 48, 64))
    spec = one_view_spec(model_path=model, input_size=(64, 48), decoder="yolov5", num_classes=3, cat_class=CAT,
                        output_name="output0")
    assert CatCounter(spec).count(image(128, 96)).cats == 2
    with pytest.raises(DecodeError, match="shape"):
        CatCounter(spec.with_overrides(output_name=None)).count(image(128, 96))


def test_group_box_around_two_cats_is_not_a_cat(tmp_path: Path) -> None:
    rows = np.array(
        [
            [16, 24, 16, 24, 1.0, 0.0, 0.6, 0.0],  # cat 1: 8..24 x 12..36
            [40, 24, 16, 24, 1.0, 0.0, 0.6, 0.0],  # cat 2: 32..48 x 12..36
            [28, 24, 44, 32, 1.0, 0.0, 0.8, 0.0],  # group: 6..50 x 8..40, contains both
        ],
        dtype=np.float32,
    )
    model = write_model(tmp_path, {"output0": rows[np.newaxis]}, input_shape=(1, 3, 48, 64))
    spec = one_view_spec(model_path=model, input_size=(64, 48), decoder="yolov5", num_classes=3, cat_class=CAT,
                        group_threshold=0.8)
    result = CatCounter(spec).count(image(64, 48))
    assert result.cats == 2
    assert all(round(d.score, 3) == 0.6 for d in result.detections)
    # With the suppression effectively off (inner must be 100% inside and >= 100 members) the group counts.
    loose = spec.with_overrides(group_min_members=100)
    assert CatCounter(loose).count(image(64, 48)).cats == 3


def test_spec_and_model_disagreeing_on_the_input_is_a_model_error(tmp_path: Path) -> None:
    model = write_model(tmp_path, {"output0": yolo_rows()[np.newaxis]}, input_shape=(1, 3, 48, 64))
    with pytest.raises(ModelError, match="shape"):
        CatCounter(one_view_spec(model_path=model, input_size=64, decoder="yolov5", num_classes=3, cat_class=CAT))
    with pytest.raises(ModelError, match="no input"):
        CatCounter(one_view_spec(model_path=model, input_size=(64, 48), input_name="nope", decoder="yolov5",
                                num_classes=3, cat_class=CAT))


def test_model_with_other_bytes_than_the_spec_names_is_refused(tmp_path: Path) -> None:
    model = write_model(tmp_path, {"output0": yolo_rows()[np.newaxis]}, input_shape=(1, 3, 48, 64))
    spec = one_view_spec(model_path=model, input_size=(64, 48), decoder="yolov5", num_classes=3, cat_class=CAT,
                        sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        CatCounter(spec)


def test_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    spec = one_view_spec(model_path=tmp_path / "absent.onnx", decoder="yolov5")
    with pytest.raises(ModelError, match="not found"):
        CatCounter(spec)


def one_cat_model(tmp_path: Path, cx: float, cy: float, w: float, h: float) -> Path:
    rows = np.array([[cx, cy, w, h, 1.0, 0.0, 0.9, 0.0]], np.float32)
    return write_model(tmp_path, {"output0": rows[np.newaxis]}, input_shape=(1, 3, 48, 64))


def test_tile_views_map_boxes_back_with_their_offsets(tmp_path: Path) -> None:
    # The constant model "sees" the same cat in every view: in the full view (scale 0.5) and in each
    # of four 64x48 tiles (scale 1), so five different places in the original image.
    spec = DetectorSpec(model_path=one_cat_model(tmp_path, 20, 20, 16, 16), input_size=(64, 48), decoder="yolov5",
                        num_classes=3, cat_class=CAT, tile_grid=2, tile_overlap=0.0)
    result = CatCounter(spec).count(image(128, 96))
    assert boxes_of(result) == [[12.0, 12.0, 28.0, 28.0], [12.0, 60.0, 28.0, 76.0], [24.0, 24.0, 56.0, 56.0],
                                [76.0, 12.0, 92.0, 28.0], [76.0, 60.0, 92.0, 76.0]]


def test_tile_boxes_touching_a_cut_edge_are_dropped(tmp_path: Path) -> None:
    # A box reaching the right edge of the input: in the left tiles that edge is a cut through the image.
    spec = DetectorSpec(model_path=one_cat_model(tmp_path, 56, 20, 16, 16), input_size=(64, 48), decoder="yolov5",
                        num_classes=3, cat_class=CAT, tile_grid=2, tile_overlap=0.0)
    result = CatCounter(spec).count(image(128, 96))
    assert boxes_of(result) == [[96.0, 24.0, 128.0, 56.0], [112.0, 12.0, 128.0, 28.0], [112.0, 60.0, 128.0, 76.0]]


def test_mirrored_views_are_unmirrored(tmp_path: Path) -> None:
    spec = one_view_spec(model_path=one_cat_model(tmp_path, 16, 24, 16, 16), input_size=(64, 48), decoder="yolov5",
                        num_classes=3, cat_class=CAT, mirror_views=True)
    result = CatCounter(spec).count(image(64, 48))
    assert boxes_of(result) == [[8.0, 16.0, 24.0, 32.0], [40.0, 16.0, 56.0, 32.0]]  # x -> 64 - x
    centred = spec.with_overrides(model_path=str(one_cat_model(tmp_path, 32, 24, 16, 16)))
    assert CatCounter(centred).count(image(64, 48)).cats == 1  # its mirror image is itself: NMS merges them
