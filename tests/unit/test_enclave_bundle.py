"""The enclave bundle is deterministic, and the image is built from it alone.

Why these tests: release.json pins the bundle by SHA-256. If a second build of the same sources gave
other bytes (a timestamp, a umask, a stray __pycache__, a different wheel for another build host),
nobody could check that a release came from the commit it names. The real-build test builds the
bundle twice from the wheel cache that `make setup` fills (`make enclave-wheels`), the second time
from a copy with other modes, mtimes and build litter, and compares bytes; the synthetic tests pin
each property of the archive and of the wheel normalisation.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from ccc.local.components import enclave_python
from ccc.release.assemble import CACHE_DIR, PINS_FILE, ReleaseSources, build_release, check_bundle, git_state
from ccc.release.bundle import (
    BUNDLE_FILE,
    DIRECTORY_MODE,
    ENTRYPOINT,
    EXECUTABLE_MODE,
    FILE_MODE,
    SOURCE_DATE_EPOCH,
    BundleFile,
    read_bundle,
    write_bundle,
)
from ccc.release.errors import BundleError, WheelhouseError
from ccc.release.manifest import load_manifest
from ccc.release.wheelhouse import (
    ZIP_DATE_TIME,
    _stage_sources,
    normalise_wheel,
    parse_wheel_filename,
    read_pins,
    target_platforms,
)
from ccc_enclave.attester import DISTRIBUTION_PACKAGES, distribution_root
from ccc_enclave.attester import PINS_FILE as MEASURED_PINS_FILE

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "enclave_worker" / "enclave"
ENTRY_SCRIPT = REPO / "enclave_worker" / "image" / ENTRYPOINT


# --- the archive ---------------------------------------------------------------------------------

def _tree(root: Path, *, file_mode: int, mtime: float) -> list[BundleFile]:
    contents = {"wheels/b-1.0-py3-none-any.whl": b"b" * 700, "wheels/a-1.0-py3-none-any.whl": b"a" * 1300,
                "models/m.onnx": b"\x00\x01" * 5000, "models/m.json": b"{}", ENTRYPOINT: b"#!/bin/sh\nexec true\n"}
    files = []
    for name, data in contents.items():
        path = root / name.replace("/", "__")
        path.write_bytes(data)
        os.chmod(path, file_mode)
        os.utime(path, (mtime, mtime))
        files.append(BundleFile(name, path, executable=name == ENTRYPOINT))
    return files


def test_archive_is_sorted_with_fixed_times_owners_and_modes(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    bundle = tmp_path / BUNDLE_FILE
    digests = write_bundle(bundle, reversed(_tree(source, file_mode=0o600, mtime=2_000_000_000)))
    members = read_bundle(bundle)
    names = [member.name for member in members]
    assert names == sorted(names) == [ENTRYPOINT, "models", "models/m.json", "models/m.onnx", "wheels",
                                      "wheels/a-1.0-py3-none-any.whl", "wheels/b-1.0-py3-none-any.whl"]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (SOURCE_DATE_EPOCH, 0, 0, "", "")
        expected = DIRECTORY_MODE if member.is_dir else EXECUTABLE_MODE if member.name == ENTRYPOINT else FILE_MODE
        assert member.mode == expected, member
    assert digests == {member.name: member.sha256 for member in members if not member.is_dir}
    raw = bundle.read_bytes()
    assert raw[257:265] == b"ustar\x0000"  # POSIX ustar, not GNU
    assert len(raw) % tarfile.RECORDSIZE == 0
    with tarfile.open(bundle) as archive:
        assert {info.type for info in archive} == {tarfile.REGTYPE, tarfile.DIRTYPE}  # no pax/GNU extension headers
        assert all(not info.pax_headers for info in archive)


def test_same_content_gives_the_same_bytes_whatever_the_file_metadata(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write_bundle(tmp_path / "1.tar", _tree(one, file_mode=0o644, mtime=1_000_000_000))
    write_bundle(tmp_path / "2.tar", reversed(_tree(two, file_mode=0o777, mtime=time.time())))
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()


@pytest.mark.parametrize("name", ["", "/abs", "a//b", "../up", "a/./b", "ccc_core/__pycache__/x.py", "x.pyc",
                                  "x.pyo", "a b", "a\\b", ".hidden"])
def test_names_that_could_escape_or_carry_bytecode_are_refused(tmp_path: Path, name: str) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(BundleError):
        write_bundle(tmp_path / BUNDLE_FILE, [BundleFile(name, source)])
    assert not (tmp_path / BUNDLE_FILE).exists()


def test_a_name_twice_or_as_file_and_directory_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(BundleError, match="two files"):
        write_bundle(tmp_path / BUNDLE_FILE, [BundleFile("a", source), BundleFile("a", source)])
    with pytest.raises(BundleError, match="both as file and directory"):
        write_bundle(tmp_path / BUNDLE_FILE, [BundleFile("a", source), BundleFile("a/b", source)])


def test_a_failed_write_keeps_the_previous_bundle(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    bundle = tmp_path / BUNDLE_FILE
    write_bundle(bundle, [BundleFile("a", source)])
    before = bundle.read_bytes()
    with pytest.raises(BundleError):
        write_bundle(bundle, [BundleFile("b", tmp_path / "missing")])
    assert bundle.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [BUNDLE_FILE, "f"]


# --- the enclave distribution's wheel ------------------------------------------------------------

def _zip(path: Path, entries: list[tuple[str, bytes, int, tuple[int, int, int, int, int, int]]]) -> None:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data, mode, date in entries:
            info = zipfile.ZipInfo(name, date_time=date)
            info.external_attr = (stat.S_IFREG | mode) << 16
            wheel.writestr(info, data, compress_type=zipfile.ZIP_STORED)


def test_normalised_wheels_depend_on_names_and_contents_only(tmp_path: Path) -> None:
    entries = [("pkg/__init__.py", b"x = 1\n"), ("pkg/py.typed", b""), ("pkg-1.0.dist-info/METADATA", b"Name: pkg\n"),
               ("pkg-1.0.dist-info/RECORD", b"...")]
    one, two = tmp_path / "one.whl", tmp_path / "two.whl"
    _zip(one, [(name, data, 0o644, (2020, 5, 6, 7, 8, 10)) for name, data in entries])
    _zip(two, [(name, data, 0o664, (2031, 1, 2, 3, 4, 6)) for name, data in reversed(entries)])
    assert one.read_bytes() != two.read_bytes()
    normalise_wheel(one)
    normalise_wheel(two)
    assert one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as wheel:
        infos = wheel.infolist()
        assert [info.filename for info in infos] == ["pkg/__init__.py", "pkg/py.typed", "pkg-1.0.dist-info/METADATA",
                                                     "pkg-1.0.dist-info/RECORD"]
        assert {(info.date_time, info.external_attr >> 16, info.create_system) for info in infos} == {
            (ZIP_DATE_TIME, stat.S_IFREG | 0o644, 3)}
        assert wheel.read("pkg/__init__.py") == b"x = 1\n"


def test_a_wheel_with_bytecode_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    _zip(wheel, [("pkg/__pycache__/m.cpython-311.pyc", b"\x00", 0o644, ZIP_DATE_TIME),
                 ("pkg-1.0.dist-info/RECORD", b"", 0o644, ZIP_DATE_TIME)])
    with pytest.raises(WheelhouseError, match="bytecode"):
        normalise_wheel(wheel)


def test_staged_sources_leave_out_build_litter_and_normalise_modes(tmp_path: Path) -> None:
    source, staged = tmp_path / "dist", tmp_path / "staged"
    (source / "pkg" / "__pycache__").mkdir(parents=True)
    (source / "build" / "lib").mkdir(parents=True)
    (source / "pkg.egg-info").mkdir()
    (source / "pyproject.toml").write_text("[project]\n")
    (source / "pkg" / "m.py").write_text("x = 1\n")
    (source / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\x00")
    (source / "pkg" / "stale.pyc").write_bytes(b"\x00")
    (source / "build" / "lib" / "old.py").write_text("")
    (source / "pkg.egg-info" / "PKG-INFO").write_text("")
    os.chmod(source / "pkg" / "m.py", 0o664)
    _stage_sources(source, staged)
    found = sorted(str(path.relative_to(staged)) for path in staged.rglob("*"))
    assert found == ["pkg", "pkg/m.py", "pyproject.toml"]
    assert stat.S_IMODE((staged / "pkg" / "m.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((staged / "pkg").stat().st_mode) == 0o755


@pytest.mark.parametrize("line", ["numpy>=2", "numpy", "numpy==2.0; python_version>'3'", "-e .",
                                  "https://example.com/x.whl", "numpy[extra]==2.0"])
def test_only_exact_pins_are_accepted(tmp_path: Path, line: str) -> None:
    pins = tmp_path / "requirements.txt"
    pins.write_text(f"# comment\nsix==1.17.0\n{line}\n")
    with pytest.raises(WheelhouseError, match="exact pin"):
        read_pins(pins)


def test_the_target_is_manylinux_x86_64_up_to_glibc_2_36_newest_first() -> None:
    platforms = target_platforms()
    assert platforms[0] == "manylinux_2_36_x86_64" and platforms[-1] == "manylinux1_x86_64"
    assert {"manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64"} <= set(platforms)
    assert all(platform.endswith("_x86_64") and platform.startswith("manylinux") for platform in platforms)


# --- the real bundle, built twice ----------------------------------------------------------------

def _snapshot(target: Path) -> ReleaseSources:
    """A copy of the release inputs (other work in this checkout must not change them between builds)."""
    shutil.copytree(DIST, target / "dist", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    for path in (ENTRY_SCRIPT, REPO / "models" / "nanodet-g.json", REPO / "models" / "nanodet-g.onnx"):
        shutil.copy2(path, target / path.name)
    return ReleaseSources(repo=target, dist_dir=target / "dist", entry_script=target / ENTRYPOINT,
                          model_card=target / "nanodet-g.json")


def _perturb(sources: ReleaseSources, target: Path) -> ReleaseSources:
    """The same inputs with other modes, mtimes and build litter: none of it may reach the bundle."""
    shutil.copytree(sources.repo, target)
    now = time.time()
    for index, path in enumerate(sorted(target.rglob("*"))):
        os.utime(path, (now + index, now + index))
        os.chmod(path, 0o775 if path.is_dir() else 0o664)
    (target / "dist" / "ccc_enclave" / "__pycache__").mkdir()
    (target / "dist" / "ccc_enclave" / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\x00")
    (target / "dist" / "build" / "lib" / "ccc_enclave").mkdir(parents=True)
    (target / "dist" / "build" / "lib" / "ccc_enclave" / "deleted_long_ago.py").write_text("")
    (target / "dist" / "ccc_enclave.egg-info").mkdir()
    (target / "dist" / "ccc_enclave.egg-info" / "SOURCES.txt").write_text("stale\n")
    os.chmod(target / ENTRYPOINT, 0o700)
    return ReleaseSources(repo=target, dist_dir=target / "dist", entry_script=target / ENTRYPOINT,
                          model_card=target / "nanodet-g.json")


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Bundles built twice from the wheel cache, offline (a cold cache fails with `make enclave-wheels`)."""
    base = tmp_path_factory.mktemp("release")
    sources = _snapshot(base / "inputs")
    first = build_release(sources, out_dir=base / "first", cache_dir=REPO / CACHE_DIR, allow_download=False)
    second = build_release(_perturb(sources, base / "perturbed"), out_dir=base / "second",
                           cache_dir=REPO / CACHE_DIR, allow_download=False)
    return first.bundle_path, second.bundle_path


def test_two_builds_give_byte_identical_bundles(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    assert first.read_bytes() == second.read_bytes()
    assert load_manifest(first.parent / "release.json").bundle == load_manifest(second.parent / "release.json").bundle


def test_the_manifest_describes_exactly_the_bundle(two_builds: tuple[Path, Path]) -> None:
    bundle = two_builds[0]
    manifest = load_manifest(bundle.parent / "release.json")
    check_bundle(manifest, bundle)
    pins = read_pins(DIST / PINS_FILE)
    assert {parse_wheel_filename(name)[0] for name in manifest.wheels} == {pin.name for pin in pins} | {"ccc-enclave"}
    assert (manifest.enclave.name, manifest.measurement, manifest.base_image) == ("ccc-enclave", None, None)
    assert sorted(manifest.model) == ["nanodet-g.json", "nanodet-g.onnx"]
    assert manifest.git_commit is None and manifest.source_dirty  # a snapshot outside git matches no commit


def test_the_enclave_wheel_holds_the_measured_sources_and_no_bytecode(two_builds: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    """The wheel carries every module the local measurement covers (ccc_core, ccc_enclave), nothing stale."""
    with tarfile.open(two_builds[0]) as archive:
        member = next(info for info in archive if info.name.startswith("wheels/ccc_enclave-"))
        archive.extract(member, tmp_path, filter="data")
    sources = two_builds[0].parent.parent / "inputs" / "dist"
    expected = {str(path.relative_to(sources)) for package in ("ccc_core", "ccc_enclave")
                for path in (sources / package).rglob("*.py")}
    with zipfile.ZipFile(tmp_path / member.name) as wheel:
        names = wheel.namelist()
        assert {name for name in names if name.endswith(".py")} == expected
        assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
        assert {info.date_time for info in wheel.infolist()} == {ZIP_DATE_TIME}
        assert wheel.testzip() is None


def test_a_changed_member_is_detected(two_builds: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = two_builds[0]
    manifest = load_manifest(bundle.parent / "release.json")
    forged = tmp_path / BUNDLE_FILE
    data = bytearray(bundle.read_bytes())
    data[-20000] ^= 1  # inside the last member's content
    forged.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="not the manifest's bundle"):
        check_bundle(manifest, forged)


def test_the_bundle_installs_the_pins_the_local_measurement_covers() -> None:
    assert PINS_FILE == MEASURED_PINS_FILE


def test_git_state_names_the_commit_and_whether_the_enclave_sources_differ(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       check=True, capture_output=True)

    assert git_state(tmp_path, [tmp_path]) == (None, True)  # not a repository: no commit to claim
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("x = 1\n")
    (tmp_path / "other.txt").write_text("")
    git("init", "-q")
    git("add", "src/m.py")
    git("commit", "-q", "-m", "one")
    commit, dirty = git_state(tmp_path, [tmp_path / "src"])
    assert commit is not None and len(commit) == 40 and not dirty  # other.txt is not an enclave source
    (tmp_path / "src" / "new.py").write_text("")
    assert git_state(tmp_path, [tmp_path / "src"]) == (commit, True)


# --- the image recipe uses the bundle only -------------------------------------------------------

def test_the_dockerfile_takes_only_the_bundle_and_installs_offline() -> None:
    lines = (REPO / "enclave_worker" / "Dockerfile").read_text().splitlines()
    copies = [line for line in lines if line.split(" ", 1)[0] in ("ADD", "COPY")]
    assert copies == ["ADD bundle.tar /tmp/ccc-bundle/"]
    text = "\n".join(lines)
    assert "pip install --no-index --no-deps" in text and "pip check" in text and "printf" not in text
    assert 'ENTRYPOINT ["/usr/local/bin/ccc-enclave-entry"]' in text


def test_the_image_ships_bytecode_compiled_without_mtimes_after_deleting_every_cache() -> None:
    """An EIF without bytecode compiles every module at each boot (ccc bench coldstart measures it);
    timestamped pycs would make the file system, and so PCR0, depend on build time."""
    text = (REPO / "enclave_worker" / "Dockerfile").read_text()
    delete = text.index("-name '__pycache__' -type d -prune -exec rm -rf")
    compile_ = text.index("python -m compileall")
    assert delete < compile_
    assert "--invalidation-mode unchecked-hash" in text[compile_:]
    assert '["stdlib"]' in text[compile_:] and '["purelib"]' in text[compile_:]


def test_unchecked_hash_bytecode_is_the_same_whatever_the_hash_seed_and_parallelism(tmp_path: Path) -> None:
    """The property the image's compile step relies on, checked on the enclave's own code with the
    enclave's interpreter: two compiles of the same tree under other hash seeds and -j give equal bytes."""
    digests = []
    for seed, jobs in (("1", "1"), ("4242", "2")):
        tree = tmp_path / f"tree-{seed}"
        for package in DISTRIBUTION_PACKAGES:
            shutil.copytree(distribution_root() / package, tree / package,
                            ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run(
            [str(enclave_python()), "-s", "-m", "compileall", "-q", "-j", jobs, "-d", "/site",
             "--invalidation-mode", "unchecked-hash", str(tree)],
            check=True, env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True,
        )
        pycs = sorted(tree.rglob("*.pyc"))
        assert len(pycs) > 40
        digests.append({path.relative_to(tree).as_posix(): path.read_bytes() for path in pycs})
    assert digests[0] == digests[1]


def test_build_eif_builds_the_bundle_and_records_the_pcrs_in_release_json() -> None:
    script = (REPO / "enclave_worker" / "build_eif.sh").read_text()
    assert "-m ccc.release build" in script and "-m ccc.release record-pcrs" in script
    assert "grep -E" not in script and "ENCLAVE_PACKAGES" not in script  # no regex over requirements
    assert "-m cdk.measurements from-nitro-cli" in script  # measurements.json for CDK, as before


def test_the_entry_script_is_an_executable_posix_shell_script() -> None:
    assert os.access(ENTRY_SCRIPT, os.X_OK)
    subprocess.run(["sh", "-n", str(ENTRY_SCRIPT)], check=True)
    text = ENTRY_SCRIPT.read_text()
    assert text.startswith("#!/bin/sh\n") and text.rstrip().endswith("exec python -m ccc_enclave")
