"""Shared builders for the attestation tests (this module holds no tests itself).

`craft_document` signs an arbitrary payload with a leaf from a LocalNitroCA so tests can build
documents the SimulatedNsm would refuse to produce (wrong alg, oversize fields, odd types).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ccc_enclave.nsm.simulated import LocalNitroCA

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "attestation"
ZERO_PCR = bytes(48)


@dataclass(frozen=True)
class Vector:
    name: str
    data: bytes
    meta: dict[str, Any]

    @property
    def debug(self) -> bool:
        return bool(self.meta["debug_mode"])

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.meta["timestamp_ms"] / 1000, tz=UTC)


def load_vectors() -> list[Vector]:
    vectors = []
    for path in sorted(FIXTURES.glob("*.cbor")):
        meta = json.loads(path.with_suffix(".json").read_text())
        vectors.append(Vector(path.stem, path.read_bytes(), meta))
    return vectors


VECTORS = load_vectors()


def vector(name: str) -> Vector:
    return next(v for v in VECTORS if v.name == name)


def payload_for(ca: LocalNitroCA, now: datetime, **overrides: Any) -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey]:
    key, leaf = ca.issue_leaf("crafted.local", now)
    payload: dict[str, Any] = {
        "module_id": "i-crafted-enc0",
        "digest": "SHA384",
        "timestamp": int(now.timestamp() * 1000),
        "pcrs": {i: (bytes([i + 1]) * 48 if i < 3 else ZERO_PCR) for i in range(16)},
        "certificate": leaf,
        "cabundle": list(ca.cabundle),
        "public_key": None,
        "user_data": None,
        "nonce": None,
    }
    for name, value in overrides.items():
        if value is _DELETE:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload, key


_DELETE = object()
DELETE = _DELETE


def sign_raw(
    payload_bytes: bytes,
    key: ec.EllipticCurvePrivateKey,
    *,
    protected: bytes = b"\xa1\x01\x38\x22",
    tagged: bool = False,
) -> bytes:
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload_bytes])
    r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA384())))
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    encoded = cbor2.dumps([protected, {}, payload_bytes, signature])
    return b"\xd2" + encoded if tagged else encoded


def craft_document(ca: LocalNitroCA, now: datetime, **overrides: Any) -> bytes:
    payload, key = payload_for(ca, now, **overrides)
    return sign_raw(cbor2.dumps(payload), key)
