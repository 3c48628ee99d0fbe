"""`ccc attest verify`: exit status, JSON and human output, input encodings, argument errors."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ccc.cli import COMMAND_MODULES, attest_cmd
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from tests.unit.test_attestation_support import FIXTURES, VECTORS, Vector, vector

REAL = vector("mysten_nautilus_weather")
DEBUG = vector("dstack_attest_nitro_attestation_dbg")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ccc")
    attest_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    capsys.readouterr()  # drop earlier output
    status = run(*argv, "--json")
    return status, json.loads(capsys.readouterr().out)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_command_is_registered():
    assert "ccc.cli.attest_cmd" in COMMAND_MODULES


def test_valid_document_json(capsys):
    status, out = run_json(capsys, "attest", "verify", str(FIXTURES / f"{REAL.name}.cbor"), "--at-doc-time")
    assert status == 0
    assert out["valid"] is True
    assert out["module_id"] == REAL.meta["module_id"]
    assert out["timestamp"] == "2025-04-15T02:25:23.696+00:00"
    assert out["pcrs"]["0"] == REAL.meta["pcr0"] and len(out["pcrs"]) == 16
    assert out["public_key_sha256"] == hashlib.sha256(bytes.fromhex(REAL.meta["public_key_hex"])).hexdigest()
    assert out["user_data"] is None and out["nonce"] is None
    assert out["root_sha256"] == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"


def test_valid_document_human_output(capsys):
    assert run("attest", "verify", str(FIXTURES / f"{REAL.name}.cbor"), "--at-doc-time") == 0
    out = capsys.readouterr().out
    assert out.startswith("VALID")
    assert f"PCR0: {REAL.meta['pcr0']}" in out


def test_tampered_document_exits_1_with_reason(tmp_path, capsys):
    tampered = bytearray(REAL.data)
    tampered[-10] ^= 0x40
    status, out = run_json(capsys, "attest", "verify", _write(tmp_path, "t.cbor", bytes(tampered)), "--at-doc-time")
    assert status == 1
    assert out == {"valid": False, "reason": "COSE signature does not verify with the leaf certificate's key"}
    assert run("attest", "verify", _write(tmp_path, "t.cbor", bytes(tampered)), "--at-doc-time") == 1
    assert capsys.readouterr().out.startswith("INVALID attestation document: COSE signature")


def test_expired_document_is_invalid_now(capsys):
    status, out = run_json(capsys, "attest", "verify", str(FIXTURES / f"{REAL.name}.cbor"))
    assert status == 1 and "expired" in out["reason"]


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: d.hex().encode(),
        lambda d: d.hex().upper().encode() + b"\n",
        lambda d: b"0x" + d.hex().encode(),
        lambda d: base64.b64encode(d),
        lambda d: base64.encodebytes(d),  # wrapped at 76 columns
        lambda d: base64.urlsafe_b64encode(d).rstrip(b"="),
        lambda d: b"\xd2" + d,
    ],
    ids=["hex", "hex-upper", "hex-0x", "base64", "base64-wrapped", "base64url-unpadded", "tagged-raw"],
)
def test_encodings_are_detected(tmp_path, capsys, encode):
    status, out = run_json(capsys, "attest", "verify", _write(tmp_path, "doc", encode(REAL.data)), "--at-doc-time")
    assert status == 0, out
    assert out["module_id"] == REAL.meta["module_id"]


def test_garbage_text_is_invalid_not_a_crash(tmp_path, capsys):
    status, out = run_json(capsys, "attest", "verify", _write(tmp_path, "doc", b"hello world"), "--at-doc-time")
    assert status == 1 and out["valid"] is False


def test_debug_document_needs_allow_debug(capsys):
    path = str(FIXTURES / f"{DEBUG.name}.cbor")
    status, out = run_json(capsys, "attest", "verify", path, "--at-doc-time")
    assert status == 1 and "debug" in out["reason"]
    status, out = run_json(capsys, "attest", "verify", path, "--at-doc-time", "--allow-debug")
    assert status == 0 and out["debug"] is True


def test_policy_flags(capsys):
    path = str(FIXTURES / f"{REAL.name}.cbor")
    pcr0 = REAL.meta["pcr0"]
    assert run("attest", "verify", path, "--at-doc-time", "--pcr", f"0={pcr0}", "--pcr", f"1={pcr0}") == 0
    wrong = ("f" + pcr0[1:]) if pcr0[0] != "f" else ("0" + pcr0[1:])
    status, out = run_json(capsys, "attest", "verify", path, "--at-doc-time", "--pcr", f"0={wrong}")
    assert status == 1 and out["reason"] == "PCR0 does not match the expected measurement"
    status, out = run_json(capsys, "attest", "verify", path, "--at-doc-time", "--nonce", "00")
    assert status == 1 and "nonce" in out["reason"]
    status, out = run_json(capsys, "attest", "verify", path, "--at", "2025-04-15T02:30:00Z", "--max-age", "60")
    assert status == 1 and "maximum age" in out["reason"]
    assert run("attest", "verify", path, "--at", "2025-04-15T02:30:00", "--max-age", "600") == 0


@pytest.mark.parametrize("name", ["blocky_nitrite_nitro_attestation", "cape_js_cape_spec_key_attestation_document"])
def test_large_user_data_verifies_by_default_and_strict_applies_the_512_rule(capsys, name: str):
    path = str(FIXTURES / f"{name}.cbor")
    assert run("attest", "verify", path, "--at-doc-time") == 0
    status, out = run_json(capsys, "attest", "verify", path, "--at-doc-time", "--strict")
    assert status == 1 and "policy allows 512" in out["reason"]
    status, out = run_json(capsys, "attest", "verify", path, "--at-doc-time", "--max-field-bytes", "700")
    assert status == 1 and "policy allows 700" in out["reason"]


def test_strict_and_max_field_bytes_are_exclusive():
    with pytest.raises(SystemExit) as exit_info:
        run("attest", "verify", "doc", "--strict", "--max-field-bytes", "512")
    assert exit_info.value.code == 2


def test_local_root_and_simulated_document(tmp_path, capsys):
    now = datetime.now(UTC)
    ca = LocalNitroCA.create(tmp_path / "ca", now=now - timedelta(minutes=1))
    pcrs = {0: b"\x01" * 48, 1: b"\x02" * 48, 2: b"\x03" * 48}
    doc = SimulatedNsm(ca, pcrs).attest(user_data=b"\xab" * 32, nonce=b"\x01\x02")
    doc_path = _write(tmp_path, "doc.b64", base64.b64encode(doc))
    root_path = _write(tmp_path, "root.pem", ca.root_pem)
    status, out = run_json(capsys, "attest", "verify", doc_path, "--root", root_path, "--pcr", "0=" + "01" * 48,
                           "--user-data", "ab" * 32, "--nonce", "0102", "--max-age", "60")
    assert status == 0, out
    assert out["user_data"] == "ab" * 32 and out["nonce"] == "0102"
    assert out["root_sha256"] == hashlib.sha256(ca.root_der).hexdigest()
    status, out = run_json(capsys, "attest", "verify", doc_path)  # pinned AWS root
    assert status == 1 and "trusted root" in out["reason"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--pcr", "0=zz"],
        ["--pcr", "0=abcd"],
        ["--pcr", "x=" + "00" * 48],
        ["--pcr", "40=" + "00" * 48],
        ["--pcr", "1=" + "00" * 48, "--pcr", "1=" + "00" * 48],
        ["--nonce", "xyz"],
        ["--user-data", "0"],
        ["--at", "yesterday"],
        ["--max-age", "-1"],
        ["--max-field-bytes", "2048"],
        ["--root", "/nonexistent/root.pem"],
    ],
)
def test_bad_arguments_exit_2(capsys, extra):
    assert run("attest", "verify", str(FIXTURES / f"{REAL.name}.cbor"), *extra) == 2
    assert capsys.readouterr().err.startswith("ccc attest verify:")


def test_unreadable_or_huge_document_exits_2(tmp_path, capsys):
    assert run("attest", "verify", str(tmp_path / "missing.cbor")) == 2
    assert run("attest", "verify", _write(tmp_path, "big", b"a" * (64 * 1024 + 1))) == 2
    assert run("attest", "verify", _write(tmp_path, "root.pem", b"not a cert"), "--root",
               _write(tmp_path, "bad-root.pem", b"junk")) == 2


def test_at_and_at_doc_time_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run("attest", "verify", "doc", "--at", "2025-01-01T00:00:00Z", "--at-doc-time")
    assert exit_info.value.code == 2


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.name)
def test_every_real_document_is_accepted_at_its_time_and_refused_when_tampered(tmp_path, capsys, v: Vector):
    lenient = ("--at-doc-time", *(["--allow-debug"] if v.debug else []))  # otherwise the defaults
    assert run("attest", "verify", str(FIXTURES / f"{v.name}.cbor"), *lenient) == 0
    for position in (len(v.data) // 3, len(v.data) - 50):  # inside a certificate / the signature
        tampered = bytearray(v.data)
        tampered[position] ^= 0x01
        assert run("attest", "verify", _write(tmp_path, "t.cbor", bytes(tampered)), *lenient) == 1


def test_real_process_reading_stdin(tmp_path):
    import subprocess
    import sys

    completed = subprocess.run(
        [sys.executable, "-m", "ccc", "attest", "verify", "-", "--at-doc-time", "--json"],
        input=REAL.data.hex().encode(), capture_output=True, timeout=60, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["module_id"] == REAL.meta["module_id"]


def test_human_output_strips_escape_sequences_from_document_strings(tmp_path, capsys):
    """module_id is chosen by whoever made the document; printed raw, an ESC sequence in it could
    rewrite the terminal (e.g. clear the screen and draw another verdict)."""
    now = datetime.now(UTC)
    ca = LocalNitroCA.create(tmp_path / "ca", now=now - timedelta(minutes=1))
    hostile = "i-0\x1b[2J\x1b[HVALID\u202eevil"
    doc = SimulatedNsm(ca, {0: b"\x01" * 48}, module_id=hostile).attest()
    doc_path = _write(tmp_path, "doc.cbor", doc)
    root_path = _write(tmp_path, "root.pem", ca.root_pem)
    assert run("attest", "verify", doc_path, "--root", root_path) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "module_id: i-0VALIDevil" in out
    status, as_json = run_json(capsys, "attest", "verify", doc_path, "--root", root_path)
    assert status == 0 and as_json["module_id"] == hostile  # JSON escapes control characters itself
