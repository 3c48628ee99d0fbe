"""Safe image loading: every accepted format and mode decodes to RGB; every bad input is an ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ccc_enclave.counting.images import ImageError, load_image


def gradient(width: int = 40, height: int = 30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[np.newaxis, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, np.newaxis].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2), "RGB")


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_each_supported_format_decodes_to_rgb_uint8(fmt: str) -> None:
    array = load_image(encode(gradient(), fmt))
    assert array.shape == (30, 40, 3)
    assert array.dtype == np.uint8
    # Lossy formats and GIF's palette change values a little; the picture must still be the picture.
    assert np.abs(array.astype(int) - np.asarray(gradient()).astype(int)).mean() < 12


def test_exif_orientation_is_applied() -> None:
    img = gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    array = load_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert array.shape == (40, 30, 3)
    expected = np.asarray(img.transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert np.abs(array.astype(int) - expected).mean() < 6


def test_gif_uses_the_first_frame() -> None:
    red = Image.new("RGB", (16, 16), (255, 0, 0))
    blue = Image.new("RGB", (16, 16), (0, 0, 255))
    data = encode(red, "GIF", save_all=True, append_images=[blue], duration=100)
    array = load_image(data)
    assert tuple(array[8, 8]) == (255, 0, 0)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "PNG"), ("1", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("CMYK", "TIFF"), ("LA", "PNG"), ("I;16", "PNG"),
     ("I;16", "TIFF"), ("F", "TIFF"), ("YCbCr", "JPEG")],
)
def test_other_modes_become_rgb(mode: str, fmt: str) -> None:
    source = gradient().convert(mode) if mode not in ("I;16", "F") else None
    if mode == "I;16":
        values = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
        source = Image.fromarray(values)
    elif mode == "F":
        source = Image.fromarray(np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(30, 40))
    assert source is not None
    array = load_image(encode(source, fmt))
    assert array.shape == (30, 40, 3)
    assert array.dtype == np.uint8


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    values = np.full((10, 10), 65535, dtype=np.uint16)
    values[:, :5] = 32896  # 128 * 257
    array = load_image(encode(Image.fromarray(values), "PNG"))
    assert tuple(array[0, 0]) == (128, 128, 128)
    assert tuple(array[0, 9]) == (255, 255, 255)


def test_transparent_pixels_become_white() -> None:
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)  # black, fully transparent
    rgba[:, :5] = (0, 0, 255, 255)  # opaque blue on the left
    array = load_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(array[0, 0]) == (0, 0, 255)
    assert tuple(array[0, 9]) == (255, 255, 255)


def test_palette_with_transparency_becomes_white_where_transparent() -> None:
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(0, (0, 0, 4, 8))
    array = load_image(encode(img, "PNG", transparency=0))
    assert tuple(array[0, 0]) == (255, 255, 255)
    assert tuple(array[0, 7]) == (255, 0, 0)


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb's calling card)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    with pytest.raises(ImageError, match="over the pixel limit"):
        load_image(png_claiming_size(100_000, 100_000))
    with pytest.raises(ImageError, match="over the pixel limit"):
        load_image(encode(gradient(40, 30), "PNG"), max_pixels=1000)
    assert load_image(encode(gradient(40, 30), "PNG"), max_pixels=1200).shape == (30, 40, 3)


def test_byte_limit() -> None:
    with pytest.raises(ImageError, match="bytes"):
        load_image(encode(gradient(), "PNG"), max_bytes=100)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, this is not an image", "not a supported image"),
        (b"%PDF-1.4\n", "not a supported image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not a supported image"),  # EPS would run Ghostscript: never tried
    ],
)
def test_non_images_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        load_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"])
def test_truncated_images_are_refused(fmt: str) -> None:
    data = encode(gradient(200, 150), fmt)
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 2])


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(ImageError, match="expected bytes"):
        load_image("a string")  # type: ignore[arg-type]


VALID = [encode(gradient(24, 18), fmt) for fmt in ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")]


def outcome_is_array_or_image_error(data: bytes) -> None:
    try:
        array = load_image(data, max_pixels=1_000_000)
    except ImageError as exc:
        assert exc.reason
        return
    assert array.dtype == np.uint8
    assert array.ndim == 3
    assert array.shape[2] == 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_an_array_or_image_error(data: bytes) -> None:
    outcome_is_array_or_image_error(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(min_value=0, max_value=4095), st.integers(min_value=0, max_value=255)), max_size=8),
    st.integers(min_value=0, max_value=4096),
)
def test_mutated_valid_images_give_an_array_or_image_error(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for position, value in flips:
        data[position % len(data)] = value
    if cut:
        data = data[: max(1, len(data) - cut)]
    outcome_is_array_or_image_error(bytes(data))
