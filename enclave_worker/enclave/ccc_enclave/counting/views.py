"""Which parts of an image the detector looks at: the whole image, plus optional overlapping tiles.

A 416-pixel detector sees a cat that fills a sixth of a 1000-pixel photo at under 100 pixels, where
this class of model gets unreliable. Looking again at overlapping tiles enlarges such cats; the
overlap is large enough that a cat cut by one tile's edge is whole in a neighbouring tile or in
the full view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class View:
    x0: int
    y0: int
    x1: int
    y1: int

    def crop(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[self.y0 : self.y1, self.x0 : self.x1])

    def inner_edges(self, width: int, height: int) -> tuple[bool, bool, bool, bool]:
        """Which of left, top, right, bottom are inside the image (cuts), not the image border."""
        return (self.x0 > 0, self.y0 > 0, self.x1 < width, self.y1 < height)


def plan_views(width: int, height: int, grid: int, overlap: float) -> list[View]:
    """The full image first, then grid x grid tiles (row-major) overlapping by `overlap` of a tile."""
    views = [View(0, 0, width, height)]
    if grid <= 1:
        return views
    span = grid - (grid - 1) * overlap
    tile_w = min(width, max(1, int(np.ceil(width / span))))
    tile_h = min(height, max(1, int(np.ceil(height / span))))
    xs = np.linspace(0, width - tile_w, grid).round().astype(int)
    ys = np.linspace(0, height - tile_h, grid).round().astype(int)
    tiles = [View(int(x), int(y), int(x) + tile_w, int(y) + tile_h) for y in ys for x in xs]
    return views + [tile for tile in dict.fromkeys(tiles) if tile != views[0]]
