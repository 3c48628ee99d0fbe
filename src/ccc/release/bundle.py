"""The enclave bundle: one deterministic tar holding everything the EIF is built from.

Why deterministic: the bundle's SHA-256 goes into release.json, and a second build of the same
inputs (another day, another machine, another checkout) must produce the same bytes, or nobody can
check that a release was built from the sources it names. So nothing of the build machine may leak
into the archive:

* entries sorted by name, each directory before its content (a prefix sorts first);
* every mtime `SOURCE_DATE_EPOCH` = 1980-01-01T00:00:00Z: a constant rather than the commit time,
  so the bundle's digest depends on its content only (the commit is recorded in release.json);
  1980 because zip (the wheels) cannot express an earlier date and the wheel build uses the same value;
* owner 0:0 with empty user and group names;
* modes 0644 for files, 0755 for directories and the entry script;
* POSIX ustar format (no pax headers, which could carry extra times; a name ustar cannot hold is an
  error, not a silent GNU extension);
* no bytecode and no `__pycache__` (it depends on the Python that wrote it, and the enclave never needs it).

Layout: `ccc-enclave-entry` (the boot script), `models/<card>.json` + `models/<card>.onnx`,
`wheels/*.whl` (the enclave distribution's wheel and one per pinned requirement).
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ccc.atomic_files import atomic_writer
from ccc.release.errors import BundleError

SOURCE_DATE_EPOCH = 315_532_800  # 1980-01-01T00:00:00Z
TAR_FORMAT = tarfile.USTAR_FORMAT
FILE_MODE = 0o644
EXECUTABLE_MODE = 0o755
DIRECTORY_MODE = 0o755
BUNDLE_FILE = "bundle.tar"
ENTRYPOINT = "ccc-enclave-entry"
WHEELS_DIR = "wheels"
MODELS_DIR = "models"

_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")


@dataclass(frozen=True)
class BundleFile:
    """One file to put in the bundle: its name inside the archive and where its bytes come from."""

    name: str
    source: Path
    executable: bool = False


@dataclass(frozen=True)
class BundleMember:
    """One archive entry as read back (what the determinism tests and `verify` look at)."""

    name: str
    is_dir: bool
    mode: int
    mtime: int
    uid: int
    gid: int
    uname: str
    gname: str
    size: int
    sha256: str | None  # None for directories


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed (the bundle and the EIF are ~100 MB). OSError propagates."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_member_name(name: str) -> None:
    """A relative '/'-separated name of plain parts; no bytecode, nothing that escapes the archive root."""
    parts = name.split("/")
    if not name or any(not _NAME_PART.fullmatch(part) for part in parts):
        raise BundleError(f"bundle member name {name!r}: each part must match {_NAME_PART.pattern}")
    if "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
        raise BundleError(f"bundle member {name!r} is bytecode: the bundle carries none")


def _directories(names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        parts = name.split("/")
        found.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return found


def _info(name: str, *, is_dir: bool, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = mode
    info.size = size
    info.mtime = SOURCE_DATE_EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_bundle(path: Path, files: Iterable[BundleFile]) -> dict[str, str]:
    """Write the bundle atomically; returns the SHA-256 of each file member (name -> hex)."""
    by_name: dict[str, BundleFile] = {}
    for item in files:
        check_member_name(item.name)
        if item.name in by_name:
            raise BundleError(f"two files want the bundle name {item.name!r}")
        by_name[item.name] = item
    directories = _directories(by_name)
    clashes = directories & set(by_name)
    if clashes:
        raise BundleError(f"bundle names used both as file and directory: {sorted(clashes)}")
    digests: dict[str, str] = {}
    try:
        with (
            atomic_writer(Path(path), mode=0o644) as handle,
            tarfile.open(fileobj=handle, mode="w", format=TAR_FORMAT) as archive,
        ):
            for name in sorted(directories | set(by_name)):
                if name in directories:
                    archive.addfile(_info(name, is_dir=True, mode=DIRECTORY_MODE))
                    continue
                item = by_name[name]
                data = item.source.read_bytes()
                mode = EXECUTABLE_MODE if item.executable else FILE_MODE
                archive.addfile(_info(name, is_dir=False, mode=mode, size=len(data)), io.BytesIO(data))
                digests[name] = hashlib.sha256(data).hexdigest()
    except OSError as exc:
        raise BundleError(f"cannot write the bundle {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # tarfile: a name or size the ustar format cannot hold
        raise BundleError(f"cannot write the bundle {path}: {exc}") from None
    return digests


def read_bundle(path: Path) -> list[BundleMember]:
    """The archive's entries in archive order; anything but regular files and directories is refused."""
    members: list[BundleMember] = []
    try:
        with tarfile.open(Path(path), mode="r:") as archive:
            for info in archive:
                if not (info.isfile() or info.isdir()):
                    raise BundleError(f"bundle member {info.name!r} is neither a file nor a directory")
                digest = None
                if info.isfile():
                    extracted = archive.extractfile(info)
                    if extracted is None:
                        raise BundleError(f"bundle member {info.name!r} cannot be read")
                    digest = hashlib.sha256(extracted.read()).hexdigest()
                members.append(BundleMember(
                    name=info.name.rstrip("/"), is_dir=info.isdir(), mode=info.mode, mtime=int(info.mtime),
                    uid=info.uid, gid=info.gid, uname=info.uname, gname=info.gname, size=info.size, sha256=digest,
                ))
    except OSError as exc:
        raise BundleError(f"cannot read the bundle {path}: {exc.strerror or exc}") from None
    except tarfile.TarError as exc:
        raise BundleError(f"{path} is not a readable tar archive: {exc}") from None
    return members
