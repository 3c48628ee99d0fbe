"""The one error root of `ccc.release`: a caller (the CLI, build_eif.sh, a tenant's client) catches
`ReleaseError` and knows the release cannot be built, recorded or trusted; the subclass says why."""

from __future__ import annotations

from ccc.errors import CccError


class ReleaseError(CccError):
    """Base class: anything that stops a release from being built, recorded or trusted."""


class ManifestError(ReleaseError):
    """A release.json that is not exactly a known schema version (malformed, unknown field or version)."""


class BundleError(ReleaseError):
    """A bundle that cannot be written deterministically, or whose content differs from its manifest."""


class WheelhouseError(ReleaseError):
    """The enclave's wheels could not be fetched or built (offline with a cold cache, a pin without a wheel)."""


class MeasurementError(ReleaseError):
    """PCRs that cannot go into a release: not SHA-384 hex, all zero (debug mode), or unreadable nitro-cli output."""
