"""Check image paths before anything is encrypted or uploaded: fail early with a clear reason.

Why the header check here: the enclave refuses what it cannot decode, but by then the tenant has
paid for a job and waits for a failure. The client reads only the file's header (Pillow opens
lazily: format and dimensions, no pixel is decoded) and applies the enclave's own rules — the
formats and the pixel limit in `ccc_core.limits` — so a PDF renamed .jpg or a 100-megapixel scan
is refused on the tenant's machine, before anything is encrypted. A file whose header passes but
whose pixel data is corrupt still reaches the enclave and fails there, with a reason.
"""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ccc.client.errors import InputError
from ccc_core.limits import IMAGE_FORMATS, LIMITS


@dataclass(frozen=True)
class ImageInput:
    path: Path
    size: int


def check_image(path: Path, max_bytes: int, *, header: bool = True) -> ImageInput:
    """A regular, readable, non-empty file of at most `max_bytes` whose header is an image the
    enclave accepts (`check_image_header`), or InputError saying which rule fails. `header=False`
    is for fault-injection harnesses that must send the enclave what it will refuse."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot access ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise InputError(f"{path}: empty file")
    if info.st_size > max_bytes:
        raise InputError(f"{path}: {info.st_size} bytes, the limit is {max_bytes} bytes")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise InputError(f"{path}: not readable ({exc.strerror})") from None
    if header:
        check_image_header(path, max_pixels=LIMITS.max_image_pixels)
    return ImageInput(path=Path(path), size=info.st_size)


def check_image_header(path: Path, *, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) from the header alone, or InputError: not an image the enclave
    decodes, or more pixels than it accepts."""
    accepted = ", ".join(IMAGE_FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=list(IMAGE_FORMATS)) as img:
                image_format, (width, height) = str(img.format), img.size
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image the enclave accepts ({accepted})") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: more pixels than the limit of {max_pixels}") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's header parsers raise these
        raise InputError(f"{path}: unreadable image header ({type(exc).__name__})") from None
    if width <= 0 or height <= 0:
        raise InputError(f"{path}: invalid image dimensions {width}x{height}")
    if width * height > max_pixels:
        raise InputError(f"{path}: {width}x{height} = {width * height} pixels, the limit is {max_pixels}")
    return image_format, width, height


def check_images(paths: list[Path], max_bytes: int) -> list[ImageInput]:
    """All or nothing: one bad path stops the whole submission before any upload."""
    errors: list[str] = []
    checked: list[ImageInput] = []
    for path in paths:
        try:
            checked.append(check_image(path, max_bytes))
        except InputError as exc:
            errors.append(str(exc))
    if errors:
        raise InputError("; ".join(errors))
    return checked
