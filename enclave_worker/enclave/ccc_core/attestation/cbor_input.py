"""Decoding untrusted CBOR into Python values, with every decoder failure turned into a reason.

Attestation documents arrive from outside the trust boundary (a parent host, an S3 object, a
KMS request). cbor2 raises a handful of exception types on hostile input and silently ignores
trailing bytes; this module closes both gaps so callers see `AttestationError` and nothing else.
"""

from __future__ import annotations

import io
from typing import Any

import cbor2

from ccc_core.attestation.errors import AttestationError

# Nitro documents nest three levels deep (array -> map -> map/array); anything deeper is hostile.
MAX_NESTING = 16


def decode_exact(data: bytes, what: str) -> Any:
    """Decode exactly one CBOR item that spans all of `data` (no trailing bytes, no duplicate keys)."""
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(stream, max_depth=MAX_NESTING, allow_duplicate_keys=False)
        value = decoder.decode()
    except Exception as exc:  # cbor2 raises several types (decode, value, overflow, recursion) on junk
        raise AttestationError(f"{what} is not valid CBOR ({type(exc).__name__})") from exc
    if stream.tell() != len(data):
        raise AttestationError(f"{what} has {len(data) - stream.tell()} trailing byte(s) after the CBOR item")
    return value
