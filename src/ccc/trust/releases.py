"""Pinned releases from what a tenant has in hand: a release manifest, bare PCRs, or its key's policy.

Why here and not in the CLI: `ccc trust init`, `add-release` and `audit` all build releases, and a
release must mean the same PCR set whichever way it came in (names, case, the debug-mode refusal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from pydantic import ValidationError

from ccc.release.manifest import ReleaseManifest, manifest_bytes
from ccc.trust.document import PinnedRelease, ReleaseSource, TrustFile, now_timestamp
from ccc.trust.errors import ReleaseChangeError, TrustFileError
from ccc_core.versioned import validation_summary


def release_id_for_pcrs(pcr0_hex: str) -> str:
    """The id of a release known only by its PCRs (as in interface A: `pcr0-<first 12 hex>`)."""
    return f"pcr0-{pcr0_hex[:12]}"


def manifest_release_id(manifest: ReleaseManifest) -> str:
    """A manifest's id: the enclave distribution and the first 12 hex of the bundle digest (which
    covers every byte the EIF is built from)."""
    return f"{manifest.enclave.name}-{manifest.enclave.version}-{manifest.bundle.sha256[:12]}"


def pinned_release(
    release_id: str | None,
    pcrs: Mapping[int, str],
    *,
    source: ReleaseSource,
    now: datetime | None = None,
    manifest_sha256: str | None = None,
    git_commit: str | None = None,
) -> PinnedRelease:
    """Validate one release (index -> hex PCR); the id defaults to `pcr0-<12 hex>`."""
    if 0 not in pcrs:
        raise TrustFileError("a release must pin PCR0 (the enclave image)")
    try:
        return PinnedRelease.model_validate(
            {  # the names PCR<n> are checked like a parsed file's
                "id": release_id or release_id_for_pcrs(str(pcrs[0])),
                "pcrs": {f"PCR{index}": value for index, value in sorted(pcrs.items())},
                "source": source,
                "date": now_timestamp(now),
                "manifest_sha256": manifest_sha256,
                "git_commit": git_commit,
            }
        )
    except ValidationError as exc:
        raise TrustFileError(f"release: {validation_summary(exc)}") from None


def release_from_manifest(manifest: ReleaseManifest, *, now: datetime | None = None) -> PinnedRelease:
    """The release a `ccc.release/v1` manifest describes; refused until nitro-cli's PCRs are recorded."""
    if manifest.measurement is None:
        raise TrustFileError("the release manifest has no measurement yet (build_eif.sh records nitro-cli's PCRs)")
    pcrs = {int(name[3:]): value for name, value in manifest.measurement.pcrs.items()}
    return pinned_release(
        manifest_release_id(manifest),
        pcrs,
        source="release-manifest",
        now=now,
        manifest_sha256=hashlib.sha256(manifest_bytes(manifest)).hexdigest(),
        git_commit=manifest.git_commit,
    )


def with_release(trust: TrustFile, release: PinnedRelease) -> TrustFile:
    """The trust file with one more release; the same id or the same PCRs twice is refused."""
    if trust.release(release.id) is not None:
        raise ReleaseChangeError(f"release {release.id} is already pinned")
    if any(existing.pcr_set() == release.pcr_set() for existing in trust.releases):
        raise ReleaseChangeError(f"these PCRs are already pinned (PCR0 {release.pcrs['PCR0'][:16]}…)")
    return _revalidated(trust, [*trust.releases, release])


def without_release(trust: TrustFile, release_id: str) -> TrustFile:
    """The trust file without one release; removing the last one is refused (nothing would verify)."""
    if trust.release(release_id) is None:
        known = ", ".join(release.id for release in trust.releases)
        raise ReleaseChangeError(f"no release {release_id!r} in the trust file (pinned: {known})")
    remaining = [release for release in trust.releases if release.id != release_id]
    if not remaining:
        raise ReleaseChangeError("it is the only pinned release: add its successor first, then remove it")
    return _revalidated(trust, remaining)


def _revalidated(trust: TrustFile, releases: list[PinnedRelease]) -> TrustFile:
    document = trust.document()
    document["releases"] = [release.model_dump(mode="json") for release in releases]
    try:
        return TrustFile.model_validate(document)
    except ValidationError as exc:
        raise ReleaseChangeError(f"the change would not be a valid trust file: {validation_summary(exc)}") from None
