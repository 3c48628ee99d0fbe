"""The one error root of `ccc.trust`: a caller catches `TrustError` and knows the tenant's trust
anchors are missing or unusable, so nothing may be encrypted or believed; the subclass says why."""

from __future__ import annotations

from ccc.errors import CccError


class TrustError(CccError):
    """Base class: the tenant's trust file cannot be found, read, changed or used."""


class TrustFileError(TrustError, ValueError):
    """A trust file that is not exactly `ccc.trust/v1` (malformed, unknown field or version, bad value)."""


class NoTrustFile(TrustError):
    """No trust file was given and none exists at the per-user default location."""


class ReleaseChangeError(TrustError, ValueError):
    """An `add-release`/`remove-release` that would leave the file ambiguous or empty."""
