"""Enclave releases: the deterministic bundle the EIF is built from and its manifest, release.json.

`ccc.release.manifest` is the schema (`ccc.release/v1`) a tenant's client reads; `assemble` builds
bundle + manifest (`python -m ccc.release build`); `nitro_pcrs` checks the PCRs build_eif.sh
records (`python -m ccc.release record-pcrs`). Every failure is a `ReleaseError`.
"""

from ccc.release.errors import BundleError, ManifestError, MeasurementError, ReleaseError, WheelhouseError
from ccc.release.manifest import SCHEMA_V1, ReleaseManifest, load_manifest, parse_manifest

__all__ = [
    "SCHEMA_V1",
    "BundleError",
    "ManifestError",
    "MeasurementError",
    "ReleaseError",
    "ReleaseManifest",
    "WheelhouseError",
    "load_manifest",
    "parse_manifest",
]
