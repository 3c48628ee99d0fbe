"""nitro-cli's measurements of the EIF, checked before they go into a release manifest.

Why check here and not only in the key policy: release.json is what tenants pin. A truncated PCR,
an all-zero (debug-mode) PCR or a PCR read from the wrong JSON would be pinned by every tenant
who trusts the file, so `record-pcrs` refuses them at build time. (cdk/measurements.py does the
same for measurements.json; CDK may not import `ccc`, so the two files are checked separately.)

`nitro-cli build-enclave` prints progress lines and then one JSON object:
`{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "<hex>", "PCR1": ..., "PCR2": ...}}`
(and PCR8 when the EIF is signed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from ccc.release.bundle import file_sha256
from ccc.release.errors import MeasurementError
from ccc.release.manifest import PCR_NAMES, REQUIRED_PCRS, Measurement, pcr_problem

_PCR_KEY = re.compile(r"PCR(\d{1,2})", flags=re.IGNORECASE)


def validate_pcr(name: str, value: object) -> str:
    """One PCR as a manifest stores it (lowercase hex), or `MeasurementError` saying what is wrong."""
    if name not in PCR_NAMES:
        raise MeasurementError(f"{name} is not a PCR a release pins (one of {', '.join(PCR_NAMES)})")
    if not isinstance(value, str):
        raise MeasurementError(f"{name} must be a hex string, got {type(value).__name__}")
    normalised = value.strip().lower()
    problem = pcr_problem(normalised)
    if problem is not None:
        raise MeasurementError(f"{name} {problem}")
    return normalised


def pcrs_from_nitro_cli(text: str) -> dict[str, str]:
    """The PCRs in `nitro-cli build-enclave` output (the outermost JSON object of the text)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise MeasurementError("nitro-cli output contains no JSON object")
    try:
        document = json.loads(text[start : end + 1])
    except (ValueError, RecursionError) as exc:
        raise MeasurementError(f"nitro-cli output is not JSON ({str(exc)[:200]})") from None
    raw = document.get("Measurements") if isinstance(document, Mapping) else None
    if not isinstance(raw, Mapping):
        raise MeasurementError("nitro-cli output has no 'Measurements' object")
    algorithm = raw.get("HashAlgorithm")
    if not isinstance(algorithm, str) or "sha384" not in algorithm.lower():
        raise MeasurementError(f"nitro-cli measured with {algorithm!r}, expected SHA384")
    pcrs: dict[str, str] = {}
    for key, value in raw.items():
        match = _PCR_KEY.fullmatch(str(key))
        if match is None:
            continue
        name = f"PCR{int(match.group(1))}"
        if name in pcrs:
            raise MeasurementError(f"nitro-cli output names {name} twice")
        pcrs[name] = validate_pcr(name, value)
    missing = [name for name in REQUIRED_PCRS if name not in pcrs]
    if missing:
        raise MeasurementError(f"nitro-cli output lacks {', '.join(missing)}")
    return dict(sorted(pcrs.items()))


def eif_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise MeasurementError(f"cannot read the EIF {path}: {exc.strerror or exc}") from None


def measurement_from_nitro_cli(text: str, *, eif: Path | None = None,
                               nitro_cli_version: str | None = None) -> Measurement:
    """The manifest's `measurement` for this nitro-cli output (and the EIF's digest when given)."""
    pcrs = pcrs_from_nitro_cli(text)
    version = nitro_cli_version.strip() if nitro_cli_version else None
    try:
        return Measurement.model_validate({
            "hash_algorithm": "SHA384",
            "pcrs": pcrs,
            "eif_sha256": eif_sha256(eif) if eif is not None else None,
            "nitro_cli_version": version or None,
        })
    except ValidationError as exc:  # a nitro-cli version string of 200+ characters, say
        raise MeasurementError(f"measurement not recordable: {exc.errors(include_url=False)[0]['msg']}") from None
