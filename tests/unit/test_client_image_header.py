"""`ccc submit` refuses what the enclave would refuse, from the header alone (issue 15 §3).

A tenant learns on its own machine, before anything is encrypted or uploaded, that a file is not
an image the enclave decodes or has more pixels than it accepts; no pixel is decoded to find out.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from ccc.client import InputError, check_image
from ccc.client.inputs import check_image_header
from ccc_core.limits import IMAGE_FORMATS, LIMITS


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims width x height and whose pixel data is absent: only a header parser
    can judge it, so a check that decoded pixels would fail differently (or run out of memory)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_format_the_enclave_decodes_passes(tmp_path: Path, image_format: str) -> None:
    assert image_format in IMAGE_FORMATS
    path = tmp_path / f"cat.{image_format.lower()}"
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path, image_format)
    assert check_image_header(path, max_pixels=LIMITS.max_image_pixels) == (image_format, 32, 24)
    assert check_image(path, LIMITS.max_image_bytes).size == path.stat().st_size


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"%PDF-1.7\n" + b"x" * 200, "not an image the enclave accepts"),
        (b"this is not an image\n" * 20, "not an image the enclave accepts"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image the enclave accepts"),
    ],
)
def test_files_that_are_not_accepted_images_are_refused_before_encryption(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "cat.jpg"  # the name does not matter, the bytes do
    path.write_bytes(content)
    with pytest.raises(InputError, match=why) as info:
        check_image(path, LIMITS.max_image_bytes)
    assert str(path) in str(info.value)
    assert "JPEG, PNG" in str(info.value)  # says what would be accepted


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    path = _png_header_only(tmp_path / "scan.png", 10_000, 5_000)  # 50 Mpx > 40 Mpx, no pixel data at all
    with pytest.raises(InputError, match="10000x5000 = 50000000 pixels, the limit is 40000000"):
        check_image(path, LIMITS.max_image_bytes)


def test_a_decompression_bomb_header_is_one_clear_error(tmp_path: Path) -> None:
    path = _png_header_only(tmp_path / "bomb.png", 60_000, 60_000)  # Pillow's own guard trips first
    with pytest.raises(InputError, match="more pixels than the limit"):
        check_image(path, LIMITS.max_image_bytes)


def test_a_fault_injection_harness_can_skip_the_header_check(tmp_path: Path) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(b"\x01" * 100)
    assert check_image(path, 1000, header=False).size == 100
