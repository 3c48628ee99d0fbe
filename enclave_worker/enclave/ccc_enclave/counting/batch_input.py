"""All views of one image, letterboxed and normalised straight into one reusable batch tensor.

The reference path (`letterbox.preprocess`, one call per view) copies each crop, converts it to a
PIL image, resizes, pads a uint8 canvas, converts the whole canvas to float32, flips channels,
normalises in three passes and transposes: about 5 ms per view, a fifth of an image's time. Here
the image becomes a PIL image once, each view is cut from it (`Image.crop` copies the same pixels
the array slice held) and resized with the same filter, so the resized pixels are the reference's
bit for bit; normalisation is a 256-entry table per channel built with the reference's own float32
operations, so `table[v]` equals `(float32(v) * scale - mean) / std` exactly, and one `np.take`
per channel writes the result into the batch buffer at its letterbox offset. The buffer is
per-thread (the enclave counts two jobs at once) and reused while the batch shape stays the same.
The views are resized on a small thread pool (Pillow's resize and numpy's take release the GIL):
before inference only one core would otherwise be busy.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ccc_enclave.counting.letterbox import Letterbox, fit
from ccc_enclave.counting.spec import DetectorSpec
from ccc_enclave.counting.views import View


def normalisation_table(spec: DetectorSpec) -> np.ndarray:
    """[3, 256] float32: network channel c's value for each uint8 level, computed like `to_tensor` does."""
    levels = np.arange(256, dtype=np.uint8)
    table = np.empty((3, 256), dtype=np.float32)
    for channel in range(3):
        values = levels.astype(np.float32)
        if spec.scale != 1.0:
            values *= np.float32(spec.scale)
        values -= np.asarray(spec.mean, dtype=np.float32)[channel]
        values /= np.asarray(spec.std, dtype=np.float32)[channel]
        table[channel] = values
    return table


@dataclass(frozen=True)
class ViewPass:
    """One model input: a view of the image, optionally mirrored left-right."""

    view: View
    mirrored: bool


class BatchWriter:
    """Fills a [views, ...] float32 input for `spec` from an (H, W, 3) uint8 RGB image. Thread-safe."""

    def __init__(self, spec: DetectorSpec, *, workers: int = 1) -> None:
        self._spec = spec
        self._table = normalisation_table(spec)
        # Network channel c reads image channel _source[c] (BGR models read the image reversed).
        self._source = (2, 1, 0) if spec.channel_order == "BGR" else (0, 1, 2)
        self._pad = self._table[:, spec.pad_value]
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ccc-views") if workers > 1 else None

    def _buffer(self, count: int) -> np.ndarray:
        width, height = self._spec.input_wh
        shape = (count, 3, height, width) if self._spec.layout == "NCHW" else (count, height, width, 3)
        buffer: np.ndarray | None = getattr(self._local, "buffer", None)
        if buffer is None or buffer.shape != shape:
            buffer = np.empty(shape, dtype=np.float32)
            self._local.buffer = buffer
        return buffer

    def fill(self, image: np.ndarray, passes: Sequence[ViewPass]) -> tuple[np.ndarray, list[Letterbox]]:
        """The batch tensor (valid until this thread's next `fill`) and each pass's placement."""
        buffer = self._buffer(len(passes))
        whole = Image.fromarray(np.ascontiguousarray(image))

        def one(index: int) -> Letterbox:
            return self._fill_one(buffer[index], whole, passes[index])

        if self._pool is None or len(passes) < 2:
            return buffer, [one(index) for index in range(len(passes))]
        return buffer, list(self._pool.map(one, range(len(passes))))

    def _fill_one(self, target: np.ndarray, whole: Image.Image, item: ViewPass) -> Letterbox:
        view = item.view
        crop_w, crop_h = view.x1 - view.x0, view.y1 - view.y0
        placement, new_w, new_h = fit(crop_w, crop_h, self._spec.input_wh)
        region = whole if (crop_w, crop_h) == whole.size else whole.crop((view.x0, view.y0, view.x1, view.y1))
        if item.mirrored:
            region = region.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if (new_w, new_h) != (crop_w, crop_h):
            region = region.resize((new_w, new_h), Image.Resampling.BILINEAR)
        self._write(target, np.asarray(region), placement, new_w, new_h)
        return placement

    def _write(self, target: np.ndarray, pixels: np.ndarray, placement: Letterbox, new_w: int, new_h: int) -> None:
        top, left = placement.pad_y, placement.pad_x
        if self._spec.layout == "NCHW":
            pad = self._pad[:, np.newaxis, np.newaxis]
            target[:, :top] = pad  # only the padding: the inside is written below (no pixel twice)
            target[:, top + new_h :] = pad
            target[:, top : top + new_h, :left] = pad
            target[:, top : top + new_h, left + new_w :] = pad
            for channel, source in enumerate(self._source):
                inside = target[channel, top : top + new_h, left : left + new_w]
                np.take(self._table[channel], pixels[..., source], out=inside, mode="clip")
        else:
            target[:top] = self._pad
            target[top + new_h :] = self._pad
            target[top : top + new_h, :left] = self._pad
            target[top : top + new_h, left + new_w :] = self._pad
            for channel, source in enumerate(self._source):
                inside = target[top : top + new_h, left : left + new_w, channel]
                np.take(self._table[channel], pixels[..., source], out=inside, mode="clip")
