"""The NSM behind the `Attester` port, the enclave's boot key pair, and the local measurement recipe.

`--nsm device` uses /dev/nsm (a real Nitro enclave). `--nsm simulated:<ca_dir>` uses the local
tier's `SimulatedNsm` signed by the per-stack CA in `<ca_dir>`, reporting PCRs measured by
`enclave_pcrs` (the enclave distribution's code, its pinned requirements and its model). The
local stack must pin the key policy to `enclave_pcrs(model_path)` too: one function, so the two cannot disagree.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import ccc_enclave
from ccc_core.attestation.document import parse_document
from ccc_core.logs import log_event
from ccc_enclave.errors import EnclaveError
from ccc_enclave.nsm.device import DeviceNsm
from ccc_enclave.nsm.measurement import measure_enclave
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from ccc_enclave.ports import JobError
from ccc_enclave.protocol.errors import ErrorCode

_LOG = logging.getLogger("ccc.enclave.attester")


class NsmSpecError(EnclaveError, ValueError):
    """An `--nsm` value that is neither `device` nor `simulated:<ca_dir>`."""


# The import packages of the enclave distribution; with its pinned requirements they are what the
# local measurement covers (on AWS the EIF build installs exactly this distribution and those pins).
DISTRIBUTION_PACKAGES = ("ccc_core", "ccc_enclave")
PINS_FILE = "requirements.txt"


def distribution_root() -> Path:
    """The directory holding this distribution's packages and its pinned requirements file."""

    return Path(ccc_enclave.__file__ or "").resolve().parent.parent


def enclave_pcrs(model_path: Path, root: Path | None = None) -> dict[int, bytes]:
    """PCR0/1/2 of the local (simulated) enclave running the distribution at `root` with this model.

    `root` defaults to the distribution this code was imported from, which is what a simulated
    enclave reports about itself; the local stack passes its snapshot of the same tree.
    """

    base = root if root is not None else distribution_root()
    return measure_enclave([base / package for package in DISTRIBUTION_PACKAGES], model_path,
                           pins_path=base / PINS_FILE)


def build_nsm(spec: str, model_path: Path) -> Any:
    """An `Nsm` from the CLI form `device` or `simulated:<ca_dir>`."""
    if spec == "device":
        return DeviceNsm()
    if spec.startswith("simulated:") and len(spec) > len("simulated:"):
        ca = LocalNitroCA.load(Path(spec[len("simulated:"):]))
        return SimulatedNsm(ca, enclave_pcrs(model_path))
    raise NsmSpecError(f"--nsm must be 'device' or 'simulated:<ca_dir>', got {spec!r}")


class NsmAttester:
    """`Attester`: every document carries the enclave's public key; PCR0 is read from a boot document."""

    def __init__(self, nsm: Any, public_key_der: bytes) -> None:
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
