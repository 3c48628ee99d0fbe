"""`DeviceNsm`: the real Nitro Secure Module, reached with one ioctl on /dev/nsm.

This is the thin hardware adapter behind the `Nsm` protocol; it only runs inside a Nitro
enclave. The protocol (aws-nitro-enclaves-nsm-api, driver `nsm.h`): the request and response
are CBOR, passed as two iovecs in `struct nsm_message { struct iovec request, response; }`
through `ioctl(fd, _IOWR(0x0A, 0, struct nsm_message))`; the driver writes the response length
back into `response.iov_len`. The request for a document is
`{"Attestation": {"user_data": ..., "nonce": ..., "public_key": ...}}` and the answer is
`{"Attestation": {"document": <COSE_Sign1 bytes>}}` or `{"Error": "<ErrorCode>"}`.

The `aws-nsm-interface` package (PyPI, last release 2020) does the same with an extra dependency
(ioctl-opt) and text-mode file handles; forty lines of ctypes are easier to audit.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
from typing import Any

import cbor2

from ccc_enclave.errors import EnclaveError
from ccc_enclave.nsm.simulated import check_request_fields

NSM_DEVICE_PATH = "/dev/nsm"
NSM_IOCTL_MAGIC = 0x0A
NSM_REQUEST_MAX_SIZE = 0x1000
NSM_RESPONSE_MAX_SIZE = 0x3000
_IOC_READ_WRITE = 3


class NsmDeviceError(EnclaveError, RuntimeError):
    """The device is missing, the ioctl failed, or the NSM answered with an error."""


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _NsmMessage(ctypes.Structure):
    _fields_ = [("request", _IoVec), ("response", _IoVec)]


def _iowr(magic: int, number: int, size: int) -> int:
    """Linux `_IOWR(magic, number, size)` (asm-generic/ioctl.h layout)."""
    return (_IOC_READ_WRITE << 30) | (size << 16) | (magic << 8) | number


NSM_IOCTL_REQUEST = _iowr(NSM_IOCTL_MAGIC, 0, ctypes.sizeof(_NsmMessage))


def encode_attestation_request(
    public_key: bytes | None, user_data: bytes | None, nonce: bytes | None
) -> bytes:
    check_request_fields(public_key, user_data, nonce)
    request = cbor2.dumps({"Attestation": {"user_data": user_data, "nonce": nonce, "public_key": public_key}})
    if len(request) > NSM_REQUEST_MAX_SIZE:
        raise NsmDeviceError(f"NSM request is {len(request)} bytes, the device accepts {NSM_REQUEST_MAX_SIZE}")
    return request


def decode_attestation_response(response: bytes) -> bytes:
    try:
        answer: Any = cbor2.loads(response)
    except Exception as exc:  # any decoder failure means the device answered garbage
        raise NsmDeviceError("NSM answered with invalid CBOR") from exc
    if isinstance(answer, dict) and "Error" in answer:
        raise NsmDeviceError(f"NSM refused the attestation request: {answer['Error']!r}")
    body = answer.get("Attestation") if isinstance(answer, dict) else None
    document = body.get("document") if isinstance(body, dict) else None
    if not isinstance(document, bytes) or not document:
        raise NsmDeviceError("NSM answer carries no attestation document")
    return document


class DeviceNsm:
    """`Nsm` implementation for a real enclave. Opens the device per call (no shared fd state)."""

    def __init__(self, device_path: str = NSM_DEVICE_PATH) -> None:
        self._device_path = device_path

    def attest(
        self, *, public_key: bytes | None = None, user_data: bytes | None = None, nonce: bytes | None = None
    ) -> bytes:
        request = encode_attestation_request(public_key, user_data, nonce)
        return decode_attestation_response(self._call(request))

    def _call(self, request: bytes) -> bytes:
        request_buffer = ctypes.create_string_buffer(request, len(request))
        response_buffer = ctypes.create_string_buffer(NSM_RESPONSE_MAX_SIZE)
        message = _NsmMessage(
            _IoVec(ctypes.addressof(request_buffer), len(request)),
            _IoVec(ctypes.addressof(response_buffer), NSM_RESPONSE_MAX_SIZE),
        )
        try:
            descriptor = os.open(self._device_path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            reason = f"cannot open {self._device_path}: {exc.strerror} (not inside a Nitro enclave?)"
            raise NsmDeviceError(reason) from exc
        try:
            fcntl.ioctl(descriptor, NSM_IOCTL_REQUEST, message)
        except OSError as exc:
            raise NsmDeviceError(f"NSM ioctl failed: {exc.strerror}") from exc
        finally:
            os.close(descriptor)
        length = message.response.iov_len
        if not 0 < length <= NSM_RESPONSE_MAX_SIZE:
            raise NsmDeviceError(f"NSM returned an impossible response length {length}")
        return response_buffer.raw[:length]
