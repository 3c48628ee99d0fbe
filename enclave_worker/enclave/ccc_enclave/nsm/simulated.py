"""The Nitro Secure Module port, and the simulated NSM the local tier runs.

`Nsm.attest` returns exactly what /dev/nsm returns: raw untagged COSE_Sign1 bytes. The enclave
code depends on this protocol only; `SimulatedNsm` (here) and `DeviceNsm`
(`ccc_enclave.nsm.device`, real hardware) are its two adapters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ccc_core.attestation.cose import sign_es384
from ccc_core.attestation.document import (
    DIGEST_SHA384,
    MAX_OPTIONAL_FIELD_BYTES,
    MAX_PCR_INDEX,
    PCR_BYTES,
)
from ccc_core.attestation.errors import AttestationError
from ccc_enclave.nsm.local_ca import LocalCAError, LocalNitroCA
from ccc_enclave.nsm.measurement import measure_enclave, pcr_extend

__all__ = [
    "DEFAULT_MODULE_ID",
    "LocalCAError",
    "LocalNitroCA",
    "Nsm",
    "SimulatedNsm",
    "measure_enclave",
    "pcr_extend",
]

DEFAULT_MODULE_ID = "i-0ccc10ca1000000000-enc0ccc10ca1000000"
REPORTED_PCRS = 16  # a Nitro enclave reports PCR0..PCR15
# How long one leaf certificate signs documents. /dev/nsm does not issue a leaf per document: two
# real documents five minutes apart carry the same leaf (/work/shared/vectors/attestation,
# marlin_oyster_verifier_attestation_{bin,hex}), another is signed 38 minutes into its leaf's
# three hours (mysten_nautilus_twitter). Reusing it for an hour keeps every document's leaf valid for
# two more hours, as on AWS, and spares the simulated enclave a P-384 key and a certificate per
# KMS call (~1 ms of its CPU each, three calls per job) that the real enclave never spends.
LEAF_REUSE = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Nsm(Protocol):
    """What the enclave needs from the Nitro Secure Module."""

    def attest(
        self, *, public_key: bytes | None = None, user_data: bytes | None = None, nonce: bytes | None = None
    ) -> bytes:
        """An attestation document (untagged COSE_Sign1) binding the given optional fields."""
        ...


def check_request_fields(public_key: bytes | None, user_data: bytes | None, nonce: bytes | None) -> None:
    """The device's own limits: each optional field at most 1024 bytes."""
    for name, value in (("public_key", public_key), ("user_data", user_data), ("nonce", nonce)):
        if value is None:
            continue
        if not isinstance(value, bytes):
            raise AttestationError(f"{name} must be bytes")
        if len(value) > MAX_OPTIONAL_FIELD_BYTES:
            raise AttestationError(f"{name} is {len(value)} bytes, the NSM accepts at most {MAX_OPTIONAL_FIELD_BYTES}")


@dataclass(frozen=True)
class _Leaf:
    key: ec.EllipticCurvePrivateKey
    der: bytes
    not_before: datetime
    retire_at: datetime  # LEAF_REUSE after not_before, or the certificate's end if sooner


class SimulatedNsm:
    """Real-format attestation documents signed by a `LocalNitroCA` (not by AWS).

    Like /dev/nsm, one leaf certificate signs the documents of a while (`LEAF_REUSE`); every
    document is still signed on its own, with its own timestamp and fields.

    PCRs not given are reported as 48 zero bytes, like unused registers on a Nitro enclave;
    give PCR0..2 (e.g. from `measure_enclave`) or the documents look like a debug enclave's.
    """

    def __init__(
        self,
        ca: LocalNitroCA,
        pcrs: Mapping[int, bytes],
        module_id: str = DEFAULT_MODULE_ID,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        reported = {index: bytes(PCR_BYTES) for index in range(REPORTED_PCRS)}
        for index, value in pcrs.items():
            if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
                raise ValueError(f"PCR index {index!r} is not in 0..{MAX_PCR_INDEX}")
            if not isinstance(value, bytes) or len(value) != PCR_BYTES:
                raise ValueError(f"PCR{index} must be {PCR_BYTES} bytes")
            reported[index] = value
        if not module_id or len(module_id) > 128:
            raise ValueError("module_id must be 1..128 characters")
        self._ca = ca
        self._pcrs = dict(sorted(reported.items()))
        self._module_id = module_id
        self._clock = clock or (lambda: datetime.now(UTC))
        self._leaf: _Leaf | None = None
        self._leaf_lock = threading.Lock()

    @property
    def pcrs(self) -> dict[int, bytes]:
        return dict(self._pcrs)

    def attest(
        self, *, public_key: bytes | None = None, user_data: bytes | None = None, nonce: bytes | None = None
    ) -> bytes:
        check_request_fields(public_key, user_data, nonce)
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the NSM clock must return timezone-aware times")
        leaf = self._current_leaf(now)
        payload = {
            # Same field order as /dev/nsm.
            "module_id": self._module_id,
            "digest": DIGEST_SHA384,
            "timestamp": (now - _EPOCH) // timedelta(milliseconds=1),
            "pcrs": self._pcrs,
            "certificate": leaf.der,
            "cabundle": list(self._ca.cabundle),
            "public_key": public_key,
            "user_data": user_data,
            "nonce": nonce,
        }
        return sign_es384(cbor2.dumps(payload), leaf.key)

    def _current_leaf(self, now: datetime) -> _Leaf:
        """The leaf signing a document at `now`: the current one inside its reuse window, else a new one."""
        with self._leaf_lock:
            leaf = self._leaf
            if leaf is None or not leaf.not_before <= now < leaf.retire_at:
                key, der = self._ca.issue_leaf(f"{self._module_id}.local.nitro-enclaves", now)
                certificate = x509.load_der_x509_certificate(der)
                not_before = certificate.not_valid_before_utc
                leaf = _Leaf(key, der, not_before, min(not_before + LEAF_REUSE, certificate.not_valid_after_utc))
                self._leaf = leaf
            return leaf
