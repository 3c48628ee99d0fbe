"""The tenant's trust file (`ccc.trust/v1`): the only anchors the tenant's client verifies against.

`document` is the format (defined once; the CLI, `ccc submit`/`ccc result` and the demo read and
write it only through this package); `releases` builds and changes pinned releases; `location`
finds the file (`--trust`, `$CCC_TRUST_FILE`, the per-user default); `audit` compares the pins with
what the tenant's key releases to. Every failure is a `TrustError`.
"""

from ccc.trust.document import (
    TRUST_FORMAT,
    PinnedRelease,
    PinnedRoot,
    TrustFile,
    aws_nitro_root,
    load_trust,
    parse_trust,
    root_from_der,
    trust_bytes,
    write_trust,
)
from ccc.trust.errors import NoTrustFile, ReleaseChangeError, TrustError, TrustFileError
from ccc.trust.location import TRUST_FILE_ENV, default_trust_path, load_tenant_trust, resolve_trust_path

__all__ = [
    "TRUST_FILE_ENV",
    "TRUST_FORMAT",
    "NoTrustFile",
    "PinnedRelease",
    "PinnedRoot",
    "ReleaseChangeError",
    "TrustError",
    "TrustFile",
    "TrustFileError",
    "aws_nitro_root",
    "default_trust_path",
    "load_tenant_trust",
    "load_trust",
    "parse_trust",
    "resolve_trust_path",
    "root_from_der",
    "trust_bytes",
    "write_trust",
]
