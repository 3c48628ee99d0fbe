"""`ccc count` end to end on a synthetic ONNX detector: JSON Lines, table, errors, exit codes, --annotate."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ccc.cli import main
from ccc.evaluation.testing import constant_detector

# yolov5 layout in a 64x48 input: two cats (0.855, 0.45) and a dog; 3 classes, cat = 1.
ROWS = np.array(
    [
        [20, 20, 16, 16, 0.9, 0.05, 0.95, 0.0],
        [48, 30, 12, 20, 0.9, 0.10, 0.50, 0.0],
        [30, 30, 10, 10, 0.9, 0.99, 0.01, 0.0],
    ],
    dtype=np.float32,
)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    model = tmp_path / "tiny.onnx"
    model.write_bytes(constant_detector({"output0": ROWS[np.newaxis]}, input_shape=(1, 3, 48, 64)))
    spec = {
        "name": "tiny-yolo",
        "model_path": "tiny.onnx",  # relative to the spec file
        "input_size": [64, 48],
        "decoder": "yolov5",
        "num_classes": 3,
        "cat_class": 1,
        "scale": 1 / 255,
        "score_threshold": 0.3,
        "tile_grid": 1,  # the constant model sees the same cats in every view: look once
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def png(tmp_path: Path, name: str, width: int = 128, height: int = 96) -> Path:
    path = tmp_path / name
    Image.new("RGB", (width, height), (90, 120, 150)).save(path)
    return path


def test_json_lines_in_input_order_with_errors_reported_and_exit_1(tmp_path, spec_file, capsys) -> None:
    good = png(tmp_path, "a.png")
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"not really a jpeg")
    missing = tmp_path / "nope.png"
    status = main(["count", "--json", "--spec", str(spec_file), str(good), str(bad), str(missing), str(good)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [line["image"] for line in lines] == [str(good), str(bad), str(missing), str(good)]
    first = lines[0]
    assert first["cats"] == 2
    assert first["detections"] == [
        {"box": [24.0, 24.0, 56.0, 56.0], "score": 0.855},
        {"box": [84.0, 40.0, 108.0, 80.0], "score": 0.45},
    ]
    sha = hashlib.sha256((tmp_path / "tiny.onnx").read_bytes()).hexdigest()
    assert first["model"] == {"name": "tiny-yolo", "sha256": sha}
    assert first["elapsed_ms"] > 0
    assert "not a supported image" in lines[1]["error"]
    assert "cannot read file" in lines[2]["error"]
    assert lines[3]["cats"] == 2


def test_all_good_images_exit_0_and_threshold_changes_the_count(tmp_path, spec_file, capsys) -> None:
    good = png(tmp_path, "a.png")
    assert main(["count", "--json", "--spec", str(spec_file), "--threshold", "0.5", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["cats"] == 1


def test_table_output(tmp_path, spec_file, capsys) -> None:
    good = png(tmp_path, "cats.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(["count", "--spec", str(spec_file), str(good), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["image", "cats", "best", "score", "ms"]
    assert out[1].split()[:3] == [str(good), "2", "0.85"] or out[1].split()[:3] == [str(good), "2", "0.86"]
    assert "error:" in out[2]
    assert out[-1] == "2 cats in 1 image; 1 failed"


@pytest.mark.parametrize("threshold", ["0", "1.5", "abc", "-0.1"])
def test_bad_threshold_is_a_usage_error(tmp_path, spec_file, threshold, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["count", "--spec", str(spec_file), "--threshold", threshold, str(png(tmp_path, "a.png"))])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "threshold" in err or "number" in err


def test_missing_or_invalid_spec_is_a_usage_error(tmp_path, capsys) -> None:
    image = str(png(tmp_path, "a.png"))
    assert main(["count", "--spec", str(tmp_path / "absent.json"), image]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model_path": "x.onnx", "decoder": "yolov9"}))
    assert main(["count", "--spec", str(bad), image]) == 2
    assert "decoder" in capsys.readouterr().err
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"model_path": "x.onnx", "decoder": "yolov5", "treshold": 0.5}))
    assert main(["count", "--spec", str(unknown), image]) == 2
    assert "treshold" in capsys.readouterr().err
    no_model = tmp_path / "nomodel.json"
    no_model.write_text(json.dumps({"model_path": "x.onnx", "decoder": "yolov5"}))
    assert main(["count", "--spec", str(no_model), image]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_no_model_card_is_a_usage_error_naming_the_fix(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CCC_MODEL_DIR", str(tmp_path / "empty"))
    assert main(["count", str(png(tmp_path, "a.png"))]) == 2
    assert "make model" in capsys.readouterr().err


def test_model_card_in_model_dir_is_the_default(tmp_path, monkeypatch, capsys) -> None:
    models = tmp_path / "models"
    models.mkdir()
    onnx_bytes = constant_detector({"output0": ROWS[np.newaxis]}, input_shape=(1, 3, 48, 64))
    (models / "nanodet-g.onnx").write_bytes(onnx_bytes)
    sha = hashlib.sha256(onnx_bytes).hexdigest()
    card = {
        "name": "card-model",
        "sha256": sha,
        "detector": {"input_size": [64, 48], "decoder": "yolov5", "num_classes": 3, "cat_class": 1,
                     "score_threshold": 0.3, "iou_threshold": 0.45, "layout": "NCHW", "channel_order": "RGB",
                     "tile_grid": 1},
    }
    (models / "nanodet-g.json").write_text(json.dumps(card))
    monkeypatch.setenv("CCC_MODEL_DIR", str(models))
    assert main(["count", "--json", str(png(tmp_path, "a.png"))]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["model"] == {"name": "card-model", "sha256": sha}
    assert line["cats"] == 2


def test_annotate_writes_one_png_per_image_without_overwriting(tmp_path, spec_file) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    first, second = png(tmp_path / "x", "cat.png"), png(tmp_path / "y", "cat.png", 64, 48)
    out = tmp_path / "annotated"
    assert main(["count", "--spec", str(spec_file), "--annotate", str(out), str(first), str(second)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["cat-2.annotated.png", "cat.annotated.png"]
    with Image.open(out / "cat.annotated.png") as img:
        drawn = np.asarray(img.convert("RGB"))
    assert drawn.shape == (96, 128, 3)
    assert tuple(drawn[40, 24]) == (255, 40, 120)  # on the left edge of the first cat box (x=24)


def test_oversized_file_is_refused_before_reading(tmp_path, spec_file, monkeypatch, capsys) -> None:
    monkeypatch.setattr("ccc_enclave.counting.images.DEFAULT_MAX_BYTES", 10)
    good = png(tmp_path, "a.png")
    assert main(["count", "--json", "--spec", str(spec_file), str(good)]) == 1
    assert "over the limit" in json.loads(capsys.readouterr().out)["error"]


def test_encoded_bytes_round_trip_through_count_bytes(tmp_path, spec_file) -> None:
    from ccc_enclave.counting import CatCounter, ImageError, load_spec_file

    counter = CatCounter(load_spec_file(spec_file))
    buffer = io.BytesIO()
    Image.new("RGB", (128, 96)).save(buffer, format="WEBP")
    assert counter.count_bytes(buffer.getvalue()).cats == 2
    with pytest.raises(ImageError):
        counter.count_bytes(b"")
