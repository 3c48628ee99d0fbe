"""The enclave's wheels, chosen for the EIF's platform rather than for the machine that builds them.

Why not `pip wheel -r requirements.txt` on the build host (what build_eif.sh did): the result
depended on that host (its Python, its glibc, source builds with its compiler), so two hosts built
two different images. Instead:

* every pin of the enclave distribution's `requirements.txt` is a published binary wheel for the
  target below (`pip download --only-binary=:all: --no-deps --platform ... --python-version 3.11
  --implementation cp --abi cp311`), so pip's choice depends on the pins and the target only;
* downloads land in a cache (`.cache/enclave-bundle/` by default) and every build selects from the
  cache with `--no-index` and no pip configuration (a user's find-links could otherwise offer a
  different file of the same name); only a cache miss goes to the index;
* the enclave distribution's own wheel is built from a clean copy of its sources (no `build/`,
  no egg-info, no bytecode, normalised modes) with a pinned build backend taken from the cache,
  `SOURCE_DATE_EPOCH` set, and then normalised (see `normalise_wheel`).

Target: CPython 3.11, x86_64, glibc up to 2.36 (Debian 12 "bookworm", the glibc of the enclave's
base image `python:3.11-slim-bookworm`). pip does not expand a `manylinux_2_36` platform to the
older tags a glibc 2.36 system also runs, so `target_platforms` lists them, newest first (pip
prefers earlier entries). Moving the base image to another glibc means changing `TARGET_GLIBC_MINOR`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path

from ccc.atomic_files import atomic_writer
from ccc.release.bundle import SOURCE_DATE_EPOCH
from ccc.release.errors import WheelhouseError

TARGET_PYTHON_VERSION = "3.11"
TARGET_IMPLEMENTATION = "cp"
TARGET_ABI = "cp311"
TARGET_ARCH = "x86_64"
TARGET_GLIBC_MINOR = 36
# What builds the enclave distribution's wheel; its bytes (WHEEL's Generator line, the METADATA
# layout) depend on these versions, so they are pinned and recorded in release.json.
BUILD_BACKEND = ("packaging==26.4", "setuptools==84.2.1", "wheel==0.48.0")
PINNED_DIR = "pinned"
BACKEND_DIR = "build-backend"
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # = SOURCE_DATE_EPOCH, the earliest date zip can hold

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)")
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_PIP_NOISE = "is ignored: it is neither a file nor a directory"
_SKIPPED_DIRS = ("__pycache__", "build", "dist")

Log = Callable[[str], None]


def _silent(_message: str) -> None:
    return None


@dataclass(frozen=True)
class Pin:
    """One `name==version` line of a requirements file (name in canonical form)."""

    name: str
    version: str


def canonical_name(name: str) -> str:
    """PEP 503: `Typing_Extensions` and `typing-extensions` are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> list[Pin]:
    """Exact pins only: a range, marker, option or URL would let the bundle's content float."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise WheelhouseError(f"cannot read the enclave pins {path}: {exc.strerror or exc}") from None
    pins: list[Pin] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.fullmatch(line)
        if match is None:
            raise WheelhouseError(f"{path}:{number}: {line!r} is not an exact pin `name==version`")
        pins.append(Pin(canonical_name(match.group(1)), match.group(2)))
    names = [pin.name for pin in pins]
    if len(set(names)) != len(names):
        raise WheelhouseError(f"{path}: a project is pinned twice")
    if not pins:
        raise WheelhouseError(f"{path}: no pins")
    return pins


def target_platforms() -> list[str]:
    """The manylinux platform tags of the target, most specific first."""
    platforms = []
    for minor in range(TARGET_GLIBC_MINOR, 4, -1):
        platforms.append(f"manylinux_2_{minor}_{TARGET_ARCH}")
        if minor in _LEGACY_MANYLINUX:
            platforms.append(f"{_LEGACY_MANYLINUX[minor]}_{TARGET_ARCH}")
    return platforms


def wheel_target() -> str:
    """The target as one tag-like string, recorded in release.json."""
    return f"{TARGET_ABI}-{TARGET_ABI}-manylinux_2_{TARGET_GLIBC_MINOR}_{TARGET_ARCH}"


def parse_wheel_filename(filename: str) -> tuple[str, str]:
    """(canonical project name, version) of `name-version[-build]-python-abi-platform.whl`."""
    parts = filename.removesuffix(".whl").split("-") if filename.endswith(".whl") else []
    if len(parts) not in (5, 6):
        raise WheelhouseError(f"{filename!r} is not a wheel file name")
    return canonical_name(parts[0]), parts[1]


def _pip(args: Sequence[str], *, what: str, hermetic: bool, extra_env: Mapping[str, str] | None = None) -> None:
    """Run this interpreter's pip. Hermetic: no PIP_* variables and no pip configuration files."""
    env = dict(os.environ)
    if hermetic:
        env = {key: value for key, value in env.items() if not key.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra_env or {})
    try:
        done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env,
                              check=False)
    except OSError as exc:
        raise WheelhouseError(f"{what}: cannot run pip ({exc})") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if _PIP_NOISE not in line]
        raise WheelhouseError(f"{what} failed (pip exit {done.returncode}):\n" + "\n".join(lines[-15:]))


def _target_args() -> list[str]:
    args = ["--only-binary=:all:", "--no-deps", "--python-version", TARGET_PYTHON_VERSION,
            "--implementation", TARGET_IMPLEMENTATION, "--abi", TARGET_ABI]
    for platform in target_platforms():
        args += ["--platform", platform]
    return args


def fill_cache(requirements: Path, cache_dir: Path, *, log: Log = _silent) -> None:
    """Download (from the configured index) the target's wheel of every pin, and the build backend."""
    log(f"downloading the enclave's wheels for {wheel_target()} into {cache_dir}")
    _pip(["download", "--quiet", *_target_args(), "--dest", str(cache_dir / PINNED_DIR),
          "--requirement", str(requirements)], what="downloading the enclave's pinned wheels", hermetic=False)
    _pip(["download", "--quiet", "--only-binary=:all:", "--no-deps", "--dest", str(cache_dir / BACKEND_DIR),
          *BUILD_BACKEND], what="downloading the wheel build backend", hermetic=False)


def _backend_cached(cache_dir: Path) -> bool:
    present = {parse_wheel_filename(path.name) for path in (cache_dir / BACKEND_DIR).glob("*.whl")}
    wanted = {(canonical_name(name), version) for name, _, version in (pin.partition("==") for pin in BUILD_BACKEND)}
    return wanted <= present


def _select_offline(requirements: Path, pins: Sequence[Pin], cache_dir: Path, dest: Path) -> list[Path]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    if not _backend_cached(cache_dir):
        raise WheelhouseError(f"the build backend {', '.join(BUILD_BACKEND)} is not in {cache_dir / BACKEND_DIR}")
    _pip(["download", "--quiet", *_target_args(), "--no-index", "--find-links", str(cache_dir / PINNED_DIR),
          "--dest", str(dest), "--requirement", str(requirements)],
         what="selecting the enclave's wheels from the cache", hermetic=True)
    found: dict[str, list[Path]] = {}
    for path in sorted(dest.glob("*.whl")):
        found.setdefault(parse_wheel_filename(path.name)[0], []).append(path)
    wheels = []
    for pin in pins:
        candidates = found.pop(pin.name, [])
        if len(candidates) != 1 or parse_wheel_filename(candidates[0].name)[1].lower() != pin.version.lower():
            raise WheelhouseError(f"pin {pin.name}=={pin.version}: expected one wheel, pip chose "
                                  f"{[path.name for path in candidates]}")
        wheels.extend(candidates)
    if found:
        raise WheelhouseError(f"pip chose wheels of unpinned projects: {sorted(found)}")
    return wheels


def pinned_wheels(requirements: Path, cache_dir: Path, dest: Path, *, allow_download: bool = True,
                  log: Log = _silent) -> list[Path]:
    """One wheel per pin, copied into `dest` (emptied first); the index is asked only on a cache miss."""
    pins = read_pins(requirements)
    if any(pin.name == "ccc-enclave" for pin in pins):
        raise WheelhouseError(f"{requirements} pins ccc-enclave itself: its wheel is built from the sources")
    try:
        return _select_offline(requirements, pins, cache_dir, dest)
    except WheelhouseError as miss:
        if not allow_download:
            raise WheelhouseError(f"{miss}\nthe cache {cache_dir} is cold: fill it with `python -m ccc.release "
                                  f"fetch` (make enclave-wheels) on a machine with index access") from None
        log(f"cache miss ({str(miss).splitlines()[0][:160]})")
    fill_cache(requirements, cache_dir, log=log)
    return _select_offline(requirements, pins, cache_dir, dest)


def _stage_sources(source: Path, staged: Path) -> None:
    """Copy the distribution's sources, minus build litter and bytecode, with normalised modes."""
    if not (source / "pyproject.toml").is_file():
        raise WheelhouseError(f"{source} has no pyproject.toml: not the enclave distribution")
    for root, dirs, files in os.walk(source):
        here = Path(root)
        relative = here.relative_to(source)
        dirs[:] = sorted(name for name in dirs if not (
            name.startswith(".") or name.endswith(".egg-info") or name == "__pycache__"
            or (relative == Path(".") and name in _SKIPPED_DIRS)))
        target = staged / relative
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(target, 0o755)  # noqa: S103  a directory of public sources: mode fixed, whatever the umask
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            if path.is_symlink() or not path.is_file():
                raise WheelhouseError(f"{path}: the enclave sources hold only regular files (no symlinks)")
            (target / name).write_bytes(path.read_bytes())
            os.chmod(target / name, 0o644)


def normalise_wheel(path: Path) -> None:
    """Rewrite a wheel so its bytes depend on the names and contents of its files only.

    Measured with setuptools 84.2.1 / wheel 0.48.0: SOURCE_DATE_EPOCH is honoured (every entry
    dated 1980-01-01) and two builds of one tree are byte-identical, but package data keeps the
    source file's permission bits (`py.typed` from a checkout with umask 002 is stored 0664 and
    changes the wheel's digest). So: entries sorted (the .dist-info last, RECORD at the very end),
    dated ZIP_DATE_TIME, made on "Unix", mode 0644 (0755 if executable), deflated. RECORD stays
    valid: it lists contents, not zip metadata.
    """
    try:
        with zipfile.ZipFile(path) as source:
            entries = {}
            for info in source.infolist():
                if info.is_dir():
                    continue
                if info.filename in entries:
                    raise WheelhouseError(f"{path.name}: {info.filename} appears twice")
                if "__pycache__" in info.filename.split("/") or info.filename.endswith((".pyc", ".pyo")):
                    raise WheelhouseError(f"{path.name}: holds bytecode ({info.filename})")
                entries[info.filename] = (bool((info.external_attr >> 16) & 0o111), source.read(info))
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelhouseError(f"cannot read the wheel {path}: {exc}") from None
    records = [name for name in entries if re.fullmatch(r"[^/]+\.dist-info/RECORD", name)]
    if len(records) != 1:
        raise WheelhouseError(f"{path.name}: expected one .dist-info/RECORD, found {records}")
    dist_info = records[0].split("/", 1)[0] + "/"
    order = sorted(entries, key=lambda name: (name.startswith(dist_info), name == records[0], name))
    with atomic_writer(path, mode=0o644) as handle, zipfile.ZipFile(handle, "w") as target:
        for name in order:
            executable, data = entries[name]
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # Unix, so the mode bits below mean what they say
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)


def wheel_distribution(path: Path) -> tuple[str, str]:
    """(Name, Version) from the wheel's METADATA: what the manifest names, straight from the artefact."""
    try:
        with zipfile.ZipFile(path) as wheel:
            metadata = [name for name in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", name)]
            if len(metadata) != 1:
                raise WheelhouseError(f"{path.name}: expected one .dist-info/METADATA, found {metadata}")
            headers = BytesParser().parsebytes(wheel.read(metadata[0]), headersonly=True)
    except (OSError, zipfile.BadZipFile) as exc:
        raise WheelhouseError(f"cannot read the wheel {path}: {exc}") from None
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise WheelhouseError(f"{path.name}: METADATA lacks Name or Version")
    return canonical_name(str(name)), str(version)


def build_distribution_wheel(dist_dir: Path, cache_dir: Path, dest: Path, *, work_dir: Path) -> Path:
    """Build the enclave distribution's wheel reproducibly into `dest`; returns its path."""
    staged, out = work_dir / "source", work_dir / "wheel"
    shutil.rmtree(work_dir, ignore_errors=True)
    _stage_sources(dist_dir, staged)
    constraints = work_dir / "build-constraints.txt"
    constraints.write_text("".join(f"{pin}\n" for pin in BUILD_BACKEND))
    _pip(["wheel", "--quiet", "--no-deps", "--no-index", "--find-links", str(cache_dir / BACKEND_DIR),
          "--build-constraint", str(constraints), "--wheel-dir", str(out), str(staged)],
         what=f"building the wheel of {dist_dir}", hermetic=True,
         extra_env={"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), "PYTHONDONTWRITEBYTECODE": "1"})
    built = sorted(out.glob("*.whl"))
    if len(built) != 1:
        raise WheelhouseError(f"building {dist_dir} gave {[path.name for path in built]}, expected one wheel")
    normalise_wheel(built[0])
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / built[0].name
    if final.exists():
        raise WheelhouseError(f"{final.name} is also a pinned wheel")
    shutil.move(str(built[0]), final)
    return final
