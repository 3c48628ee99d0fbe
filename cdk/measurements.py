"""Enclave measurements (PCRs) for the key policy: file format, loader, and the nitro-cli converter.

Why this matters: the KMS key policy pins `kms:RecipientAttestation:ImageSha384` (PCR0) and the
other PCRs to the enclave image that `enclave_worker/build_eif.sh` built. The measurements
travel from the build host to the CDK app in one small JSON file:

    {
      "format": "ccc-enclave-measurements/1",
      "hash_algorithm": "SHA384",
      "pcrs": {"PCR0": "<96 hex>", "PCR1": "<96 hex>", "PCR2": "<96 hex>", "PCR8": "<96 hex>"},
      "eif": "ccc-enclave.eif", "eif_sha256": "<64 hex>", "built_at": "<ISO-8601>",
      "nitro_cli_version": "...", "placeholder": false
    }

Precedence when the app synthesises: `-c pcr0=... [-c pcr1=... -c pcr2=... -c pcr8=...]`, then
`-c measurements=<path>`, then `enclave_worker/measurements.json`, then (dev only) the committed
placeholder `enclave_worker/measurements.placeholder.json`. Prod refuses a placeholder, missing
PCR0 and any all-zero PCR (a debug-mode enclave).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdk.errors import CdkAppError

FORMAT = "ccc-enclave-measurements/1"
PCR_INDEXES = (0, 1, 2, 8)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = REPO_ROOT / "enclave_worker" / "measurements.json"
PLACEHOLDER_FILE = REPO_ROOT / "enclave_worker" / "measurements.placeholder.json"
# A SHA-384 no enclave image can produce (it is not a measurement of anything): with it in the
# key policy a dev stack deploys, but no enclave will ever get key material until real PCRs come.
PLACEHOLDER_PCR0 = hashlib.sha384(b"ccc placeholder: no enclave image has this measurement").hexdigest()

_HEX96 = re.compile(r"^[0-9a-fA-F]{96}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class MeasurementsError(CdkAppError, ValueError):
    """Measurements that cannot go into a key policy (missing, malformed, debug-mode, placeholder)."""


@dataclass(frozen=True)
class Measurements:
    """The PCRs the key policy pins, and where they came from (for the stack's annotations)."""

    pcrs: Mapping[int, str]
    source: str
    placeholder: bool = False

    @property
    def pcr0(self) -> str:
        return self.pcrs[0]

    @property
    def release_id(self) -> str:
        """Names the artifacts release in S3: the first 16 hex of PCR0 tie EIF and key policy."""
        return "placeholder" if self.placeholder else self.pcr0[:16]


def validate_pcr(index: int, value: object) -> str:
    """One PCR value: 96 hex characters (SHA-384), not all zero. Returned lowercase."""
    if index not in PCR_INDEXES:
        raise MeasurementsError(f"PCR{index} is not one the key policy pins (use {PCR_INDEXES})")
    if not isinstance(value, str) or not _HEX96.fullmatch(value.strip()):
        raise MeasurementsError(f"PCR{index} must be 96 hex characters (SHA-384), got {value!r}")
    value = value.strip().lower()
    if set(value) == {"0"}:
        raise MeasurementsError(f"PCR{index} is all zeros: that is a debug-mode enclave, which must never decrypt")
    return value


def _parse_pcr_name(name: object) -> int:
    if not isinstance(name, str):
        raise MeasurementsError(f"PCR name {name!r} is not a string")
    match = re.fullmatch(r"PCR(\d{1,2})", name.strip(), flags=re.IGNORECASE)
    if not match:
        raise MeasurementsError(f"PCR name {name!r} is not of the form PCR<n>")
    return int(match.group(1))


def parse_measurements(document: object, source: str) -> Measurements:
    """Validate a measurements document (the dict form of the JSON file)."""
    if not isinstance(document, Mapping):
        raise MeasurementsError(f"{source}: measurements must be a JSON object")
    if document.get("format") != FORMAT:
        raise MeasurementsError(f"{source}: 'format' must be {FORMAT!r}, got {document.get('format')!r}")
    algorithm = document.get("hash_algorithm", "SHA384")
    if algorithm != "SHA384":
        raise MeasurementsError(f"{source}: hash_algorithm must be SHA384, got {algorithm!r}")
    raw = document.get("pcrs")
    if not isinstance(raw, Mapping) or not raw:
        raise MeasurementsError(f"{source}: 'pcrs' must be a non-empty object of PCR<n> -> hex")
    pcrs: dict[int, str] = {}
    for name, value in raw.items():
        index = _parse_pcr_name(name)
        try:
            pcrs[index] = validate_pcr(index, value)
        except MeasurementsError as exc:
            raise MeasurementsError(f"{source}: {exc}") from None
    if 0 not in pcrs:
        raise MeasurementsError(f"{source}: PCR0 (the enclave image measurement) is required")
    placeholder = document.get("placeholder", False)
    if not isinstance(placeholder, bool):
        raise MeasurementsError(f"{source}: 'placeholder' must be true or false")
    if placeholder and pcrs[0] != PLACEHOLDER_PCR0:
        raise MeasurementsError(f"{source}: a placeholder must carry the placeholder PCR0, not a real-looking one")
    if not placeholder and pcrs[0] == PLACEHOLDER_PCR0:
        raise MeasurementsError(f"{source}: carries the placeholder PCR0 but is not marked as a placeholder")
    eif_sha = document.get("eif_sha256")
    if eif_sha is not None and (not isinstance(eif_sha, str) or not _HEX64.fullmatch(eif_sha)):
        raise MeasurementsError(f"{source}: eif_sha256 must be 64 hex characters")
    return Measurements(pcrs=dict(sorted(pcrs.items())), source=source, placeholder=placeholder)


def load_measurements_file(path: Path) -> Measurements:
    try:
        text = path.read_text()
    except OSError as exc:
        raise MeasurementsError(f"cannot read measurements file {path}: {exc.strerror}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise MeasurementsError(f"{path}: not JSON ({exc})") from None
    return parse_measurements(document, str(path))


def resolve_measurements(stage: str, context: Mapping[str, Any]) -> Measurements:
    """Pick the stage's measurements by the documented precedence; refuse what prod must not run.

    `context` is the CDK context (`-c key=value`): `pcr0`, `pcr1`, `pcr2`, `pcr8`, `measurements`.
    """
    direct = {i: context.get(f"pcr{i}") for i in PCR_INDEXES if context.get(f"pcr{i}") not in (None, "")}
    if direct:
        if 0 not in direct:
            raise MeasurementsError("PCR context given without pcr0: -c pcr0=<96 hex> is required")
        pcrs = {i: validate_pcr(i, v) for i, v in direct.items()}
        if pcrs[0] == PLACEHOLDER_PCR0:
            raise MeasurementsError("-c pcr0 is the placeholder measurement")
        found = Measurements(pcrs=dict(sorted(pcrs.items())), source="cdk context pcr*")
    elif context.get("measurements"):
        found = load_measurements_file(Path(str(context["measurements"])))
    elif DEFAULT_FILE.exists():
        found = load_measurements_file(DEFAULT_FILE)
    elif stage == "prod":
        raise MeasurementsError(
            f"prod needs the enclave measurements: build the EIF (enclave_worker/build_eif.sh) to write "
            f"{DEFAULT_FILE}, or pass -c measurements=<file> / -c pcr0=<hex>"
        )
    else:
        found = load_measurements_file(PLACEHOLDER_FILE)
    if found.placeholder and stage == "prod":
        raise MeasurementsError(f"prod refuses placeholder measurements ({found.source}); build the EIF first")
    return found


def from_nitro_cli(build_output: Mapping[str, Any], eif_path: Path | None = None) -> dict[str, Any]:
    """Convert `nitro-cli build-enclave` JSON output into our measurements document."""
    raw = build_output.get("Measurements")
    if not isinstance(raw, Mapping):
        raise MeasurementsError("nitro-cli output has no 'Measurements' object")
    algorithm = str(raw.get("HashAlgorithm", ""))
    if "sha384" not in algorithm.lower():
        raise MeasurementsError(f"nitro-cli measurements use {algorithm!r}, expected SHA384")
    pcrs = {f"PCR{_parse_pcr_name(k)}": v for k, v in raw.items() if k.upper().startswith("PCR")}
    document: dict[str, Any] = {
        "format": FORMAT,
        "hash_algorithm": "SHA384",
        "pcrs": pcrs,
        "built_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "placeholder": False,
    }
    if eif_path is not None:
        digest = hashlib.sha256()
        with eif_path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        document["eif"] = eif_path.name
        document["eif_sha256"] = digest.hexdigest()
    parse_measurements(document, "nitro-cli output")  # refuse debug/short PCRs at build time already
    return document


def parse_nitro_cli_output(text: str) -> dict[str, Any]:
    """nitro-cli may print progress lines around its JSON: take the outermost JSON object."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise MeasurementsError("nitro-cli output contains no JSON object")
    try:
        document = json.loads(text[start : end + 1])
    except ValueError as exc:
        raise MeasurementsError(f"nitro-cli output is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise MeasurementsError("nitro-cli output is not a JSON object")
    return document


def main(argv: list[str] | None = None) -> int:
    """`python -m cdk.measurements from-nitro-cli OUT.json --eif X.eif --write enclave_worker/measurements.json`."""
    parser = argparse.ArgumentParser(prog="python -m cdk.measurements", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    convert = sub.add_parser("from-nitro-cli", help="convert nitro-cli build-enclave output")
    convert.add_argument("build_output", type=Path, help="JSON printed by nitro-cli build-enclave")
    convert.add_argument("--eif", type=Path, help="the EIF, to record its SHA-256")
    convert.add_argument("--nitro-cli-version", default=None)
    convert.add_argument("--write", type=Path, default=DEFAULT_FILE)
    check = sub.add_parser("check", help="validate a measurements file")
    check.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            found = load_measurements_file(args.path)
            print(f"ok: PCRs {sorted(found.pcrs)} placeholder={found.placeholder}")
            return 0
        document = from_nitro_cli(parse_nitro_cli_output(args.build_output.read_text()), args.eif)
        if args.nitro_cli_version:
            document["nitro_cli_version"] = args.nitro_cli_version
        args.write.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.write} (PCR0 {document['pcrs']['PCR0'][:16]}...)")
        return 0
    except (MeasurementsError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
