"""Draw cat boxes and scores onto an image (for `ccc count --annotate`): people like to look."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ccc_enclave.counting.counter import CountResult

BOX_COLOUR = (255, 40, 120)
TEXT_COLOUR = (255, 255, 255)


def annotate(image: np.ndarray, result: CountResult) -> Image.Image:
    """A copy of `image` with each detection's box and score, and the total in the corner."""
    canvas = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(min(canvas.size) / 200))
    font = ImageFont.load_default(size=max(12, round(min(canvas.size) / 30)))
    for detection in result.detections:
        x1, y1, x2, y2 = detection.box
        draw.rectangle((x1, y1, x2, y2), outline=BOX_COLOUR, width=width)
        _label(draw, (x1, y1), f"cat {detection.score:.2f}", font)
    _label(draw, (0, 0), f"{result.cats} cat{'s' if result.cats != 1 else ''}", font)
    return canvas


def _label(draw: ImageDraw.ImageDraw, corner: tuple[float, float], text: str, font: ImageFont.ImageFont |
           ImageFont.FreeTypeFont) -> None:
    left, top, right, bottom = draw.textbbox(corner, text, font=font)
    draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=BOX_COLOUR)
    draw.text(corner, text, fill=TEXT_COLOUR, font=font)
