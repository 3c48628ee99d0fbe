"""The NSM behind the `Attester` port, the enclave's boot key pair, and the local measurement recipe.

`--nsm device` uses /dev/nsm (a real Nitro enclave). `--nsm simulated:<ca_dir>` uses the local
tier's `SimulatedNsm` signed by the per-stack CA in `<ca_dir>`, reporting PCRs measured by
`enclave_pcrs` (the enclave's code roots + its model). The local stack must pin the key policy
to `enclave_pcrs(model_path)` too: one function, so the two cannot disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enclave_worker.enclave.ports import JobError
from enclave_worker.logs import log_event
from enclave_worker.protocol import ErrorCode

_LOG = logging.getLogger("ccc.enclave.attester")


class NsmSpecError(ValueError):
    """An `--nsm` value that is neither `device` nor `simulated:<ca_dir>`."""


def enclave_code_roots() -> list[Path]:
    """The package directories whose code runs inside the enclave (measured into PCR0/PCR2)."""
    import ccc
    import ccc_common
    import enclave_worker

    return [Path(module.__file__).resolve().parent for module in (enclave_worker, ccc, ccc_common)
            if module.__file__ is not None]


def enclave_pcrs(model_path: Path, code_roots: Sequence[Path] | None = None) -> dict[int, bytes]:
    """PCR0/1/2 of the local (simulated) enclave running this code with this model."""
    from ccc.attestation.measurement import measure_enclave

    return measure_enclave(list(code_roots) if code_roots is not None else enclave_code_roots(), model_path)


def build_nsm(spec: str, model_path: Path) -> Any:
    """An `Nsm` from the CLI form `device` or `simulated:<ca_dir>`."""
    if spec == "device":
        from ccc.attestation.nsm_device import DeviceNsm

        return DeviceNsm()
    if spec.startswith("simulated:") and len(spec) > len("simulated:"):
        from ccc.attestation.nsm import LocalNitroCA, SimulatedNsm

        ca = LocalNitroCA.load(Path(spec[len("simulated:"):]))
        return SimulatedNsm(ca, enclave_pcrs(model_path))
    raise NsmSpecError(f"--nsm must be 'device' or 'simulated:<ca_dir>', got {spec!r}")


class NsmAttester:
    """`Attester`: every document carries the enclave's public key; PCR0 is read from a boot document."""

    def __init__(self, nsm: Any, public_key_der: bytes) -> None:
        from ccc.attestation import parse_document

        self._nsm = nsm
        self._public_key_der = public_key_der
        boot_document = parse_document(nsm.attest(public_key=public_key_der))
        pcr0 = boot_document.pcrs.get(0, b"")
        self._pcr0_hex = pcr0.hex()
        if boot_document.is_debug:
            log_event(_LOG, logging.WARNING, "enclave reports all-zero PCRs (debug mode): KMS will refuse it")

    @property
    def pcr0_hex(self) -> str:
        return self._pcr0_hex

    def attest(self, user_data: bytes) -> bytes:
        try:
            document: bytes = self._nsm.attest(public_key=self._public_key_der, user_data=user_data)
        except Exception as exc:  # device/CA failure: retryable, the job itself is fine
            raise JobError(ErrorCode.ATTESTATION_FAILED, f"NSM refused to attest ({type(exc).__name__})") from None
        return document
