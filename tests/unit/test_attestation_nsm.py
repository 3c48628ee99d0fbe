"""The simulated NSM, its local CA, the enclave measurement, and the /dev/nsm request codec."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509

from ccc.attestation import AttestationPolicy, verify_document
from ccc_core.attestation.document import parse_document
from ccc_core.attestation.errors import AttestationError
from ccc_enclave.nsm.device import (
    NSM_IOCTL_REQUEST,
    DeviceNsm,
    NsmDeviceError,
    decode_attestation_response,
    encode_attestation_request,
)
from ccc_enclave.nsm.simulated import LocalCAError, LocalNitroCA, Nsm, SimulatedNsm, measure_enclave, pcr_extend

NOW = datetime(2032, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("nsm") / "ca"
    LocalNitroCA.create(directory, now=NOW - timedelta(hours=1))
    return directory


@pytest.fixture(scope="module")
def ca(ca_dir: Path) -> LocalNitroCA:
    return LocalNitroCA.load(ca_dir)


@pytest.fixture()
def enclave_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    worker = tmp_path / "enclave_worker"
    (worker / "enclave").mkdir(parents=True)
    (worker / "__init__.py").write_text("")
    (worker / "enclave" / "server.py").write_text("def serve():\n    return 1\n")
    (worker / "enclave" / "README.txt").write_text("not code")
    library = tmp_path / "ccc"
    library.mkdir()
    (library / "__init__.py").write_text("VERSION = 1\n")
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07" * 1000)
    return worker, library, model


# ----- SimulatedNsm -------------------------------------------------------------------------
def test_simulated_documents_verify_under_the_local_root_only(ca: LocalNitroCA):
    pcrs = {0: b"\x01" * 48, 1: b"\x02" * 48, 2: b"\x03" * 48}
    nsm = SimulatedNsm(ca, pcrs, clock=lambda: NOW)
    assert isinstance(nsm, Nsm)
    data = nsm.attest(public_key=b"spki", user_data=b"digest", nonce=b"n0")
    document = verify_document(data, root_der=ca.root_der, at=NOW, policy=AttestationPolicy(expected_pcrs=pcrs))
    assert (document.public_key, document.user_data, document.nonce) == (b"spki", b"digest", b"n0")
    with pytest.raises(AttestationError, match="not the trusted root"):
        verify_document(data, at=NOW)  # the pinned AWS root


def test_simulated_documents_have_the_real_format(ca: LocalNitroCA):
    data = SimulatedNsm(ca, {0: b"\x01" * 48}, module_id="i-abc-enc1", clock=lambda: NOW).attest()
    parts = cbor2.loads(data)
    assert data[0] == 0x84  # untagged COSE_Sign1, like /dev/nsm
    assert parts[0] == b"\xa1\x01\x38\x22" and parts[1] == {} and len(parts[3]) == 96
    payload = cbor2.loads(parts[2])
    assert list(payload) == ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle",
                             "public_key", "user_data", "nonce"]
    document = parse_document(data)
    assert document.module_id == "i-abc-enc1" and document.digest == "SHA384"
    assert document.timestamp_ms == 1959393906789 and document.timestamp == NOW  # 2032-02-03T04:05:06.789Z
    assert sorted(document.pcrs) == list(range(16))
    assert document.pcrs[5] == bytes(48)
    assert document.public_key is None and document.user_data is None and document.nonce is None
    assert len(document.cabundle) == 4 and document.cabundle == ca.cabundle


def test_a_short_lived_leaf_without_aki_signs_the_documents_of_an_hour_like_dev_nsm(ca: LocalNitroCA):
    # Real documents five minutes apart share their leaf (vectors/attestation/marlin_oyster_verifier_*).
    moments = iter([NOW, NOW + timedelta(minutes=5), NOW + timedelta(minutes=59), NOW + timedelta(minutes=61),
                    NOW - timedelta(minutes=1)])  # fmt: skip
    nsm = SimulatedNsm(ca, {}, clock=lambda: next(moments))
    first, second, third = (parse_document(nsm.attest(user_data=bytes([i]))) for i in range(3))
    assert first.certificate == second.certificate == third.certificate
    assert (first.user_data, third.user_data) == (b"\x00", b"\x02")  # each document signed on its own
    assert first.timestamp == NOW and third.timestamp == NOW + timedelta(minutes=59)
    fourth = parse_document(nsm.attest())  # past the hour: a new leaf, valid at the document's time
    assert fourth.certificate != first.certificate
    assert x509.load_der_x509_certificate(fourth.certificate).not_valid_before_utc <= fourth.timestamp
    earlier = parse_document(nsm.attest())  # a clock that went back: never a leaf from the future
    assert x509.load_der_x509_certificate(earlier.certificate).not_valid_before_utc <= earlier.timestamp
    leaf = x509.load_der_x509_certificate(first.certificate)
    assert leaf.not_valid_before_utc <= NOW
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=3)
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    data = SimulatedNsm(ca, {}, clock=lambda: NOW).attest()
    verify_document(data, root_der=ca.root_der, at=NOW + timedelta(hours=2, minutes=59), policy=AttestationPolicy(
        allow_debug=True))
    with pytest.raises(AttestationError, match="leaf certificate expired"):
        verify_document(data, root_der=ca.root_der, at=NOW + timedelta(hours=3, seconds=1),
                        policy=AttestationPolicy(allow_debug=True))


def test_nsm_refuses_fields_beyond_the_device_limit(ca: LocalNitroCA):
    nsm = SimulatedNsm(ca, {}, clock=lambda: NOW)
    nsm.attest(user_data=b"x" * 1024)
    for field in ("public_key", "user_data", "nonce"):
        with pytest.raises(AttestationError, match="at most 1024"):
            nsm.attest(**{field: b"x" * 1025})


@pytest.mark.parametrize("pcrs", [{0: b"short"}, {32: bytes(48)}, {"0": bytes(48)}])
def test_simulated_nsm_refuses_bad_pcrs(ca: LocalNitroCA, pcrs):
    with pytest.raises(ValueError):
        SimulatedNsm(ca, pcrs)


# ----- LocalNitroCA -------------------------------------------------------------------------
def test_ca_is_shaped_like_aws(ca: LocalNitroCA):
    certs = [x509.load_der_x509_certificate(der) for der in ca.cabundle]
    assert certs[0].subject == certs[0].issuer
    assert [c.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length for c in certs] == [
        None, 2, 1, 0]
    for child, parent in zip(certs[1:], certs[:-1], strict=True):
        child.verify_directly_issued_by(parent)
    assert ca.root_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert x509.load_pem_x509_certificate(ca.root_pem).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.DER) == ca.root_der


def test_ca_files_are_private(ca_dir: Path):
    assert (ca_dir.stat().st_mode & 0o777) == 0o700
    keys = sorted(ca_dir.glob("*.key"))
    assert len(keys) == 4
    assert all((key.stat().st_mode & 0o777) == 0o600 for key in keys)


def test_load_round_trips_and_refuses_readable_keys(tmp_path: Path):
    created = LocalNitroCA.create(tmp_path / "ca")
    assert LocalNitroCA.load(tmp_path / "ca").cabundle == created.cabundle
    os.chmod(tmp_path / "ca" / "intermediate-2.key", 0o644)
    with pytest.raises(LocalCAError, match="chmod 600"):
        LocalNitroCA.load(tmp_path / "ca")


def test_create_refuses_to_overwrite_and_load_refuses_empty(tmp_path: Path):
    LocalNitroCA.create(tmp_path / "ca")
    with pytest.raises(LocalCAError, match="already holds"):
        LocalNitroCA.create(tmp_path / "ca")
    with pytest.raises(LocalCAError, match="holds no local CA"):
        LocalNitroCA.load(tmp_path / "empty")


def test_load_detects_swapped_keys(tmp_path: Path):
    LocalNitroCA.create(tmp_path / "ca")
    first, second = tmp_path / "ca" / "intermediate-1.key", tmp_path / "ca" / "intermediate-2.key"
    first_bytes = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(first_bytes)
    with pytest.raises(LocalCAError, match="does not belong"):
        LocalNitroCA.load(tmp_path / "ca")


def test_expired_ca_cannot_issue(ca: LocalNitroCA):
    with pytest.raises(LocalCAError, match="recreate"):
        SimulatedNsm(ca, {}, clock=lambda: NOW + timedelta(days=400)).attest()


# ----- measure_enclave ----------------------------------------------------------------------
def test_measurement_is_deterministic_and_shaped_like_pcrs(enclave_tree):
    worker, library, model = enclave_tree
    first = measure_enclave([worker, library], model)
    assert first == measure_enclave([library, worker], model)  # root order does not matter
    assert sorted(first) == [0, 1, 2] and all(len(v) == 48 for v in first.values())
    assert len(set(first.values())) == 3


def test_one_byte_of_code_changes_pcr0_and_pcr2_only(enclave_tree):
    worker, library, model = enclave_tree
    before = measure_enclave([worker, library], model)
    server = worker / "enclave" / "server.py"
    server.write_bytes(server.read_bytes().replace(b"return 1", b"return 2"))
    after = measure_enclave([worker, library], model)
    assert after[0] != before[0] and after[2] != before[2] and after[1] == before[1]


def test_model_changes_pcr0_only(enclave_tree):
    worker, library, model = enclave_tree
    before = measure_enclave([worker, library], model)
    model.write_bytes(model.read_bytes()[:-1] + b"\x00")
    after = measure_enclave([worker, library], model)
    assert after[0] != before[0]
    assert (after[1], after[2]) == (before[1], before[2])
    assert measure_enclave([worker, library], None)[0] not in (before[0], after[0])


def test_renaming_or_adding_a_file_changes_pcr0(enclave_tree):
    worker, library, model = enclave_tree
    before = measure_enclave([worker, library], model)[0]
    (worker / "enclave" / "server.py").rename(worker / "enclave" / "serve.py")
    renamed = measure_enclave([worker, library], model)[0]
    (library / "extra.py").write_text("")
    added = measure_enclave([worker, library], model)[0]
    assert len({before, renamed, added}) == 3


def test_non_python_files_and_caches_are_not_measured(enclave_tree):
    worker, library, model = enclave_tree
    before = measure_enclave([worker, library], model)
    (worker / "enclave" / "README.txt").write_text("changed")
    (worker / "__pycache__").mkdir()
    (worker / "__pycache__" / "x.py").write_text("cache")
    assert measure_enclave([worker, library], model) == before


def test_measurement_matches_the_documented_recipe(enclave_tree):
    import hashlib

    worker, _library, model = enclave_tree
    files = [("enclave_worker/__init__.py", b""), ("enclave_worker/enclave/server.py",
                                                    (worker / "enclave" / "server.py").read_bytes())]
    code = hashlib.sha384(b"ccc.enclave.code.v1\x00")
    for name, content in files:
        code.update(len(name).to_bytes(4, "big") + name.encode() + len(content).to_bytes(8, "big") + content)
    model_bytes = model.read_bytes()
    model_digest = hashlib.sha384(b"ccc.enclave.model.v1\x00" + len(model_bytes).to_bytes(8, "big") + model_bytes)
    pins = b"numpy==2.4.6\n"
    pins_path = worker.parent / "requirements.txt"
    pins_path.write_bytes(pins)
    pins_digest = hashlib.sha384(b"ccc.enclave.pins.v1\x00" + len(pins).to_bytes(8, "big") + pins).digest()
    image = hashlib.sha384(b"ccc.enclave.image.v1\x00" + code.digest() + pins_digest + model_digest.digest()).digest()
    runtime = f"{platform.python_implementation()} {platform.python_version()} ccc-enclave-bootstrap/1".encode()
    expected = {
        0: hashlib.sha384(bytes(48) + image).digest(),
        1: hashlib.sha384(bytes(48) + hashlib.sha384(b"ccc.enclave.bootstrap.v1\x00" + runtime).digest()).digest(),
        2: hashlib.sha384(bytes(48) + hashlib.sha384(b"ccc.enclave.application.v1\x00" + code.digest() + pins_digest)
                          .digest()).digest(),
    }
    assert measure_enclave(worker, model, pins_path=pins_path) == expected
    assert pcr_extend(bytes(48), image) == expected[0]


@pytest.mark.parametrize("problem", ["missing", "empty", "duplicate", "no-roots"])
def test_measurement_refuses_bad_roots(tmp_path: Path, problem: str):
    (tmp_path / "a" / "pkg").mkdir(parents=True)
    (tmp_path / "b" / "pkg").mkdir(parents=True)
    (tmp_path / "a" / "pkg" / "m.py").write_text("")
    (tmp_path / "b" / "pkg" / "m.py").write_text("")
    (tmp_path / "empty").mkdir()
    roots = {
        "missing": [tmp_path / "nope"],
        "empty": [tmp_path / "empty"],
        "duplicate": [tmp_path / "a" / "pkg", tmp_path / "b" / "pkg"],
        "no-roots": [],
    }[problem]
    with pytest.raises(ValueError):
        measure_enclave(roots, None)


def test_measuring_the_real_enclave_code(repo_root: Path):
    dist = repo_root / "enclave_worker" / "enclave"
    pcrs = measure_enclave([dist / "ccc_core", dist / "ccc_enclave"], None, pins_path=dist / "requirements.txt")
    assert pcrs[0] != bytes(48)


def test_a_changed_dependency_pin_changes_pcr0_and_pcr2_only(enclave_tree, tmp_path: Path):
    worker, library, model = enclave_tree
    pins = tmp_path / "requirements.txt"
    pins.write_text("numpy==2.4.6\n")
    before = measure_enclave([worker, library], model, pins_path=pins)
    pins.write_text("numpy==2.4.7\n")
    after = measure_enclave([worker, library], model, pins_path=pins)
    assert after[0] != before[0] and after[2] != before[2] and after[1] == before[1]
    with pytest.raises(ValueError, match="not a file"):
        measure_enclave([worker, library], model, pins_path=tmp_path / "missing.txt")


# ----- DeviceNsm (no device here: only the codec and the failure path) -----------------------
def test_ioctl_number_is_iowr_0x0a_0_of_a_32_byte_message():
    assert NSM_IOCTL_REQUEST == 0xC0200A00


def test_attestation_request_encoding():
    request = cbor2.loads(encode_attestation_request(b"pk", None, b"n"))
    assert request == {"Attestation": {"user_data": None, "nonce": b"n", "public_key": b"pk"}}
    with pytest.raises(AttestationError):
        encode_attestation_request(None, b"x" * 1025, None)


def test_attestation_response_decoding():
    assert decode_attestation_response(cbor2.dumps({"Attestation": {"document": b"\x84doc"}})) == b"\x84doc"
    with pytest.raises(NsmDeviceError, match="InvalidArgument"):
        decode_attestation_response(cbor2.dumps({"Error": "InvalidArgument"}))
    for junk in (b"\xff", cbor2.dumps({"Attestation": {}}), cbor2.dumps([1])):
        with pytest.raises(NsmDeviceError):
            decode_attestation_response(junk)


def test_device_nsm_without_a_device_fails_clearly(tmp_path: Path):
    with pytest.raises(NsmDeviceError, match="not inside a Nitro enclave"):
        DeviceNsm(str(tmp_path / "nsm")).attest(nonce=b"n")
