"""The release manifest, `release.json` (schema `ccc.release/v1`): what one enclave release is made of.

Why a strict, versioned schema: a tenant pins a release by this document (the wheels, the model and
the bundle by SHA-256, and the PCRs its attestation documents must show). A reader that ignored an
unknown field, coerced a type or guessed at a newer version could accept something it does not
understand, so parsing refuses all three, and duplicate JSON keys too (two parsers could pick
different values). Every field is always present (null when not known yet), so a document says
explicitly what it does not claim. A new field means a new schema (`ccc.release/v2`) with its own
model registered in `_MODELS` next to this one; a v1 reader refuses v2 rather than half-reading it.

The tenant's client imports this module: it depends on pydantic and the standard library only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ccc.atomic_files import write_bytes_atomic
from ccc.release.errors import ManifestError
from ccc.strict_json import StrictJsonError, load_json_object
from ccc_core.versioned import validation_summary

SCHEMA_V1 = "ccc.release/v1"
MANIFEST_FILE = "release.json"
MAX_MANIFEST_BYTES = 1 << 20  # a real one is ~4 KiB; anything near this is not a manifest
PCR_NAMES = ("PCR0", "PCR1", "PCR2", "PCR8")
REQUIRED_PCRS = ("PCR0", "PCR1", "PCR2")  # image, kernel+bootstrap, application: nitro-cli always reports them

_PCR_HEX = re.compile(r"[0-9a-f]{96}")


def pcr_problem(value: str) -> str | None:
    """Why `value` cannot be a pinned PCR (None when it can): SHA-384 as 96 lowercase hex, not all zero.

    All zero is what a debug-mode enclave reports; pinning it would trust an enclave whose memory
    the parent can read.
    """
    if not _PCR_HEX.fullmatch(value):
        return f"must be 96 lowercase hex characters (SHA-384), got {value[:120]!r}"
    if value == "0" * 96:
        return "is all zeros: that is a debug-mode enclave, which must never be pinned"
    return None


def _pcr_value(value: str) -> str:
    problem = pcr_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
GitCommit = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")]
WheelFileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+!-]{0,195}\.whl$")]
Pin = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}==[0-9][0-9A-Za-z.+!-]{0,63}$")]
ImageDigest = Annotated[str, StringConstraints(pattern=r"^[^\s@]{1,255}@sha256:[0-9a-f]{64}$")]
PcrValue = Annotated[str, AfterValidator(_pcr_value)]
PcrName = Literal["PCR0", "PCR1", "PCR2", "PCR8"]


class _Strict(BaseModel):
    """No unknown fields, no type coercion (strict), immutable once read."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EnclaveDistribution(_Strict):
    """The enclave distribution the release installs (from its wheel's metadata, not from pyproject)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")]
    version: Annotated[str, StringConstraints(pattern=r"^[0-9][0-9A-Za-z.+!-]{0,63}$")]


class BundleRecord(_Strict):
    """The bundle file: its digest is the one value that covers every byte the EIF is built from."""

    file: FileName
    sha256: Sha256Hex
    size: int = Field(ge=0)
    source_date_epoch: int = Field(ge=0)


class Measurement(_Strict):
    """What `nitro-cli build-enclave` measured of the EIF built from the bundle (PCR0 is the image)."""

    hash_algorithm: Literal["SHA384"]
    pcrs: dict[PcrName, PcrValue]
    eif_sha256: Sha256Hex | None
    nitro_cli_version: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None

    @model_validator(mode="after")
    def _boot_pcrs_present(self) -> Measurement:
        missing = [name for name in REQUIRED_PCRS if name not in self.pcrs]
        if missing:
            raise ValueError(f"pcrs lacks {', '.join(missing)} (nitro-cli always measures PCR0, PCR1 and PCR2)")
        return self


class ReleaseManifest(_Strict):
    """Schema `ccc.release/v1`. `measurement` is null until build_eif.sh records nitro-cli's PCRs."""

    schema_id: Literal["ccc.release/v1"] = Field(alias="schema")
    git_commit: GitCommit | None
    source_dirty: bool  # the enclave's sources (distribution, entry script) differ from git_commit
    enclave: EnclaveDistribution
    wheel_target: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]+-[a-z0-9_]+-[a-z0-9_]+$")]
    build_backend: list[Pin]  # what built the enclave's own wheel (it decides that wheel's bytes)
    wheels: dict[WheelFileName, Sha256Hex]
    model: dict[FileName, Sha256Hex]
    entrypoint: Sha256Hex
    bundle: BundleRecord
    base_image: ImageDigest | None
    measurement: Measurement | None

    @model_validator(mode="after")
    def _consistent(self) -> ReleaseManifest:
        if self.git_commit is None and not self.source_dirty:
            raise ValueError("source_dirty must be true without a git_commit (the sources match no commit)")
        if not self.model:
            raise ValueError("model lists no file")
        own = f"{self.enclave.name.replace('-', '_')}-{self.enclave.version}-"
        if not any(name.startswith(own) for name in self.wheels):
            raise ValueError(f"wheels lacks the enclave distribution's own wheel ({own}*.whl)")
        return self

    def document(self) -> dict[str, Any]:
        """The JSON form (field `schema`, not `schema_id`)."""
        return self.model_dump(mode="json", by_alias=True)


_MODELS: dict[str, type[ReleaseManifest]] = {SCHEMA_V1: ReleaseManifest}
SUPPORTED_SCHEMAS = tuple(_MODELS)


def manifest_from_document(document: object, *, source: str = MANIFEST_FILE) -> ReleaseManifest:
    """Validate the dict form; the `schema` value picks the model, an unknown one is refused first."""
    if not isinstance(document, Mapping):
        raise ManifestError(f"{source}: a release manifest is a JSON object, got {type(document).__name__}")
    schema = document.get("schema")
    model = _MODELS.get(schema) if isinstance(schema, str) else None
    if model is None:
        raise ManifestError(f"{source}: unknown schema {schema!r}; this reader knows {list(SUPPORTED_SCHEMAS)}")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(f"{source}: not a valid {schema} manifest: {validation_summary(exc)}") from None


def parse_manifest(data: bytes | str, *, source: str = MANIFEST_FILE) -> ReleaseManifest:
    """Parse and validate release.json text; any problem is a `ManifestError`, never another exception."""
    try:
        document = load_json_object(data, max_bytes=MAX_MANIFEST_BYTES, what="release manifest")
    except StrictJsonError as exc:
        raise ManifestError(f"{source}: {exc}") from None
    return manifest_from_document(document, source=source)


def manifest_bytes(manifest: ReleaseManifest) -> bytes:
    """The canonical text: sorted keys, two-space indent, final newline (stable diffs, stable digest)."""
    return (json.dumps(manifest.document(), indent=2, sort_keys=True) + "\n").encode()


def load_manifest(path: Path) -> ReleaseManifest:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_manifest(data, source=str(path))


def write_manifest(path: Path, manifest: ReleaseManifest) -> None:
    """Atomically (a reader never sees half a manifest); world-readable: it holds no secret."""
    write_bytes_atomic(Path(path), manifest_bytes(manifest), mode=0o644)


def with_measurement(manifest: ReleaseManifest, measurement: Measurement, *,
                     base_image: str | None = None) -> ReleaseManifest:
    """The manifest with nitro-cli's measurement (and the base image digest when given), re-validated.

    Re-validation instead of `model_copy(update=...)`: the copy would skip the validators.
    """
    document = manifest.document()
    document["measurement"] = measurement.model_dump(mode="json")
    if base_image is not None:
        document["base_image"] = base_image
    return manifest_from_document(document, source="recorded measurement")
