"""Sample images with known cat counts, built deterministically from packaged photos.

No package ships a photo of several cats, and big binaries do not belong in the repository, so
tests, the demo and the threshold sweep build their images here from what is installed:

* scikit-image's bundled photos (in the wheel, no download): `chelsea` is the one real cat;
  `astronaut`, `coffee`, `rocket`, `camera`, `hubble_deep_field`, `immunohistochemistry`,
  `stereo_motorcycle` and the textures `brick`, `grass`, `gravel` have no cat;
* the Debian package `darknet`, when installed, adds photos of other animals and people
  (`/usr/share/darknet/data/{dog,person,horses,giraffe,eagle,kite,scream}.jpg`): hard negatives.

Composites paste 0..6 varied copies of the cat (random crop, mirror, scale, small rotation,
brightness/contrast/saturation, sometimes grey) into distinct cells of a grid over a varied
background (photos, tinted textures, plain or noisy canvases), sometimes next to distractor
patches of other animals and objects. A single cat photo repeated identically would flatter the
detector; the variation is what makes a measured threshold mean something. Everything is a pure
function of the seed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageOps
from skimage import data

DARKNET_DATA = Path("/usr/share/darknet/data")
DARKNET_NEGATIVES = ("dog", "person", "horses", "giraffe", "eagle", "kite", "scream")
CANVAS_SIZES = ((640, 480), (800, 600), (1024, 768), (600, 600), (480, 640), (960, 540))
GRIDS: dict[int, tuple[tuple[int, int], ...]] = {  # cats -> candidate (columns, rows)
    0: ((1, 1), (2, 1), (2, 2)),
    1: ((1, 1), (2, 1), (2, 2)),
    2: ((2, 1), (1, 2), (2, 2)),
    3: ((3, 1), (2, 2), (3, 2)),
    4: ((2, 2), (3, 2)),
    5: ((3, 2), (2, 3)),
    6: ((3, 2), (2, 3)),
}
MAX_CATS = 6
# A stained-tissue micrograph: its brown, striped texture reads as tabby fur to the detector. It stays
# in the negative photos (and is reported there) but is not tiled into composites, where one copy
# per background or distractor would make it most of the "negative" signal in the sweep.
NOT_IN_COMPOSITES = frozenset({"immunohistochemistry"})
Split = Literal["tune", "validate"]
SPLIT_SEED_BASE: dict[str, int] = {"tune": 1_000, "validate": 2_000}


@dataclass(frozen=True)
class SampleImage:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    cats: int
    kind: Literal["photo", "negative", "composite"]
    boxes: tuple[tuple[int, int, int, int], ...] = ()  # where the cats are (composites), x1, y1, x2, y2


def _rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        array = np.where(array, 255, 0).astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=2)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


@functools.cache
def chelsea() -> np.ndarray:
    """The one real cat photo shipped in scikit-image (451x300, one cat)."""

    return _rgb(data.chelsea())


def _skimage_photos() -> dict[str, Callable[[], np.ndarray]]:
    return {
        "astronaut": data.astronaut,
        "coffee": data.coffee,
        "rocket": data.rocket,
        "camera": data.camera,
        "hubble_deep_field": data.hubble_deep_field,
        "immunohistochemistry": data.immunohistochemistry,
        "motorcycle": lambda: data.stereo_motorcycle()[0],
        "coins": data.coins,
    }


@functools.cache
def negatives() -> dict[str, np.ndarray]:
    """Photos without a cat: scikit-image's, plus darknet's animals and people when installed."""
    photos = {name: _rgb(load()) for name, load in _skimage_photos().items()}
    for name in DARKNET_NEGATIVES:
        path = DARKNET_DATA / f"{name}.jpg"
        if path.is_file():
            with Image.open(path) as img:
                photos[f"darknet_{name}"] = np.asarray(img.convert("RGB"))
    return photos


@functools.cache
def _textures() -> dict[str, np.ndarray]:
    return {"brick": data.brick(), "grass": data.grass(), "gravel": data.gravel()}


def _background(rng: np.random.Generator, size: tuple[int, int]) -> tuple[str, Image.Image]:
    width, height = size
    kind = rng.choice(["photo", "photo", "texture", "plain", "noise"])
    if kind == "photo":
        pool = {k: v for k, v in negatives().items() if not k.startswith("darknet_") and k not in NOT_IN_COMPOSITES}
        name = str(rng.choice(sorted(pool)))
        img = Image.fromarray(pool[name])
        return name, ImageOps.fit(img, size, Image.Resampling.BILINEAR, centering=tuple(rng.uniform(0.2, 0.8, 2)))
    if kind == "texture":
        name = str(rng.choice(sorted(_textures())))
        gray = _textures()[name].astype(np.float32) / 255.0
        tint = rng.uniform(0.35, 1.0, 3)
        rgb = (gray[..., None] * tint * 255).astype(np.uint8)
        return name, ImageOps.fit(Image.fromarray(rgb), size, Image.Resampling.BILINEAR)
    if kind == "plain":
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        return "plain", Image.new("RGB", size, colour)
    coarse = rng.integers(0, 256, (int(rng.integers(3, 24)), int(rng.integers(3, 24)), 3), dtype=np.uint8)
    return "noise", Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)


def _varied_cat(rng: np.random.Generator) -> Image.Image:
    """One RGBA copy of the cat: cropped, maybe mirrored, jittered in colour, maybe rotated."""
    img = Image.fromarray(chelsea())
    width, height = img.size
    left, right = rng.uniform(0, 0.12, 2) * width
    top, bottom = rng.uniform(0, 0.12, 2) * height
    img = img.crop((int(left), int(top), int(width - right), int(height - bottom)))
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.75, 1.25)))
    img = ImageEnhance.Contrast(img).enhance(float(rng.uniform(0.8, 1.2)))
    img = ImageEnhance.Color(img).enhance(float(rng.uniform(0.6, 1.3)))
    if rng.random() < 0.1:
        img = ImageOps.grayscale(img).convert("RGB")
    rgba = img.convert("RGBA")
    if rng.random() < 0.4:
        rgba = rgba.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR, expand=True)
    return rgba


def _distractor(rng: np.random.Generator) -> Image.Image:
    """A patch of something that is not a cat (other animals, people, objects)."""
    pool = {k: v for k, v in negatives().items() if k not in NOT_IN_COMPOSITES}
    name = str(rng.choice(sorted(pool)))
    img = Image.fromarray(pool[name])
    width, height = img.size
    crop = rng.uniform(0.5, 1.0)
    cw, ch = int(width * crop), int(height * crop)
    x0, y0 = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch)).convert("RGBA")


def _paste_fitted(canvas: Image.Image, patch: Image.Image, cell: tuple[int, int, int, int], rng: np.random.Generator,
                  fill: tuple[float, float]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = cell
    cell_w, cell_h = x1 - x0, y1 - y0
    factor = float(rng.uniform(*fill)) * min(cell_w / patch.width, cell_h / patch.height)
    size = (max(8, int(patch.width * factor)), max(8, int(patch.height * factor)))
    patch = patch.resize(size, Image.Resampling.BILINEAR)
    px = x0 + int(rng.integers(0, max(1, cell_w - size[0] + 1)))
    py = y0 + int(rng.integers(0, max(1, cell_h - size[1] + 1)))
    canvas.paste(patch, (px, py), patch)
    return (px, py, px + size[0], py + size[1])


def composite(cats: int, seed: int) -> SampleImage:
    """A composite with exactly `cats` varied cats (0..6) in distinct grid cells over a varied background."""
    if not 0 <= cats <= MAX_CATS:
        raise ValueError(f"cats must be in 0..{MAX_CATS}")
    rng = np.random.default_rng(seed)
    size = CANVAS_SIZES[int(rng.integers(len(CANVAS_SIZES)))]
    background_name, canvas = _background(rng, size)
    canvas = canvas.convert("RGBA")
    options = GRIDS[cats]
    cols, rows = options[int(rng.integers(len(options)))]
    if size[1] > size[0] and cols > rows:  # portrait canvas: stack the grid the other way
        cols, rows = rows, cols
    cell_w, cell_h = size[0] // cols, size[1] // rows
    cells = [(c * cell_w, r * cell_h, (c + 1) * cell_w, (r + 1) * cell_h) for r in range(rows) for c in range(cols)]
    order = rng.permutation(len(cells))
    boxes = tuple(_paste_fitted(canvas, _varied_cat(rng), cells[index], rng, (0.6, 0.95)) for index in order[:cats])
    spare = [cells[i] for i in order[cats:]]
    for cell in spare:
        if rng.random() < 0.5:
            _paste_fitted(canvas, _distractor(rng), cell, rng, (0.5, 0.9))
    name = f"composite-{cats}cats-seed{seed}-{background_name}"
    return SampleImage(name=name, image=np.asarray(canvas.convert("RGB")), cats=cats, kind="composite", boxes=boxes)


def sample_set(split: Split = "validate", per_count: int = 10) -> list[SampleImage]:
    """chelsea + every negative photo + `per_count` composites for each count 0..6.

    The two splits use disjoint seeds: thresholds are chosen on `tune` and reported on `validate`.
    """
    base = SPLIT_SEED_BASE[split]
    items = [SampleImage("chelsea", chelsea(), 1, "photo")]
    items += [SampleImage(name, image, 0, "negative") for name, image in sorted(negatives().items())]
    for cats in range(MAX_CATS + 1):
        items += [composite(cats, base + cats * 100 + index) for index in range(per_count)]
    return items


def iter_demo_samples() -> Iterator[tuple[str, np.ndarray, int]]:
    """The demo's images. The composite seeds are ones the default model counts correctly: the demo
    shows the pipeline working; the counter's accuracy is measured on `sample_set` (docs/counting.md)."""
    yield "chelsea-1cat", chelsea(), 1
    yield "coffee-0cats", negatives()["coffee"], 0
    for cats, seed in ((3, 7), (5, 6)):
        sample = composite(cats, seed)
        yield f"composite-{cats}cats", sample.image, cats


def write_samples(directory: Path) -> list[Path]:
    """Write demo images (no cat, one cat, several cats) as JPEG/PNG into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (name, image, _cats) in enumerate(iter_demo_samples()):
        path = directory / (f"{name}.jpg" if index % 2 == 0 else f"{name}.png")
        if path.suffix == ".jpg":
            Image.fromarray(image).save(path, quality=92)
        else:
            Image.fromarray(image).save(path)
        paths.append(path)
    return paths
