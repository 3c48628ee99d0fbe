"""release.json (`ccc.release/v1`) and `record-pcrs`: strict parsing, round trips, PCR checks.

Why these tests: tenants will pin releases by this file. A parser that accepted an unknown field,
a newer schema it does not understand, a coerced type, a duplicate key or a debug-mode PCR would
let a release claim something no reader checked. Any hostile input must end in `ManifestError`.
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.release.__main__ import main as release_main
from ccc.release.assemble import check_bundle
from ccc.release.bundle import BUNDLE_FILE, ENTRYPOINT, BundleFile, file_sha256, write_bundle
from ccc.release.errors import BundleError, ManifestError, MeasurementError, ReleaseError
from ccc.release.manifest import (
    SCHEMA_V1,
    Measurement,
    ReleaseManifest,
    load_manifest,
    manifest_bytes,
    manifest_from_document,
    parse_manifest,
    with_measurement,
    write_manifest,
)
from ccc.release.nitro_pcrs import measurement_from_nitro_cli, pcrs_from_nitro_cli, validate_pcr

PCR0, PCR1, PCR2 = "a1" * 48, "b2" * 48, "c3" * 48


def _document() -> dict[str, Any]:
    return {
        "schema": SCHEMA_V1,
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "source_dirty": False,
        "enclave": {"name": "ccc-enclave", "version": "0.2.0"},
        "wheel_target": "cp311-cp311-manylinux_2_36_x86_64",
        "build_backend": ["setuptools==84.2.1", "wheel==0.48.0"],
        "wheels": {"ccc_enclave-0.2.0-py3-none-any.whl": "1" * 64,
                   "numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl": "2" * 64},
        "model": {"nanodet-g.json": "3" * 64, "nanodet-g.onnx": "4" * 64},
        "entrypoint": "5" * 64,
        "bundle": {"file": "bundle.tar", "sha256": "6" * 64, "size": 10240, "source_date_epoch": 315532800},
        "base_image": None,
        "measurement": None,
    }


def _measured() -> dict[str, Any]:
    document = _document()
    document["base_image"] = "public.ecr.aws/docker/library/python@sha256:" + "7" * 64
    document["measurement"] = {"hash_algorithm": "SHA384", "pcrs": {"PCR0": PCR0, "PCR1": PCR1, "PCR2": PCR2},
                               "eif_sha256": "8" * 64, "nitro_cli_version": "Nitro CLI 1.4.2"}
    return document


def _nitro_output(**pcrs: str) -> str:
    values = {"PCR0": PCR0.upper(), "PCR1": PCR1, "PCR2": PCR2, **pcrs}
    return ("Start building the Enclave Image...\nEnclave Image successfully created.\n"
            + json.dumps({"Measurements": {"HashAlgorithm": "Sha384 { ... }", **values}}, indent=2) + "\n")


# --- the schema ----------------------------------------------------------------------------------

@pytest.mark.parametrize("document", [_document(), _measured()])
def test_round_trip_is_lossless_and_canonical(document: dict[str, Any]) -> None:
    manifest = manifest_from_document(document)
    text = manifest_bytes(manifest)
    assert parse_manifest(text) == manifest
    assert json.loads(text) == document
    assert manifest_bytes(parse_manifest(text)) == text
    assert text == (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def test_write_and_load_are_atomic_and_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    write_manifest(path, manifest_from_document(_measured()))
    assert load_manifest(path).document() == _measured()
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["release.json"]


def _paths_to_objects(document: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [()]
    for key in ("enclave", "bundle", "measurement"):
        if isinstance(document[key], dict):
            paths.append((key,))
    return paths


@pytest.mark.parametrize("where", [(), ("enclave",), ("bundle",), ("measurement",)])
def test_unknown_fields_are_refused_at_every_level(where: tuple[str, ...]) -> None:
    document = _measured()
    target = document
    for key in where:
        target = target[key]
    target["note"] = "harmless?"
    with pytest.raises(ManifestError, match="Extra inputs are not permitted"):
        parse_manifest(json.dumps(document))


@pytest.mark.parametrize("schema", ["ccc.release/v2", "ccc.release/v0", "ccc.release/V1", "", None, 1, ["x"]])
def test_unknown_schema_versions_are_refused(schema: object) -> None:
    document = _document()
    document["schema"] = schema
    with pytest.raises(ManifestError, match="unknown schema"):
        parse_manifest(json.dumps(document))
    del document["schema"]
    with pytest.raises(ManifestError, match="unknown schema"):
        parse_manifest(json.dumps(document))


def test_schema_id_is_not_an_accepted_spelling() -> None:
    document = _document()
    document["schema_id"] = document["schema"]
    with pytest.raises(ManifestError):
        parse_manifest(json.dumps(document))


@pytest.mark.parametrize(("path", "value"), [
    (("bundle", "size"), "10240"),                 # no coercion from strings
    (("bundle", "size"), 10240.0),
    (("bundle", "size"), -1),
    (("source_dirty",), "false"),
    (("source_dirty",), 0),
    (("git_commit",), "0123456"),                  # short hashes are ambiguous
    (("entrypoint",), "5" * 63),
    (("entrypoint",), "A" * 64),                   # one canonical (lowercase) form
    (("wheels",), {"ccc_enclave-0.2.0-py3-none-any.whl": "1" * 64, "../evil.whl": "2" * 64}),
    (("wheels",), {"numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl": "2" * 64}),  # no enclave wheel
    (("model",), {}),
    (("model",), {"models/nanodet-g.onnx": "4" * 64}),
    (("base_image",), "python:3.11-slim-bookworm"),  # a tag is not a digest
    (("build_backend",), ["setuptools>=68"]),
    (("enclave", "name"), "CCC_Enclave"),
])
def test_malformed_values_are_refused(path: tuple[str, ...], value: object) -> None:
    document = _document()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ManifestError):
        parse_manifest(json.dumps(document))


def test_a_release_without_a_commit_must_say_its_sources_are_dirty() -> None:
    document = _document()
    document["git_commit"] = None
    with pytest.raises(ManifestError, match="source_dirty"):
        manifest_from_document(document)
    document["source_dirty"] = True
    assert manifest_from_document(document).git_commit is None


@pytest.mark.parametrize("text", ['{"schema": "ccc.release/v1", "schema": "ccc.release/v1"}',
                                  '{"a": {"b": 1, "b": 2}}'])
def test_duplicate_keys_are_refused(text: str) -> None:
    with pytest.raises(ManifestError, match="duplicate"):
        parse_manifest(text)


@pytest.mark.parametrize("data", [b"", b"\xff\xfe\x00", b"[1]", b"null", b"{", b"[" * 100_000, b" " * (2 << 20)])
def test_garbage_is_a_manifest_error(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


@pytest.mark.parametrize(("pcrs", "reason"), [
    ({"PCR0": PCR0, "PCR1": PCR1}, "PCR2"),
    ({"PCR0": "0" * 96, "PCR1": PCR1, "PCR2": PCR2}, "debug-mode"),
    ({"PCR0": PCR0[:-2], "PCR1": PCR1, "PCR2": PCR2}, "96 lowercase hex"),
    ({"PCR0": PCR0, "PCR1": PCR1, "PCR2": PCR2, "PCR3": PCR2}, "PCR3"),
])
def test_measurement_pcrs_are_checked(pcrs: dict[str, str], reason: str) -> None:
    document = _measured()
    document["measurement"]["pcrs"] = pcrs
    with pytest.raises(ManifestError, match=reason):
        parse_manifest(json.dumps(document))


# --- hypothesis: round trips and hostile input ----------------------------------------------------

_HEX = "0123456789abcdef"
_sha256 = st.text(_HEX, min_size=64, max_size=64)
_pcr = st.text(_HEX, min_size=96, max_size=96).filter(lambda value: value != "0" * 96)
_file_names = st.from_regex(r"[a-z][a-z0-9_.-]{0,30}\.(json|onnx|bin)", fullmatch=True)
_wheel_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}-[0-9]{1,3}\.[0-9]{1,3}-py3-none-any\.whl", fullmatch=True)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    document = _document()
    version = draw(st.from_regex(r"[0-9]{1,3}\.[0-9]{1,3}(\.post[0-9])?", fullmatch=True))
    document["enclave"]["version"] = version
    wheels = draw(st.dictionaries(_wheel_names, _sha256, max_size=5))
    wheels[f"ccc_enclave-{version}-py3-none-any.whl"] = draw(_sha256)
    document["wheels"] = wheels
    document["model"] = draw(st.dictionaries(_file_names, _sha256, min_size=1, max_size=3))
    document["entrypoint"] = draw(_sha256)
    document["git_commit"] = draw(st.none() | st.text(_HEX, min_size=40, max_size=40))
    document["source_dirty"] = True if document["git_commit"] is None else draw(st.booleans())
    document["bundle"] = {"file": "bundle.tar", "sha256": draw(_sha256), "size": draw(st.integers(0, 2**40)),
                          "source_date_epoch": draw(st.integers(0, 2**32))}
    if draw(st.booleans()):
        names = draw(st.sets(st.sampled_from(["PCR8"]), max_size=1)) | {"PCR0", "PCR1", "PCR2"}
        document["measurement"] = {"hash_algorithm": "SHA384", "pcrs": {name: draw(_pcr) for name in sorted(names)},
                                   "eif_sha256": draw(st.none() | _sha256),
                                   "nitro_cli_version": draw(st.none() | st.text(min_size=1, max_size=30))}
        document["base_image"] = draw(st.none() | _sha256.map(lambda digest: f"registry/python@sha256:{digest}"))
    return document


@settings(max_examples=150, deadline=None)
@given(_documents())
def test_any_valid_manifest_round_trips(document: dict[str, Any]) -> None:
    manifest = parse_manifest(json.dumps(document))
    assert manifest.document() == document
    assert parse_manifest(manifest_bytes(manifest)) == manifest


@settings(max_examples=150, deadline=None)
@given(_documents(), st.text(min_size=1, max_size=12), _json_values, st.data())
def test_any_extra_field_anywhere_is_refused(document: dict[str, Any], key: str, value: object,
                                              data: st.DataObject) -> None:
    where = data.draw(st.sampled_from(_paths_to_objects(document)))
    target = document
    for part in where:
        target = target[part]
    if key in target:
        return
    target[key] = value
    with pytest.raises(ManifestError):
        parse_manifest(json.dumps(document))


@settings(max_examples=200, deadline=None)
@given(_documents(), _json_values, st.data())
def test_replacing_any_value_yields_a_manifest_or_a_manifest_error(document: dict[str, Any], value: object,
                                                                   data: st.DataObject) -> None:
    mutated = copy.deepcopy(document)
    target = mutated
    while True:
        key = data.draw(st.sampled_from(sorted(target)))
        if isinstance(target[key], dict) and target[key] and data.draw(st.booleans()):
            target = target[key]
            continue
        target[key] = value
        break
    with contextlib.suppress(ManifestError):
        parse_manifest(json.dumps(mutated))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | _json_values.map(lambda value: json.dumps(value).encode()))
def test_arbitrary_input_raises_only_manifest_errors(data: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(data)


# --- nitro-cli's PCRs ------------------------------------------------------------------------------

def test_pcrs_are_read_from_nitro_cli_output_and_lowercased() -> None:
    assert pcrs_from_nitro_cli(_nitro_output(PCR8="d4" * 48)) == {"PCR0": PCR0, "PCR1": PCR1, "PCR2": PCR2,
                                                                  "PCR8": "d4" * 48}


@pytest.mark.parametrize(("value", "reason"), [
    ("ab" * 47, "96"), ("ab" * 49, "96"), ("zz" * 48, "96"), ("0" * 96, "debug-mode"), (12, "hex string"),
    ("a1" * 47 + "a", "96"),
])
def test_pcr_values_must_be_96_hex_and_not_all_zero(value: object, reason: str) -> None:
    with pytest.raises(MeasurementError, match=reason):
        validate_pcr("PCR0", value)
    with pytest.raises(MeasurementError, match=reason):
        pcrs_from_nitro_cli(_nitro_output(PCR1=value))  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "nitro-cli: error\n",
    "{not json}",
    json.dumps({"Measurements": {"HashAlgorithm": "Sha256", "PCR0": PCR0, "PCR1": PCR1, "PCR2": PCR2}}),
    json.dumps({"Measurements": {"HashAlgorithm": "Sha384", "PCR0": PCR0, "PCR1": PCR1}}),
    json.dumps({"Measurements": {"HashAlgorithm": "Sha384", "PCR0": PCR0, "pcr0": PCR0, "PCR1": PCR1, "PCR2": PCR2}}),
    json.dumps({"Measurements": {"HashAlgorithm": "Sha384", "PCR0": PCR0, "PCR1": PCR1, "PCR2": PCR2, "PCR4": PCR2}}),
    json.dumps({"Measurements": [PCR0]}),
])
def test_unusable_nitro_cli_output_is_refused(text: str) -> None:
    with pytest.raises(MeasurementError):
        pcrs_from_nitro_cli(text)


def test_a_measurement_joins_the_manifest_revalidated() -> None:
    manifest = manifest_from_document(_document())
    measurement = measurement_from_nitro_cli(_nitro_output(), nitro_cli_version="Nitro CLI 1.4.2\n")
    updated = with_measurement(manifest, measurement, base_image="r/python@sha256:" + "9" * 64)
    assert updated.measurement == measurement and updated.measurement.pcrs["PCR0"] == PCR0
    assert updated.measurement.nitro_cli_version == "Nitro CLI 1.4.2"
    with pytest.raises(ManifestError):
        with_measurement(manifest, measurement, base_image="python:latest")


# --- the CLI: record-pcrs and verify on a small real bundle ----------------------------------------

@pytest.fixture
def release_dir(tmp_path: Path) -> Path:
    """A tiny bundle and its manifest, as `build` writes them (wheels are opaque bytes here)."""
    sources = {"wheels/ccc_enclave-0.2.0-py3-none-any.whl": b"wheel", "models/nanodet-g.json": b"{}",
               "models/nanodet-g.onnx": b"onnx", ENTRYPOINT: b"#!/bin/sh\n"}
    files = []
    for name, data in sources.items():
        path = tmp_path / name.replace("/", "_")
        path.write_bytes(data)
        files.append(BundleFile(name, path, executable=name == ENTRYPOINT))
    out = tmp_path / "out"
    digests = write_bundle(out / BUNDLE_FILE, files)
    document = _document()
    document["wheels"] = {"ccc_enclave-0.2.0-py3-none-any.whl": digests["wheels/ccc_enclave-0.2.0-py3-none-any.whl"]}
    document["model"] = {name.split("/")[1]: digest for name, digest in digests.items() if name.startswith("models/")}
    document["entrypoint"] = digests[ENTRYPOINT]
    document["bundle"].update(sha256=file_sha256(out / BUNDLE_FILE), size=(out / BUNDLE_FILE).stat().st_size)
    write_manifest(out / "release.json", manifest_from_document(document))
    (out / "nitro-build.json").write_text(_nitro_output())
    (out / "ccc-enclave.eif").write_bytes(b"eif")
    return out


def test_verify_accepts_the_bundle_and_names_a_changed_member(release_dir: Path) -> None:
    assert release_main(["verify", str(release_dir / "release.json")]) == 0
    manifest = load_manifest(release_dir / "release.json")
    document = manifest.document()
    document["model"]["nanodet-g.onnx"] = "f" * 64  # the bundle digest still matches, one member does not
    with pytest.raises(BundleError, match=r"models/nanodet-g.onnx: sha256 differs"):
        check_bundle(manifest_from_document(document), release_dir / BUNDLE_FILE)


def test_record_pcrs_writes_the_measurement_and_base_image(release_dir: Path) -> None:
    release = release_dir / "release.json"
    code = release_main(["record-pcrs", str(release), "--nitro-build", str(release_dir / "nitro-build.json"),
                         "--eif", str(release_dir / "ccc-enclave.eif"), "--bundle", str(release_dir / BUNDLE_FILE),
                         "--base-image", "public.ecr.aws/docker/library/python@sha256:" + "e" * 64,
                         "--nitro-cli-version", "Nitro CLI 1.4.2"])
    assert code == 0
    manifest = load_manifest(release)
    assert manifest.measurement == Measurement.model_validate({
        "hash_algorithm": "SHA384", "pcrs": {"PCR0": PCR0, "PCR1": PCR1, "PCR2": PCR2},
        "eif_sha256": file_sha256(release_dir / "ccc-enclave.eif"), "nitro_cli_version": "Nitro CLI 1.4.2"})
    assert manifest.base_image is not None and manifest.base_image.endswith("e" * 64)


@pytest.mark.parametrize("nitro", [_nitro_output(PCR0="0" * 96), _nitro_output(PCR2="c3" * 47), "error: no space"])
def test_record_pcrs_refuses_bad_pcrs_and_leaves_the_manifest_alone(release_dir: Path, nitro: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    release = release_dir / "release.json"
    before = release.read_bytes()
    (release_dir / "nitro-build.json").write_text(nitro)
    assert release_main(["record-pcrs", str(release), "--nitro-build", str(release_dir / "nitro-build.json")]) == 1
    assert release.read_bytes() == before
    assert "record-pcrs failed" in capsys.readouterr().err


def test_record_pcrs_refuses_a_bundle_that_is_not_the_manifests(release_dir: Path) -> None:
    release = release_dir / "release.json"
    before = release.read_bytes()
    other = release_dir / "other.tar"
    other.write_bytes((release_dir / BUNDLE_FILE).read_bytes() + b"\x00" * 512)
    assert release_main(["record-pcrs", str(release), "--nitro-build", str(release_dir / "nitro-build.json"),
                         "--bundle", str(other)]) == 1
    assert release.read_bytes() == before


def test_every_error_of_the_package_is_a_release_error() -> None:
    assert all(issubclass(error, ReleaseError) for error in (ManifestError, BundleError, MeasurementError))
    assert ReleaseManifest.model_config["extra"] == "forbid"
