"""Where the tenant's trust file is: `--trust FILE`, else `$CCC_TRUST_FILE`, else the per-user default.

Why a per-user default under the user's config directory and never next to a stack: the file is the
tenant's, not the operator's; nothing a stack publishes may be found and believed by accident.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ccc.trust.document import TrustFile, load_trust
from ccc.trust.errors import NoTrustFile

TRUST_FILE_ENV = "CCC_TRUST_FILE"

HOW_TO_MAKE_ONE = (
    "make one with `ccc trust init --out FILE --local-stack DIR --tenant T` (local stack) or "
    "`ccc trust init --out FILE --stack NAME --tenant T` (AWS), check what it shows, then pass "
    f"--trust FILE, set {TRUST_FILE_ENV}, or write it to the default location"
)


def default_trust_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/ccc/trust.json`, else `~/.config/ccc/trust.json`."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path(env.get("HOME") or Path.home()) / ".config"
    return root / "ccc" / "trust.json"


def resolve_trust_path(explicit: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """The file to use, or NoTrustFile saying how to make one (only the default may be absent)."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return Path(explicit)
    if env.get(TRUST_FILE_ENV):
        return Path(env[TRUST_FILE_ENV])
    default = default_trust_path(env)
    if not default.exists():
        raise NoTrustFile(f"no trust file (no --trust, no {TRUST_FILE_ENV}, nothing at {default}): {HOW_TO_MAKE_ONE}")
    return default


def load_tenant_trust(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> TrustFile:
    """Resolve and load the tenant's trust file (strictly parsed); a named file that does not exist
    gets the same how-to as no file at all."""
    path = resolve_trust_path(explicit, environ)
    if not path.exists():
        raise NoTrustFile(f"no trust file at {path}: {HOW_TO_MAKE_ONE}")
    return load_trust(path)
