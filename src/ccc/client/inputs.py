"""Check image paths before anything is encrypted or uploaded: fail early with a clear reason."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ccc.client.errors import InputError


@dataclass(frozen=True)
class ImageInput:
    path: Path
    size: int


def check_image(path: Path, max_bytes: int) -> ImageInput:
    """A regular, readable, non-empty file of at most `max_bytes`, or InputError saying which rule fails."""
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
    return ImageInput(path=Path(path), size=info.st_size)


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
