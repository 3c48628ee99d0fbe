"""Safe image decoding: bytes from an untrusted client -> an RGB uint8 array, or `ImageError`.

The enclave decodes whatever a tenant uploads, so decoding must never crash, hang or exhaust
memory, and every refusal must say why. The defences, in order:

1. byte-size limit and empty input are refused before Pillow sees anything;
2. only a fixed list of formats is tried (no PSD/ICO/EPS/... plugins, EPS would even run Ghostscript);
3. the pixel count from the *header* is checked against `max_pixels` before any pixel is decoded
   (decompression bombs: a few KB of PNG can claim 100k x 100k pixels); Pillow's own bomb warning
   and error are turned into `ImageError` as a second line;
4. truncated data is an error (`ImageFile.LOAD_TRUNCATED_IMAGES` stays False), and any exception a
   decoder plugin raises on malformed input becomes `ImageError`.

Conversion rules: EXIF orientation is applied (phones store rotated JPEGs); the first frame of an
animation or multi-page file is used; grayscale, palette, CMYK and YCbCr become RGB; 16-bit and
32-bit grayscale are scaled down to 8 bits (not clipped); transparent images are composited on
*white*, because the colour values under fully transparent pixels are arbitrary (often black or
left-over content) and feeding them to the detector would count cats nobody can see.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ccc_core.limits import IMAGE_FORMATS, LIMITS
from ccc_enclave.errors import EnclaveError

DEFAULT_MAX_PIXELS = LIMITS.max_image_pixels
DEFAULT_MAX_BYTES = LIMITS.max_image_bytes
SUPPORTED_FORMATS: tuple[str, ...] = IMAGE_FORMATS

# Pillow's own guard (warning above the limit, error above twice the limit) is a backstop for the
# explicit header check below; keep it no looser than the project's limit.
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > DEFAULT_MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.init()  # register every plugin now so that `formats=` can name MPO/WEBP/TIFF


class ImageError(EnclaveError, ValueError):
    """The bytes are not an image this service accepts; `reason` says why (safe to show a client).

    `summary` says the same without anything derived from the image (dimensions, decoder
    messages): it is what may leave the enclave, where even an image's size is confidential.
    """

    def __init__(self, reason: str, summary: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.summary = summary if summary is not None else reason


def load_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """Decode `data` into an (H, W, 3) uint8 RGB array, or raise `ImageError` with the reason."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError("empty input: no image bytes")
    if len(data) > max_bytes:
        raise ImageError(f"image is {len(data)} bytes, over the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # plugins' notes on odd-but-readable files
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(bytes(data), max_pixels)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image is over the pixel limit (decompression bomb guard): {exc}",
                         "image is over the pixel limit") from None
    except Image.UnidentifiedImageError:
        raise ImageError(
            "not a supported image (expected " + "/".join(SUPPORTED_FORMATS) + ")"
        ) from None
    except MemoryError:
        raise ImageError("image too large to decode in memory") from None
    except Exception as exc:  # any decoder-plugin failure on malformed input is a bad image, not a crash
        raise ImageError(f"truncated or corrupt image data ({type(exc).__name__}: {_short(exc)})",
                         f"truncated or corrupt image data ({type(exc).__name__})") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or "no detail"
    return text if len(text) <= 200 else text[:197] + "..."


def _decode(data: bytes, max_pixels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data), formats=list(SUPPORTED_FORMATS)) as img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageError(f"image has invalid dimensions {width}x{height}", "image has invalid dimensions")
        if width * height > max_pixels:
            raise ImageError(
                f"image is {width}x{height} = {width * height} pixels, over the pixel limit of {max_pixels}",
                f"image is over the pixel limit of {max_pixels}",
            )
        img.seek(0)  # first frame of animations / multi-page TIFF
        img.load()
        oriented = ImageOps.exif_transpose(img)
        rgb = _to_rgb(oriented if oriented is not None else img)
        array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"decoded to an unexpected shape {array.shape}", "decoded to an unexpected shape")
    return np.ascontiguousarray(array)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return Image.fromarray(_high_depth_to_uint8(np.asarray(img)), mode="L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit samples scale by 1/257 (65535 -> 255); float samples in [0, 1] scale by 255, else clip."""
    if values.dtype.kind == "f":
        finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
            finite = finite * 255.0
        return np.clip(np.rint(finite), 0, 255).astype(np.uint8)
    wide = values.astype(np.int64)
    if wide.size and wide.max() > 255:
        wide = wide // 257
    return np.clip(wide, 0, 255).astype(np.uint8)
