"""What the counter needs to know about a detector: the `DetectorSpec`.

The counter is model-agnostic: everything model-specific (input size and layout, normalisation,
how to decode the raw outputs, which class is "cat", the thresholds) lives in a spec. A spec comes
from a JSON file (`ccc count --spec FILE`) or from the `detector` section of a model card built by
`make model` (`models/nanodet-g.json`). Validation is strict (no unknown keys, no silent type
coercion, bounded numbers) because a typo in a spec would otherwise show up as a wrong cat count
rather than an error.

Decoders and the output layouts they expect (N = number of candidate boxes, C = classes):

* ``nanodet`` — for each stride s in ``strides``: ``cls_<s>`` [1, N_s, C] class scores already in
  0..1, and ``box_<s>`` [1, N_s, 4*(reg_max+1)] pre-softmax distance distributions (left, top,
  right, bottom). N_s = (W/s)*(H/s); cell i has centre ((i % gw + 0.5)*s, (i // gw + 0.5)*s) and
  each side's distance is sum(softmax(bins)_k * k) * s, in input pixels.
* ``yolov5`` — one output [1, N, 5+C]: cx, cy, w, h (input pixels), objectness, C class
  probabilities (sigmoid already applied, as in the standard export); score = objectness * class.
* ``yolov8`` — one output [1, 4+C, N]: cx, cy, w, h (input pixels) then C class scores; no
  objectness.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ccc_enclave.errors import EnclaveError

MODEL_DIR_ENV = "CCC_MODEL_DIR"
DEFAULT_MODEL_NAME = "nanodet-g"

# Defaults chosen by measurement on the sample set (docs/counting.md, `ccc bench accuracy`).
DEFAULT_SCORE_THRESHOLD = 0.325
DEFAULT_IOU_THRESHOLD = 0.45
DEFAULT_GROUP_THRESHOLD = 0.7
DEFAULT_TILE_GRID = 2
DEFAULT_TILE_OVERLAP = 0.5
# COCO animals other than cat: bird, dog, horse, sheep, cow, elephant, bear, zebra, giraffe
# (applied to 80-class models only: class indices mean nothing for other label sets).
DEFAULT_COMPETING_CLASSES: tuple[int, ...] = (14, 16, 17, 18, 19, 20, 21, 22, 23)
# Post-processing settings a model card may suggest but that belong to the counter: they were
# measured on the counter's whole pipeline (tiling changes the score distribution), so the card's
# values are validated but replaced by this package's defaults unless asked otherwise.
COUNTER_OWNED_FIELDS = ("score_threshold", "iou_threshold")

Probability = Annotated[float, Field(gt=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
Triple = tuple[float, float, float]


class SpecError(EnclaveError, ValueError):
    """A detector spec or model card is missing, unreadable or invalid (a usage error)."""


def default_model_dir() -> Path:
    """Where models live: `$CCC_MODEL_DIR`, else `<repo>/models` next to the source tree.

    The package is installed editable from a src layout, so the repository root is three levels
    above this file (src/ccc/counting/spec.py). For a non-editable install there is no repository;
    fall back to `./models` relative to the working directory.
    """
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    if (repo / "pyproject.toml").is_file():
        return repo / "models"
    return Path.cwd() / "models"


def default_card_path() -> Path:
    return default_model_dir() / f"{DEFAULT_MODEL_NAME}.json"


class DetectorSpec(BaseModel):
    """Everything model-specific the counter needs; see the module docstring for output layouts."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: str = Field(default="detector", min_length=1, max_length=200)
    model_path: Path
    # Expected SHA-256 of the ONNX file (hex). When set, a model file with other bytes is refused.
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    input_name: str | None = None
    # Square side, or [width, height].
    input_size: Annotated[int, Field(ge=16, le=4096)] | tuple[
        Annotated[int, Field(ge=16, le=4096)], Annotated[int, Field(ge=16, le=4096)]
    ] = 416
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    channel_order: Literal["RGB", "BGR"] = "RGB"
    # network input = (pixel * scale - mean) / std, per channel in `channel_order`.
    scale: PositiveFloat = 1.0
    mean: Triple = (0.0, 0.0, 0.0)
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = (1.0, 1.0, 1.0)
    pad_value: Annotated[int, Field(ge=0, le=255)] = 0
    decoder: Literal["nanodet", "yolov5", "yolov8"]
    strides: tuple[Annotated[int, Field(ge=1, le=512)], ...] = (8, 16, 32)
    reg_max: Annotated[int, Field(ge=0, le=64)] = 10
    num_classes: Annotated[int, Field(ge=1, le=100_000)] = 80
    cat_class: Annotated[int, Field(ge=0)] = 15
    output_name: str | None = None  # yolov5/yolov8: the output to decode (default: the first)
    score_threshold: Probability = DEFAULT_SCORE_THRESHOLD
    iou_threshold: Probability = DEFAULT_IOU_THRESHOLD
    # A cat box is a "group" box (dropped) when >= group_min_members other cat boxes each have at
    # least this fraction of their own area inside it.
    group_threshold: Probability = DEFAULT_GROUP_THRESHOLD
    group_min_members: Annotated[int, Field(ge=2, le=100)] = 2
    # When exactly one other cat box lies mostly (group_threshold) inside a cat box, the two are one
    # cat seen twice (whole cat and a part, or two views): keep only the higher-scoring box.
    merge_nested: bool = True
    # Views: the whole image, plus tile_grid x tile_grid overlapping tiles (1 = whole image only).
    # Tiles enlarge small cats for the detector; a tile's box touching an inner tile edge is dropped
    # (the cat is cut there and is seen whole in another view).
    tile_grid: Annotated[int, Field(ge=1, le=4)] = DEFAULT_TILE_GRID
    tile_overlap: Annotated[float, Field(ge=0.0, le=0.75)] = DEFAULT_TILE_OVERLAP
    tile_edge_margin: Annotated[float, Field(ge=0.0, le=64.0)] = 2.0  # network-input pixels
    # Also look at every view mirrored left-right (test-time augmentation: twice the inferences).
    mirror_views: bool = False
    # A cat box is dropped when a box of one of these classes, in any view, overlaps it with
    # IoU >= compete_iou and a higher score: the detector thinks it more likely is that animal.
    # None (default): COCO's other animals for 80-class (COCO) models, none otherwise.
    competing_classes: tuple[Annotated[int, Field(ge=0)], ...] | None = None
    compete_iou: Probability = 0.5
    max_detections: Annotated[int, Field(ge=1, le=10_000)] = 300

    @model_validator(mode="after")
    def _consistent(self) -> DetectorSpec:
        if self.cat_class >= self.num_classes:
            raise ValueError(f"cat_class {self.cat_class} is outside num_classes {self.num_classes}")
        for other in self.competitors:
            if other >= self.num_classes or other == self.cat_class:
                raise ValueError(f"competing class {other} must be another class below num_classes")
        if self.decoder == "nanodet":
            if not self.strides:
                raise ValueError("the nanodet decoder needs at least one stride")
            width, height = self.input_wh
            for stride in self.strides:
                if width % stride or height % stride:
                    raise ValueError(f"input size {width}x{height} is not a multiple of stride {stride}")
        return self

    @property
    def competitors(self) -> tuple[int, ...]:
        """The competing classes in effect (see `competing_classes`)."""
        if self.competing_classes is not None:
            return self.competing_classes
        return DEFAULT_COMPETING_CLASSES if self.num_classes == 80 and self.cat_class == 15 else ()

    @property
    def input_wh(self) -> tuple[int, int]:
        if isinstance(self.input_size, int):
            return (self.input_size, self.input_size)
        return self.input_size

    def with_overrides(self, **changes: Any) -> DetectorSpec:
        """A copy with some fields changed, validated like the original (e.g. `--threshold`)."""
        data = self.model_dump(mode="json")
        data.update({key: (str(value) if isinstance(value, Path) else value) for key, value in changes.items()})
        return _validate(data, origin="overrides")


def _validate(data: dict[str, Any], *, origin: str) -> DetectorSpec:
    try:
        return DetectorSpec.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '<spec>'}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"invalid detector spec in {origin}: {problems}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a JSON object")
    return data


def _resolve_model_path(value: Any, base: Path) -> Any:
    if isinstance(value, str) and not Path(value).is_absolute():
        return str(base / value)
    return value


def load_spec_file(path: Path) -> DetectorSpec:
    """A spec file: a JSON object with DetectorSpec fields; relative `model_path` is relative to the file."""
    data = _read_json(path)
    if "model_path" not in data:
        raise SpecError(f"{path}: missing required key 'model_path'")
    data["model_path"] = _resolve_model_path(data["model_path"], path.parent)
    return _validate(data, origin=str(path))


def load_model_card(card_path: Path, *, use_card_thresholds: bool = False) -> DetectorSpec:
    """The spec from a model card: its `detector` section plus top-level `name` and `sha256`.

    The ONNX file sits next to the card with the same stem (`nanodet-g.json` -> `nanodet-g.onnx`)
    unless the card names it in a top-level `file`/`onnx` key. The card describes the model (input,
    normalisation, decoder, classes); thresholds it suggests are checked but, unless
    `use_card_thresholds`, the counter's measured defaults apply (see COUNTER_OWNED_FIELDS and
    docs/counting.md). To run other thresholds, pass `--threshold` or a spec file.
    """
    card = _read_json(card_path)
    detector = card.get("detector")
    if not isinstance(detector, dict):
        raise SpecError(f"{card_path}: model card has no 'detector' object")
    data = dict(detector)
    if "name" in card and "name" not in data:
        data["name"] = card["name"]
    if "sha256" in card and "sha256" not in data:
        data["sha256"] = card["sha256"]
    onnx_name = card.get("file") or card.get("onnx") or f"{card_path.stem}.onnx"
    if not isinstance(onnx_name, str):
        raise SpecError(f"{card_path}: model file name must be a string")
    data.setdefault("model_path", onnx_name)
    data["model_path"] = _resolve_model_path(data["model_path"], card_path.parent)
    spec = _validate(data, origin=str(card_path))
    if use_card_thresholds:
        return spec
    defaults = {name: DetectorSpec.model_fields[name].default for name in COUNTER_OWNED_FIELDS}
    return spec.model_copy(update=defaults)


def resolve_spec(spec_file: Path | None = None) -> DetectorSpec:
    """The spec to use: an explicit spec file, else the default model card in `default_model_dir()`."""
    if spec_file is not None:
        return load_spec_file(spec_file)
    card = default_card_path()
    if not card.is_file():
        raise SpecError(
            f"no model card at {card} (build the model with `make model`, set ${MODEL_DIR_ENV}, or pass --spec FILE)"
        )
    return load_model_card(card)
