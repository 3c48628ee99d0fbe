"""The model build end to end on a small NanoDet-shaped graph: fetch, verify, convert, write, card.

The graph here has the real model's input and six outputs (same names, shapes and layout
tricks: NHWC convs between transposes, SplitV, Sigmoid, Reshape, Transpose), so the whole build
path runs in well under a second without the 60 MB package. ``npm`` is replaced by small
scripts, so no network is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ccc.model import build as build_module
from ccc.model import nanodet, npm_package
from ccc.model.batch_axis import make_batch_dynamic
from ccc.model.build import build, main
from ccc.model.errors import ConversionError, IntegrityError, PackageFetchError
from ccc.model.npm_package import NpmSource, fetch_tarball, read_members
from ccc.model.tfjs_format import dump_graph_model, make_node, placeholder

JSON_MEMBER = "package/models/nanodet.json"
BIN_MEMBER = "package/models/nanodet.bin"
# The real graph's output node names, shuffled the same way: which is which follows from shapes.
TF_OUTPUTS = {("cls", 8): "Identity", ("cls", 16): "Identity_1", ("cls", 32): "Identity_2",
              ("box", 8): "Identity_3", ("box", 16): "Identity_4", ("box", 32): "Identity_5"}  # fmt: skip


def small_nanodet_graph():
    rng = np.random.default_rng(7)
    nodes = [placeholder("input_1", (1, 3, 416, 416)), make_node("nhwc", "Transpose", ["input_1", "to_nhwc"])]
    consts: dict[str, np.ndarray] = {
        "to_nhwc": np.array([0, 2, 3, 1], np.int32),
        "to_nchw": np.array([0, 3, 1, 2], np.int32),
        "sizes": np.array([80, 44], np.int32),
        "axis": np.array(1, np.int32),
        "cls_shape": np.array([1, 80, -1], np.int64),
        "box_shape": np.array([1, 44, -1], np.int64),
        "swap": np.array([0, 2, 1], np.int32),
    }
    for s in nanodet.STRIDES:
        consts[f"w{s}"] = rng.standard_normal((1, 1, 3, 124)).astype(np.float32)
        nodes += [
            make_node(f"conv{s}", "Conv2D", ["nhwc", f"w{s}"], strides=[1, s, s, 1], padding="VALID"),
            make_node(f"nchw{s}", "Transpose", [f"conv{s}", "to_nchw"]),
            make_node(f"split{s}", "SplitV", [f"nchw{s}", "sizes", "axis"], num_split=2),
            make_node(f"sig{s}", "Sigmoid", [f"split{s}"]),
            make_node(f"rc{s}", "Reshape", [f"sig{s}", "cls_shape"]),
            make_node(f"tc{s}", "Transpose", [f"rc{s}", "swap"]),
            make_node(TF_OUTPUTS["cls", s], "Identity", [f"tc{s}"]),
            make_node(f"rb{s}", "Reshape", [f"split{s}:1", "box_shape"]),
            make_node(f"tb{s}", "Transpose", [f"rb{s}", "swap"]),
            make_node(TF_OUTPUTS["box", s], "Identity", [f"tb{s}"]),
        ]
    return nodes, consts


def small_nanodet_files() -> tuple[bytes, bytes]:
    nodes, consts = small_nanodet_graph()
    outputs = ["Identity_2", "Identity_5", "Identity_1", "Identity", "Identity_4", "Identity_3"]  # as in the real file
    return dump_graph_model(nodes, consts, outputs=outputs, float16_weights=True, shard_name="nanodet.bin")


def make_tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    model_json, weights = small_nanodet_files()
    return {JSON_MEMBER: model_json, BIN_MEMBER: weights}


@pytest.fixture
def source(files) -> NpmSource:
    return NpmSource("@test/fake-nanodet", "0.0.1", {n: hashlib.sha256(d).hexdigest() for n, d in files.items()})


@pytest.fixture
def cached(tmp_path, files, source) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    make_tarball(cache / source.tarball_name, {"package/package.json": b"{}", **files})
    return cache


def fake_npm(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-npm"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_tarball_name_follows_npm_pack():
    assert NpmSource("@vladmandic/human", "1.5.1", {}).tarball_name == "vladmandic-human-1.5.1.tgz"
    assert NpmSource("left-pad", "1.3.0", {}).tarball_name == "left-pad-1.3.0.tgz"


def test_build_writes_named_model_and_card_then_is_idempotent(tmp_path, cached, source):
    out = tmp_path / "models"
    first = build(out, cached, source=source, npm="no-npm-needed-when-cached")
    assert first.rebuilt
    data = first.onnx_path.read_bytes()
    card = json.loads(first.card_path.read_text())
    assert card["sha256"] == hashlib.sha256(data).hexdigest() == first.sha256
    assert card["size_bytes"] == len(data)
    assert card["source"] == {
        "package": "@test/fake-nanodet",
        "version": "0.0.1",
        "tarball_integrity": npm_package.npm_integrity(cached / source.tarball_name),
        "files": dict(source.files),
    }
    assert card["licence"] == {"weights": "Apache-2.0, RangiLyu/nanodet", "package": "MIT, @vladmandic/human"}
    assert card["detector"]["cat_class"] == 15 and card["detector"]["input_name"] == "input_1"
    assert card["weights_dtype"] == "float32"

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input_1", ["batch", 3, 416, 416])]
    names = [o.name for o in session.get_outputs()]
    assert names == ["cls_8", "box_8", "cls_16", "box_16", "cls_32", "box_32"]
    assert [o.shape for o in session.get_outputs()] == [card["outputs"][n]["shape"] for n in names]
    # Outputs are the right tensors, not merely the right shapes: recompute stride 16 in numpy.
    x = np.random.default_rng(1).standard_normal((1, 3, 416, 416)).astype(np.float32)
    got = dict(zip(names, session.run(None, {"input_1": x}), strict=True))
    w16 = small_nanodet_graph()[1]["w16"].astype(np.float16).astype(np.float32).reshape(3, 124)
    logits = np.einsum("chw,co->hwo", x[0, :, ::16, ::16], w16).reshape(-1, 124)
    np.testing.assert_allclose(got["cls_16"][0], 1 / (1 + np.exp(-logits[:, :80])), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["box_16"][0], logits[:, 80:], rtol=1e-4, atol=1e-4)

    again = build(out, cached, source=source, npm="no-npm-needed-when-cached")
    assert not again.rebuilt and again.sha256 == first.sha256
    forced = build(out, cached, source=source, npm="no-npm-needed-when-cached", force=True)
    assert forced.rebuilt and first.onnx_path.read_bytes() == data  # same bytes when rebuilt
    assert sorted(p.name for p in out.iterdir()) == ["nanodet-g.json", "nanodet-g.onnx"]  # no temp files left


def test_tampered_model_is_rebuilt(tmp_path, cached, source):
    out = tmp_path / "models"
    result = build(out, cached, source=source)
    result.onnx_path.write_bytes(b"tampered")
    assert build(out, cached, source=source).rebuilt
    assert hashlib.sha256(result.onnx_path.read_bytes()).hexdigest() == result.sha256


def test_float16_build_records_its_dtype_and_halves_the_weights(tmp_path, cached, source):
    fp32 = build(tmp_path / "a", cached, source=source)
    fp16 = build(tmp_path / "b", cached, source=source, weights_dtype="float16")
    assert json.loads(fp16.card_path.read_text())["weights_dtype"] == "float16"
    assert fp16.onnx_path.stat().st_size < fp32.onnx_path.stat().st_size
    x = np.ones((1, 3, 416, 416), np.float32)
    runs = [
        ort.InferenceSession(str(r.onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input_1": x})
        for r in (fp32, fp16)
    ]
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)  # weights came from float16: storing them so is lossless


def test_sha_mismatch_is_rejected(tmp_path, cached, source):
    wrong = NpmSource(source.package, source.version, {**source.files, JSON_MEMBER: "0" * 64})
    with pytest.raises(IntegrityError, match="nanodet.json") as info:
        build(tmp_path / "models", cached, source=wrong)
    assert info.value.expected == "0" * 64
    assert not (tmp_path / "models" / "nanodet-g.onnx").exists()


def test_cli_reports_sha_mismatch_and_exits_non_zero(tmp_path, cached, source, monkeypatch, capsys):
    wrong = NpmSource(source.package, source.version, {**source.files, BIN_MEMBER: "f" * 64})
    monkeypatch.setitem(nanodet.SOURCES, "fake", wrong)
    status = main(["--out-dir", str(tmp_path / "m"), "--cache-dir", str(cached), "--source", "fake"])
    assert status == 1
    assert "sha256 mismatch" in capsys.readouterr().err


def test_npm_pack_runs_in_a_temporary_folder_and_lands_in_the_cache(tmp_path, files, source):
    prepared = make_tarball(tmp_path / "prepared.tgz", files)
    log = tmp_path / "npm-args"
    npm = fake_npm(tmp_path, f'echo "$@" > {log}\ncp {prepared} "$PWD/{source.tarball_name}"')
    result = build(tmp_path / "models", tmp_path / "cache", source=source, npm=npm)
    assert result.rebuilt
    assert log.read_text().split()[:2] == ["pack", "@test/fake-nanodet@0.0.1"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [source.tarball_name]


def test_npm_failure_is_reported_with_its_message(tmp_path, source):
    npm = fake_npm(tmp_path, 'echo "npm ERR! 404 Not Found - GET https://registry.npmjs.org/x" >&2\nexit 1')
    with pytest.raises(PackageFetchError, match="404 Not Found"):
        fetch_tarball(source, tmp_path / "cache", npm=npm)
    assert not (tmp_path / "cache" / source.tarball_name).exists()


def test_npm_that_writes_nothing_is_an_error(tmp_path, source):
    with pytest.raises(PackageFetchError, match="did not write"):
        fetch_tarball(source, tmp_path / "cache", npm=fake_npm(tmp_path, "exit 0"))


def test_missing_npm_is_a_clear_error(tmp_path, source):
    with pytest.raises(PackageFetchError, match="not on PATH"):
        fetch_tarball(source, tmp_path / "cache", npm="npm-that-is-not-installed-anywhere")


def test_corrupt_cached_tarball_is_fetched_again(tmp_path, files, source):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / source.tarball_name).write_bytes(b"\x1f\x8b garbage, not a tarball")
    prepared = make_tarball(tmp_path / "prepared.tgz", files)
    npm = fake_npm(tmp_path, f'cp {prepared} "$PWD/{source.tarball_name}"')
    assert build(tmp_path / "models", cache, source=source, npm=npm).rebuilt


def test_members_must_be_regular_files(tmp_path, files, source):
    tarball = make_tarball(tmp_path / "t.tgz", {JSON_MEMBER: files[JSON_MEMBER]}, links={BIN_MEMBER: "/etc/passwd"})
    with pytest.raises(PackageFetchError, match="not a regular file|unsafe member"):
        read_members(tarball, source)


def test_only_pinned_members_are_read(tmp_path, files, source):
    tarball = make_tarball(tmp_path / "t.tgz", {"../../escape.txt": b"x", "/abs.txt": b"y", **files})
    assert sorted(read_members(tarball, source)) == sorted(files)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_missing_member_and_oversized_member(tmp_path, files, source, monkeypatch):
    with pytest.raises(PackageFetchError, match="does not contain"):
        read_members(make_tarball(tmp_path / "a.tgz", {JSON_MEMBER: files[JSON_MEMBER]}), source)
    monkeypatch.setattr(npm_package, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(PackageFetchError, match="larger than"):
        read_members(make_tarball(tmp_path / "b.tgz", files), source)


def test_not_a_tarball(tmp_path, source):
    bogus = tmp_path / "x.tgz"
    bogus.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(PackageFetchError, match="not a readable npm tarball"):
        read_members(bogus, source)


def test_smoke_test_rejects_a_model_with_wrong_outputs(files, source):
    model = build_module.convert_nanodet(files[JSON_MEMBER], files[BIN_MEMBER], weights_dtype="float32", source=source)
    first = model.graph.output[0].name
    producer = next(n for n in model.graph.node if first in n.output)
    producer.output[list(producer.output).index(first)] = "renamed"
    model.graph.output[0].name = "renamed"  # a valid graph that breaks the contract
    with pytest.raises(ConversionError, match="cls_8 is missing"):
        build_module.smoke_test(model.SerializeToString())
    model.graph.output[0].name = "dangling"  # an invalid graph
    with pytest.raises(ConversionError, match="onnxruntime rejected"):
        build_module.smoke_test(model.SerializeToString())


def test_output_renames_by_shape():
    shapes = {
        "a": (1, 169, 80), "b": (1, 2704, 44), "c": (1, 676, 80),
        "d": (1, 2704, 80), "e": (1, 169, 44), "f": (1, 676, 44),
    }  # fmt: skip
    assert nanodet.output_renames(shapes) == [
        ("d", "cls_8"), ("b", "box_8"), ("c", "cls_16"), ("f", "box_16"), ("a", "cls_32"), ("e", "box_32")
    ]  # fmt: skip
    with pytest.raises(ConversionError, match="not found"):
        nanodet.output_renames({k: v for k, v in shapes.items() if k != "a"})
    with pytest.raises(ConversionError, match="two outputs"):
        nanodet.output_renames({**shapes, "g": (1, 169, 80)})
    with pytest.raises(ConversionError, match="no stride"):
        nanodet.output_renames({**shapes, "a": (1, 100, 80)})
    with pytest.raises(ConversionError, match="unexpected output shape"):
        nanodet.output_renames({**shapes, "a": (1, 169, 81)})


def _tiny_model(op: str, shape_const: list[int]) -> onnx.ModelProto:
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    if op != "Reshape":
        nodes.append(helper.make_node(op, ["y"], ["z"]))
    out = "z" if op != "Reshape" else "y"
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 16] if op == "Reshape" else None)],
        initializer=[numpy_helper.from_array(np.asarray(shape_const, np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_batch_axis_rewrites_reshape_targets_and_names_the_batch_dimension():
    model = _tiny_model("Reshape", [1, 16])
    make_batch_dynamic(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 4, 2, 2]
    x = np.arange(48, dtype=np.float32).reshape(3, 4, 2, 2)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x.reshape(3, 16))


def test_batch_axis_refuses_what_it_cannot_prove_per_sample():
    with pytest.raises(ConversionError, match="no rule for Softmax"):
        make_batch_dynamic(_tiny_model("Softmax", [1, 16]))
    with pytest.raises(ConversionError, match="is not \\[1, ...\\]"):
        make_batch_dynamic(_tiny_model("Reshape", [16, 1]))
