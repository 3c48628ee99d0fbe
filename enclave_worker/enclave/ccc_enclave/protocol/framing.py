"""Length-prefixed frames: a 4-byte big-endian length, then exactly that many bytes of body.

Why this shape: a stream socket may deliver any number of bytes per `recv`, and the peer is
hostile until proven otherwise. So the announced length is checked against the maximum *before*
a buffer is allocated (a 4 GiB header costs the enclave nothing), the body is read exactly in
bounded slices, and an EOF is a clean close only at a frame boundary. Frames know nothing about
what they carry; message types live beside this module (see the package docstring).
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from ccc_core.limits import LIMITS
from ccc_enclave.protocol.errors import ConnectionClosed, FrameTooLarge, ProtocolError

FRAME_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = LIMITS.max_frame_bytes
# Reading the body in bounded slices keeps a slow sender from making us allocate many small buffers.
_READ_CHUNK = 1024 * 1024


class ByteSource(Protocol):
    """What frame reading needs from a stream: `socket.socket` satisfies it."""

    def recv_into(self, buffer: memoryview, nbytes: int = 0, /) -> int: ...


class ByteSink(Protocol):
    """What frame writing needs from a stream: `socket.socket` satisfies it."""

    def sendall(self, data: bytes, /) -> Any: ...


def read_frame(source: ByteSource, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Read one frame body. Raises ConnectionClosed on EOF between frames, FrameTooLarge before allocating."""
    header = bytearray(FRAME_HEADER.size)
    if not _read_exact_into(source, memoryview(header), at_boundary=True):
        raise ConnectionClosed()
    (length,) = FRAME_HEADER.unpack(header)
    if length > max_frame_bytes:
        raise FrameTooLarge(length, max_frame_bytes)
    if length == 0:
        raise ProtocolError("empty frame")
    body = bytearray(length)
    _read_exact_into(source, memoryview(body), at_boundary=False)
    return bytes(body)


def encode_frame(payload: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Header + payload; refuses payloads the peer would refuse."""
    _check_payload(payload, max_frame_bytes)
    return FRAME_HEADER.pack(len(payload)) + payload


def write_frame(sink: ByteSink, payload: bytes, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
    """Send one frame; refuses payloads the peer would refuse."""
    _check_payload(payload, max_frame_bytes)
    # Two writes avoid copying a 24 MiB payload just to prepend four bytes.
    sink.sendall(FRAME_HEADER.pack(len(payload)))
    sink.sendall(payload)


def _check_payload(payload: bytes, max_frame_bytes: int) -> None:
    if not payload:
        raise ProtocolError("empty frame")
    if len(payload) > max_frame_bytes:
        raise FrameTooLarge(len(payload), max_frame_bytes)


def _read_exact_into(source: ByteSource, view: memoryview, *, at_boundary: bool) -> bool:
    """Fill `view` completely; False on a clean EOF before the first byte when `at_boundary`."""
    filled = 0
    total = len(view)
    while filled < total:
        got = source.recv_into(view[filled:], min(total - filled, _READ_CHUNK))
        if got == 0:
            if filled == 0 and at_boundary:
                return False
            raise ProtocolError(f"stream ended after {filled} of {total} bytes")
        if got < 0 or got > total - filled:
            raise ProtocolError("stream reported an impossible read size")
        filled += got
    return True
