"""A bad image's error leaves the enclave without anything derived from the image."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest

from ccc.evaluation.testing import constant_detector, nanodet_outputs
from ccc_enclave.counting import ImageError, load_image, load_spec_file
from ccc_enclave.onnx_counter import OnnxCounter
from ccc_enclave.ports import JobError
from ccc_enclave.protocol.errors import ErrorCode


def png_header_only(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header is patched to claim width x height (refused before decoding)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def test_the_local_reason_is_detailed_and_the_summary_is_not():
    with pytest.raises(ImageError) as info:
        load_image(png_header_only(1999, 1997), max_pixels=1_000_000)
    assert "1999" in info.value.reason
    assert "1999" not in info.value.summary and "1997" not in info.value.summary
    assert "pixel limit" in info.value.summary


@pytest.fixture(scope="module")
def counter(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    outputs = nanodet_outputs([(4, 4, 20, 20, 15, 0.9)], input_size=(64, 64))
    (directory / "detector.onnx").write_bytes(constant_detector(outputs, input_shape=(1, 3, 64, 64)))
    (directory / "spec.json").write_text(json.dumps({
        "name": "test", "model_path": "detector.onnx", "input_size": 64, "decoder": "nanodet", "tile_grid": 1,
    }))
    return OnnxCounter(load_spec_file(directory / "spec.json"), max_pixels=1_000_000)


@pytest.mark.parametrize("data", [png_header_only(1999, 1997), b"\x89PNG\r\n\x1a\n" + b"\x07" * 64])
def test_enclave_error_reason_carries_no_image_detail(counter, data):
    with pytest.raises(JobError) as info:
        counter.count(data)
    assert info.value.code == ErrorCode.BAD_IMAGE
    reason = str(info.value.reason) if hasattr(info.value, "reason") else str(info.value)
    assert "1999" not in reason and "1997" not in reason


def test_a_good_image_is_still_counted(counter):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="PNG")
    assert counter.count(buffer.getvalue()).cats == 1
