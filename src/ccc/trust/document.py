"""The tenant's trust file, `ccc.trust/v1`: the only anchors `ccc submit` and `ccc result` believe.

Why a file the tenant's client writes and reads, and nothing else: the operator runs the stack, so
everything the stack publishes (its outputs, `stack.json`, measurements in its buckets) is what an
operator who wants the tenant's images would change. The trust file pins, once and under the
tenant's control, the four things a result's provenance rests on:

* ``attestation_root``: the certificate attestation documents must chain to (AWS Nitro Enclaves
  Root-G1 on AWS, checked against its published fingerprint; the local stack's own CA locally);
* ``releases``: the enclave releases whose PCRs a result may show (several, to roll releases
  without downtime), each with its id, where it came from and when it was pinned;
* ``data_key_arn``: the only key inputs are encrypted to and results decrypted with;
* ``tenant``: whose jobs these are.

Parsing is strict like every versioned format here (`ccc_core.versioned`): bounded size, the
``format`` tag checked first, unknown fields, type coercion and duplicate JSON keys refused, and
every problem a one-line `TrustFileError`. A new field means ``ccc.trust/v2``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import AfterValidator, Field, StringConstraints, ValidationError, model_validator

from ccc.atomic_files import write_bytes_atomic
from ccc.attestation import AWS_NITRO_ROOT_G1_SHA256, aws_nitro_root_der
from ccc.release.manifest import pcr_problem
from ccc.strict_json import StrictJsonError, load_json_object
from ccc.trust.errors import TrustFileError
from ccc_core.versioned import StrictModel, TenantId, validation_summary

TRUST_FORMAT = "ccc.trust/v1"
MAX_TRUST_FILE_BYTES = 256 * 1024  # a real one is a few KiB (one certificate, a few releases)
MAX_RELEASES = 32
# The PCRs a release may pin: image (0), kernel+bootstrap (1), application (2), parent IAM role (3),
# parent instance (4), signing certificate (8) -- the ones Nitro reports and KMS can condition on.
PCR_NAMES = ("PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8")
RELEASE_SOURCES = ("release-manifest", "pcrs", "key-policy", "local-stack", "stack-outputs")

_KEY_ARN = r"^arn:aws(?:-[a-z]+)*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]{1,128}$"
_RELEASE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$"
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?")


def _pcr_value(value: str) -> str:
    problem = pcr_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _timestamp(value: str) -> str:
    datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")  # ValueError for 2026-13-40T..
    return value


PcrName = Literal["PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8"]
PcrValue = Annotated[str, AfterValidator(_pcr_value)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
GitCommit = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
KeyArn = Annotated[str, StringConstraints(pattern=_KEY_ARN)]
ReleaseId = Annotated[str, StringConstraints(pattern=_RELEASE_ID)]
Timestamp = Annotated[str, StringConstraints(pattern=_TIMESTAMP), AfterValidator(_timestamp)]
ReleaseSource = Literal["release-manifest", "pcrs", "key-policy", "local-stack", "stack-outputs"]


class PinnedRoot(StrictModel):
    """The attestation root: the certificate itself (PEM) and its SHA-256, which must agree.

    ``aws-nitro`` must be the published AWS Nitro Enclaves Root-G1 (a file cannot relabel another
    certificate as AWS's); ``local`` is the local stack's own CA, captured at `ccc trust init`.
    """

    kind: Literal["aws-nitro", "local"]
    sha256: Sha256Hex
    pem: Annotated[str, StringConstraints(min_length=1, max_length=16384)]

    @model_validator(mode="after")
    def _certificate_matches(self) -> PinnedRoot:
        if not _PEM.fullmatch(self.pem):
            raise ValueError("pem is not one PEM certificate")
        try:
            der = x509.load_pem_x509_certificate(self.pem.encode()).public_bytes(Encoding.DER)
        except ValueError:
            raise ValueError("pem is not a readable X.509 certificate") from None
        if hashlib.sha256(der).hexdigest() != self.sha256:
            raise ValueError("sha256 is not the SHA-256 of the certificate in pem")
        if self.kind == "aws-nitro" and self.sha256 != AWS_NITRO_ROOT_G1_SHA256:
            raise ValueError("kind aws-nitro must be the AWS Nitro Enclaves Root-G1 certificate")
        return self

    @property
    def der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.pem.encode()).public_bytes(Encoding.DER)


class PinnedRelease(StrictModel):
    """One approved enclave release: the PCRs its attestation documents must show (all of them).

    ``date`` is when the tenant pinned it (UTC): a `ccc.release/v1` manifest carries no date of its
    own (its timestamps are fixed so the build is reproducible); ``manifest_sha256`` and
    ``git_commit`` name the manifest it came from, when it came from one.
    """

    id: ReleaseId
    pcrs: dict[PcrName, PcrValue]
    source: ReleaseSource
    date: Timestamp
    manifest_sha256: Sha256Hex | None = None
    git_commit: GitCommit | None = None

    @model_validator(mode="after")
    def _has_image_pcr(self) -> PinnedRelease:
        if "PCR0" not in self.pcrs:
            raise ValueError("a release must pin PCR0 (the enclave image)")
        return self

    def expected_pcrs(self) -> dict[int, bytes]:
        """The form the attestation verifier takes: index -> 48 raw bytes."""
        return {int(name[3:]): bytes.fromhex(value) for name, value in self.pcrs.items()}

    def pcr_set(self) -> frozenset[tuple[int, str]]:
        return frozenset((int(name[3:]), value) for name, value in self.pcrs.items())


class TrustFile(StrictModel):
    """Schema `ccc.trust/v1` (see the module docstring)."""

    format: Literal["ccc.trust/v1"]
    tenant: TenantId
    data_key_arn: KeyArn
    attestation_root: PinnedRoot
    releases: Annotated[list[PinnedRelease], Field(min_length=1, max_length=MAX_RELEASES)]

    @model_validator(mode="after")
    def _releases_distinct(self) -> TrustFile:
        ids = [release.id for release in self.releases]
        if len(set(ids)) != len(ids):
            raise ValueError(f"release ids are not unique: {sorted({i for i in ids if ids.count(i) > 1})}")
        sets = [release.pcr_set() for release in self.releases]
        if len(set(sets)) != len(sets):
            raise ValueError("two releases pin the same PCRs")
        return self

    def release(self, release_id: str) -> PinnedRelease | None:
        return next((release for release in self.releases if release.id == release_id), None)

    def releases_with_pcr0(self, pcr0: bytes) -> list[PinnedRelease]:
        """The pinned releases whose image measurement is `pcr0` (usually one, or none)."""
        return [release for release in self.releases if release.pcrs["PCR0"] == pcr0.hex()]

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def trust_from_document(document: object, *, source: str = "trust file") -> TrustFile:
    """Validate the dict form; the ``format`` tag is checked first, so a v2 file is named as such."""
    if not isinstance(document, Mapping):
        raise TrustFileError(f"{source}: a trust file is a JSON object, got {type(document).__name__}")
    tag = document.get("format")
    if tag != TRUST_FORMAT:
        shown = repr(tag)[:64] if isinstance(tag, str) else "none"
        raise TrustFileError(f"{source}: format {shown}; this ccc reads only {TRUST_FORMAT!r}")
    try:
        return TrustFile.model_validate(document)
    except ValidationError as exc:
        raise TrustFileError(f"{source}: not a valid {TRUST_FORMAT} file: {validation_summary(exc)}") from None


def parse_trust(data: bytes | str, *, source: str = "trust file") -> TrustFile:
    """Parse trust-file text; any problem is a one-line `TrustFileError`, never another exception."""
    try:
        document = load_json_object(data, max_bytes=MAX_TRUST_FILE_BYTES, what="trust file")
    except StrictJsonError as exc:
        raise TrustFileError(f"{source}: {exc}") from None
    return trust_from_document(document, source=source)


def trust_bytes(trust: TrustFile) -> bytes:
    """The canonical text: sorted keys, two-space indent, final newline (stable diffs)."""
    return (json.dumps(trust.document(), indent=2, sort_keys=True) + "\n").encode()


def load_trust(path: Path) -> TrustFile:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_TRUST_FILE_BYTES + 1)
    except FileNotFoundError:
        raise TrustFileError(f"no trust file at {path}") from None
    except OSError as exc:
        raise TrustFileError(f"cannot read the trust file {path}: {exc.strerror or exc}") from None
    return parse_trust(data, source=str(path))


def write_trust(path: Path, trust: TrustFile) -> None:
    """Atomically, re-validated first (a file this module writes is one it reads back), mode 0600:
    it holds no secret, but whoever can change it decides what the client believes."""
    data = trust_bytes(trust)
    parse_trust(data, source=str(path))
    write_bytes_atomic(Path(path), data, mode=0o600)


def now_timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def root_from_der(der: bytes, *, kind: Literal["aws-nitro", "local"]) -> PinnedRoot:
    """Pin a root certificate given as DER (validated like a parsed file's)."""
    try:
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
    except ValueError:
        raise TrustFileError("the attestation root is not a DER X.509 certificate") from None
    try:
        return PinnedRoot(kind=kind, sha256=hashlib.sha256(der).hexdigest(), pem=pem)
    except ValidationError as exc:
        raise TrustFileError(f"attestation root: {validation_summary(exc)}") from None


def aws_nitro_root() -> PinnedRoot:
    return root_from_der(aws_nitro_root_der(), kind="aws-nitro")
