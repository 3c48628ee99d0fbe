"""Strict, versioned JSON documents: the one decoding discipline of every format CCC defines.

Why one helper: each format that crosses a process boundary (the result document the enclave
writes, the failure record the parent agent writes) is produced by one program and read by others
that may be older or newer. A reader that guesses at a document it does not fully understand turns
a deployment mismatch into a wrong answer, so every reader here does the same three things:

1. bound the bytes before parsing anything;
2. check the format tag first, and refuse an unknown one with a message that names both the tag
   found and the one this reader knows (an unknown version is a version skew someone must fix,
   not a corrupt document);
3. refuse unknown fields and wrong types (``StrictModel``), so a field a writer adds cannot be
   silently dropped: adding one means a new format tag.

It lives in ``ccc_core`` because the enclave writes one of these formats and may import only its
own distribution; the Lambda layer, the parent agent and the client import it from here.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import pydantic_core
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ccc_core.errors import CoreError
from ccc_core.identity import validate_job_id, validate_tenant

MAX_ERROR_DETAIL_CHARS = 300

TenantId = Annotated[str, AfterValidator(validate_tenant)]
JobId = Annotated[str, AfterValidator(validate_job_id)]


class StrictModel(BaseModel):
    """A document part: no unknown fields, no type coercion (``"2"`` is not 2), immutable, finite floats."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class DocumentError(CoreError, ValueError):
    """A document this reader must not use. ``reason`` is a short stable code:

    ``too-large``, ``invalid-json``, ``unknown-format`` (a tag this reader does not know, or none),
    ``malformed`` (the known format, but fields missing, unknown or of the wrong type), or a
    format-specific code such as ``wrong-job``. The message never quotes field values.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


M = TypeVar("M", bound=BaseModel)


def validation_summary(exc: ValidationError) -> str:
    """Where and why validation failed, without the offending values (they may be tenant data)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "document"
        parts.append(f"{location}: {error['msg']}")
    text = "; ".join(parts)
    return text if len(text) <= MAX_ERROR_DETAIL_CHARS else text[: MAX_ERROR_DETAIL_CHARS - 3] + "..."


def _tag_repr(value: Any) -> str:
    return repr(value)[:64] if isinstance(value, str) else f"a {type(value).__name__}"


def decode_versioned(
    model: type[M], raw: bytes, *, what: str, tag_field: str, known_tag: str, max_bytes: int
) -> M:
    """Parse ``raw`` as ``model`` after checking its size and its ``tag_field`` against ``known_tag``.

    Raises DocumentError for anything else; never KeyError, RecursionError or UnicodeDecodeError.
    """
    if len(raw) > max_bytes:
        raise DocumentError("too-large", f"{what} is {len(raw)} bytes, more than the {max_bytes} it can have")
    try:
        value = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError:  # invalid JSON, invalid UTF-8, nesting too deep
        raise DocumentError("invalid-json", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise DocumentError("malformed", f"{what} is not a JSON object")
    if tag_field not in value:
        raise DocumentError("unknown-format", f"{what} has no {tag_field!r} tag; this reader knows {known_tag!r}")
    tag = value[tag_field]
    if tag != known_tag:
        raise DocumentError(
            "unknown-format",
            f"{what} has {tag_field} {_tag_repr(tag)}; this reader knows only {known_tag!r} (version skew: "
            "upgrade the reader or the writer)",
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise DocumentError("malformed", f"{what} is malformed: {validation_summary(exc)}") from None
