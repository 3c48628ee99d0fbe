"""Build a release: the enclave's wheels, model and entry script -> `bundle.tar` + `release.json`.

Why a bundle at all: the EIF used to be built from a Docker context that build_eif.sh assembled on
the build host (a regex over the root requirements, wheels built for that host). Now everything the
image installs is this one deterministic file, its digest and the digests of its parts are in
release.json, and the Dockerfile copies nothing else. Rebuilding a commit gives the same bundle
(tests/unit/test_enclave_bundle.py builds it twice and compares bytes).

Order of writing: the old release.json is removed first and the new one written last, so a failed
build never leaves a manifest that describes some other bundle.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccc.release.bundle import (
    BUNDLE_FILE,
    ENTRYPOINT,
    MODELS_DIR,
    SOURCE_DATE_EPOCH,
    WHEELS_DIR,
    BundleFile,
    file_sha256,
    read_bundle,
    write_bundle,
)
from ccc.release.errors import BundleError, ReleaseError
from ccc.release.manifest import (
    MANIFEST_FILE,
    ReleaseManifest,
    manifest_from_document,
    write_manifest,
)
from ccc.release.wheelhouse import (
    BUILD_BACKEND,
    build_distribution_wheel,
    pinned_wheels,
    wheel_distribution,
    wheel_target,
)

DIST_DIR = Path("enclave_worker/enclave")
# The distribution's exact pins (ccc_enclave.attester.PINS_FILE, which the local measurement covers).
# Named here rather than imported: building the bundle must not need the enclave's code to import.
PINS_FILE = "requirements.txt"
ENTRY_SCRIPT = Path("enclave_worker/image") / ENTRYPOINT
MODEL_CARD = Path("models/nanodet-g.json")
CACHE_DIR = Path(".cache/enclave-bundle")
OUT_DIR = Path("build/enclave")

Log = Callable[[str], None]


def _silent(_message: str) -> None:
    return None


@dataclass(frozen=True)
class ReleaseSources:
    """Where a release's inputs are: the enclave distribution, its boot script and the model card.

    The ONNX model is the card's sibling with the same stem (the enclave's own convention).
    """

    repo: Path
    dist_dir: Path
    entry_script: Path
    model_card: Path

    @classmethod
    def in_checkout(cls, repo: Path, *, model_card: Path | None = None) -> ReleaseSources:
        repo = Path(repo).resolve()
        return cls(repo=repo, dist_dir=repo / DIST_DIR, entry_script=repo / ENTRY_SCRIPT,
                   model_card=Path(model_card) if model_card is not None else repo / MODEL_CARD)

    @property
    def model_files(self) -> tuple[Path, Path]:
        return self.model_card, self.model_card.with_suffix(".onnx")


@dataclass(frozen=True)
class BuiltRelease:
    manifest: ReleaseManifest
    bundle_path: Path
    manifest_path: Path


def git_state(repo: Path, paths: list[Path]) -> tuple[str | None, bool]:
    """(HEAD commit, whether `paths` differ from it). Without git the sources match no commit: (None, True)."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "HEAD"],
                              capture_output=True, text=True, check=False)
        if head.returncode != 0:
            return None, True
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all", "--",
                                 *(str(path) for path in paths)], capture_output=True, text=True, check=False)
    except OSError:
        return None, True
    return head.stdout.strip(), status.returncode != 0 or bool(status.stdout.strip())


def build_release(sources: ReleaseSources, *, out_dir: Path, cache_dir: Path, base_image: str | None = None,
                  allow_download: bool = True, log: Log = _silent) -> BuiltRelease:
    """Write `out_dir/bundle.tar` and `out_dir/release.json` (measurement null: no EIF measured yet)."""
    missing = [path for path in (sources.entry_script, *sources.model_files) if not path.is_file()]
    if missing:
        raise ReleaseError(f"release inputs missing: {', '.join(map(str, missing))} (the model: `make model`)")
    bundle_path, manifest_path = Path(out_dir) / BUNDLE_FILE, Path(out_dir) / MANIFEST_FILE
    with contextlib.suppress(FileNotFoundError):
        manifest_path.unlink()
    with tempfile.TemporaryDirectory(prefix="ccc-release-") as temporary:
        work = Path(temporary)
        wheels = pinned_wheels(sources.dist_dir / PINS_FILE, Path(cache_dir), work / "wheels",
                               allow_download=allow_download, log=log)
        own = build_distribution_wheel(sources.dist_dir, Path(cache_dir), work / "wheels", work_dir=work / "build")
        name, version = wheel_distribution(own)
        files = [BundleFile(f"{WHEELS_DIR}/{wheel.name}", wheel) for wheel in [*wheels, own]]
        files += [BundleFile(f"{MODELS_DIR}/{path.name}", path) for path in sources.model_files]
        files.append(BundleFile(ENTRYPOINT, sources.entry_script, executable=True))
        digests = write_bundle(bundle_path, files)
    commit, dirty = git_state(sources.repo, [sources.dist_dir, sources.entry_script])
    manifest = manifest_from_document({
        "schema": "ccc.release/v1",
        "git_commit": commit,
        "source_dirty": dirty,
        "enclave": {"name": name, "version": version},
        "wheel_target": wheel_target(),
        "build_backend": list(BUILD_BACKEND),
        "wheels": {member.split("/", 1)[1]: digest for member, digest in digests.items()
                   if member.startswith(f"{WHEELS_DIR}/")},
        "model": {member.split("/", 1)[1]: digest for member, digest in digests.items()
                  if member.startswith(f"{MODELS_DIR}/")},
        "entrypoint": digests[ENTRYPOINT],
        "bundle": {"file": BUNDLE_FILE, "sha256": file_sha256(bundle_path), "size": bundle_path.stat().st_size,
                   "source_date_epoch": SOURCE_DATE_EPOCH},
        "base_image": base_image,
        "measurement": None,
    }, source="the release being built")
    write_manifest(manifest_path, manifest)
    log(f"wrote {bundle_path} ({manifest.bundle.size} bytes, sha256 {manifest.bundle.sha256}) and {manifest_path}")
    return BuiltRelease(manifest=manifest, bundle_path=bundle_path, manifest_path=manifest_path)


def expected_members(manifest: ReleaseManifest) -> dict[str, str]:
    """Bundle member name -> SHA-256, as the manifest describes the bundle (files only)."""
    expected = {f"{WHEELS_DIR}/{name}": digest for name, digest in manifest.wheels.items()}
    expected.update({f"{MODELS_DIR}/{name}": digest for name, digest in manifest.model.items()})
    expected[ENTRYPOINT] = manifest.entrypoint
    return expected


def check_bundle(manifest: ReleaseManifest, bundle_path: Path) -> None:
    """Refuse a bundle that is not exactly the one the manifest describes (digest, size, every member)."""
    try:
        size, digest = Path(bundle_path).stat().st_size, file_sha256(bundle_path)
    except OSError as exc:
        raise BundleError(f"cannot read the bundle {bundle_path}: {exc.strerror or exc}") from None
    if (size, digest) != (manifest.bundle.size, manifest.bundle.sha256):
        raise BundleError(f"{bundle_path} is not the manifest's bundle: sha256 {digest} ({size} bytes), "
                          f"manifest {manifest.bundle.sha256} ({manifest.bundle.size} bytes)")
    found = {member.name: member.sha256 for member in read_bundle(bundle_path) if not member.is_dir}
    expected = expected_members(manifest)
    problems = [f"{name}: missing" for name in sorted(set(expected) - set(found))]
    problems += [f"{name}: not in the manifest" for name in sorted(set(found) - set(expected))]
    problems += [f"{name}: sha256 differs" for name in sorted(set(found) & set(expected))
                 if found[name] != expected[name]]
    if problems:
        raise BundleError(f"{bundle_path} differs from its manifest: {'; '.join(problems)}")
