"""Letterbox resize (keep aspect, pad) and its inverse, plus tensor normalisation.

Detectors are trained on a fixed input size; stretching an image to it would distort cats, so the
image is scaled by one factor to fit, centred, and the rest is padded. `Letterbox` remembers the
factor and offsets so that boxes found in network-input pixels map back to original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ccc_enclave.counting.spec import DetectorSpec


@dataclass(frozen=True)
class Letterbox:
    """How an original (width x height) image was placed into the network input."""

    scale: float
    pad_x: int
    pad_y: int
    width: int
    height: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """Map [M, 4] xyxy boxes from network-input pixels to original pixels, clipped to the image."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0.0, float(self.width))
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0.0, float(self.height))
        return out


def fit(width: int, height: int, size: tuple[int, int]) -> tuple[Letterbox, int, int]:
    """Where a width x height image goes in `size` = (width, height): placement and resized size."""
    target_w, target_h = size
    scale = min(target_w / width, target_h / height)
    new_w = min(target_w, max(1, round(width * scale)))
    new_h = min(target_h, max(1, round(height * scale)))
    pad_x = (target_w - new_w) // 2
    pad_y = (target_h - new_h) // 2
    return Letterbox(scale=scale, pad_x=pad_x, pad_y=pad_y, width=width, height=height), new_w, new_h


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = 0) -> tuple[np.ndarray, Letterbox]:
    """Fit `image` (H, W, 3 uint8) into `size` = (width, height): scale to fit, centre, pad."""
    height, width = image.shape[:2]
    placement, new_w, new_h = fit(width, height, size)
    if (new_w, new_h) == (width, height):
        resized = image
    else:
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    target_w, target_h = size
    pad_x, pad_y = placement.pad_x, placement.pad_y
    canvas = np.full((target_h, target_w, 3), pad_value, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, placement


def to_tensor(canvas: np.ndarray, spec: DetectorSpec) -> np.ndarray:
    """The letterboxed RGB canvas as the network input: channel order, normalisation, layout, batch of 1."""
    pixels = canvas[..., ::-1] if spec.channel_order == "BGR" else canvas
    tensor = pixels.astype(np.float32)
    if spec.scale != 1.0:
        tensor *= np.float32(spec.scale)
    tensor -= np.asarray(spec.mean, dtype=np.float32)
    tensor /= np.asarray(spec.std, dtype=np.float32)
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor[np.newaxis])


def preprocess(image: np.ndarray, spec: DetectorSpec) -> tuple[np.ndarray, Letterbox]:
    canvas, box = letterbox(image, spec.input_wh, spec.pad_value)
    return to_tensor(canvas, spec), box
