"""Tampered, foreign and malformed documents are refused, always with AttestationError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccc.attestation import AttestationPolicy, verify_document
from ccc_core.attestation.document import parse_document
from ccc_core.attestation.errors import AttestationError
from ccc_enclave.nsm.simulated import LocalNitroCA
from tests.unit.test_attestation_support import (
    DELETE,
    VECTORS,
    Vector,
    craft_document,
    payload_for,
    sign_raw,
    vector,
)

LENIENT = AttestationPolicy(allow_debug=True)
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _verify_at_own_time(data: bytes, v: Vector) -> None:
    verify_document(data, at=v.timestamp, policy=LENIENT)


def _flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


def _offset_of(data: bytes, needle: bytes) -> int:
    offset = data.find(needle)
    assert offset >= 0
    return offset


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalNitroCA:
    return LocalNitroCA.create(tmp_path_factory.mktemp("ca") / "ca", now=NOW - timedelta(days=1))


# ----- deterministic tampering of a real document -------------------------------------------
REAL = vector("mysten_nautilus_weather")
REAL_PARTS = cbor2.loads(REAL.data)
REAL_PAYLOAD = parse_document(REAL.data)


def test_untouched_document_verifies():
    _verify_at_own_time(REAL.data, REAL)


@pytest.mark.parametrize("needle", [b"module_id", b"i-06e4b98c6549ff803", b"SHA384", b"timestamp", b"pcrs"])
def test_flipped_byte_in_payload_is_refused(needle: bytes):
    tampered = _flip(REAL.data, _offset_of(REAL.data, needle) + 2)
    with pytest.raises(AttestationError):
        _verify_at_own_time(tampered, REAL)


def test_flipped_pcr_byte_breaks_the_signature():
    position = _offset_of(REAL.data, REAL_PAYLOAD.pcrs[0]) + 10
    with pytest.raises(AttestationError, match="COSE signature does not verify"):
        _verify_at_own_time(_flip(REAL.data, position), REAL)


@pytest.mark.parametrize("index", [0, 47, 48, 95])
def test_flipped_signature_byte_is_refused(index: int):
    position = len(REAL.data) - 96 + index
    with pytest.raises(AttestationError, match="COSE signature does not verify"):
        _verify_at_own_time(_flip(REAL.data, position), REAL)


@pytest.mark.parametrize("which", ["root", "intermediate 1", "intermediate 2", "intermediate 3", "leaf"])
@pytest.mark.parametrize("where", [0.3, 0.6, 0.98])
def test_flipped_byte_in_each_certificate_is_refused(which: str, where: float):
    certs = {"root": REAL_PAYLOAD.cabundle[0], "leaf": REAL_PAYLOAD.certificate}
    certs.update({f"intermediate {i}": REAL_PAYLOAD.cabundle[i] for i in range(1, 4)})
    cert = certs[which]
    position = _offset_of(REAL.data, cert) + int(len(cert) * where)
    with pytest.raises(AttestationError):
        _verify_at_own_time(_flip(REAL.data, position), REAL)


def test_document_resigned_by_an_attacker_leaf_is_refused(tmp_path):
    # An attacker with their own CA cannot pass off a document under the AWS chain.
    attacker = LocalNitroCA.create(tmp_path / "attacker", now=REAL.timestamp - timedelta(days=1))
    forged = craft_document(attacker, REAL.timestamp, cabundle=list(REAL_PAYLOAD.cabundle))
    with pytest.raises(AttestationError, match="leaf certificate is not issued by"):
        verify_document(forged, at=REAL.timestamp)


def test_another_root_is_refused(local_ca: LocalNitroCA):
    with pytest.raises(AttestationError, match="not the trusted root"):
        verify_document(REAL.data, root_der=local_ca.root_der, at=REAL.timestamp)


def test_chain_with_an_intermediate_removed_is_refused(local_ca: LocalNitroCA):
    payload, key = payload_for(local_ca, NOW)
    payload["cabundle"] = payload["cabundle"][:1] + payload["cabundle"][2:]
    with pytest.raises(AttestationError, match="not issued by"):
        verify_document(sign_raw(cbor2.dumps(payload), key), root_der=local_ca.root_der, at=NOW)


def test_chain_in_wrong_order_is_refused(local_ca: LocalNitroCA):
    payload, key = payload_for(local_ca, NOW)
    payload["cabundle"] = [payload["cabundle"][0], *reversed(payload["cabundle"][1:])]
    with pytest.raises(AttestationError, match="not issued by"):
        verify_document(sign_raw(cbor2.dumps(payload), key), root_der=local_ca.root_der, at=NOW)


def test_leaf_that_is_a_ca_is_refused(local_ca: LocalNitroCA):
    # Use the last intermediate as "leaf": it is correctly issued, but it is a CA.
    # The chain is checked before the COSE signature, so any signing key shows the refusal.
    payload, key = payload_for(local_ca, NOW)
    payload["certificate"] = payload["cabundle"][-1]
    payload["cabundle"] = payload["cabundle"][:-1]
    data = sign_raw(cbor2.dumps(payload), key)
    with pytest.raises(AttestationError, match="leaf certificate is a CA"):
        verify_document(data, root_der=local_ca.root_der, at=NOW)



# ----- header, algorithm and field checks on crafted documents -------------------------------
def test_crafted_document_verifies_under_its_own_root(local_ca: LocalNitroCA):
    verify_document(craft_document(local_ca, NOW), root_der=local_ca.root_der, at=NOW)


@pytest.mark.parametrize("protected", [{1: -7}, {1: -36}, {1: "ES384"}, {}, {1: -35, 2: [1]}])
def test_wrong_or_extra_algorithm_header_is_refused(local_ca: LocalNitroCA, protected: dict):
    payload, key = payload_for(local_ca, NOW)
    data = sign_raw(cbor2.dumps(payload), key, protected=cbor2.dumps(protected))
    with pytest.raises(AttestationError, match="COSE (algorithm|protected header)"):
        verify_document(data, root_der=local_ca.root_der, at=NOW)


def test_signature_of_wrong_length_is_refused():
    parts = cbor2.loads(REAL.data)
    parts[3] = parts[3] + b"\x00"
    with pytest.raises(AttestationError, match="96"):
        parse_document(cbor2.dumps(parts))


def test_trailing_bytes_are_refused():
    with pytest.raises(AttestationError, match="trailing"):
        parse_document(REAL.data + b"\x00")


@pytest.mark.parametrize("field", ["user_data", "nonce"])
def test_fields_up_to_the_device_limit_verify_by_default_and_strict_keeps_the_512_rule(
        local_ca: LocalNitroCA, field: str):
    at_limit = craft_document(local_ca, NOW, **{field: b"x" * 1024})
    verify_document(at_limit, root_der=local_ca.root_der, at=NOW)
    data = craft_document(local_ca, NOW, **{field: b"x" * 513})
    with pytest.raises(AttestationError, match=f"{field} is 513 bytes, policy allows 512"):
        verify_document(data, root_der=local_ca.root_der, at=NOW, policy=AttestationPolicy().strict())
    verify_document(craft_document(local_ca, NOW, **{field: b"x" * 512}), root_der=local_ca.root_der, at=NOW,
                    policy=AttestationPolicy().strict())


@pytest.mark.parametrize("field", ["user_data", "nonce", "public_key"])
def test_field_over_the_device_limit_is_malformed(local_ca: LocalNitroCA, field: str):
    data = craft_document(local_ca, NOW, **{field: b"x" * 1025})
    with pytest.raises(AttestationError, match=f"{field} is 1025 bytes, limit 1024"):
        parse_document(data)


MIXED_KEY_PCRS: dict[object, bytes] = {**dict.fromkeys(range(16), bytes(48)), "5": bytes(48)}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"module_id": DELETE}, "lacks 'module_id'"),
        ({"module_id": ""}, "module_id"),
        ({"module_id": b"bytes"}, "module_id"),
        ({"digest": "SHA256"}, "digest"),
        ({"timestamp": -5}, "timestamp"),
        ({"timestamp": 1.5}, "timestamp"),
        ({"timestamp": 2**70}, "timestamp"),
        ({"timestamp": True}, "timestamp"),
        ({"pcrs": {}}, "pcrs"),
        ({"pcrs": {0: bytes(48), 1: bytes(48)}}, "lack"),
        ({"pcrs": {i: bytes(47) for i in range(16)}}, "48-byte"),
        ({"pcrs": {**{i: bytes(48) for i in range(16)}, 32: bytes(48)}}, "index"),
        ({"pcrs": MIXED_KEY_PCRS}, "index"),
        ({"pcrs": [bytes(48)] * 16}, "pcrs"),
        ({"certificate": DELETE}, "certificate"),
        ({"certificate": b""}, "certificate"),
        ({"cabundle": []}, "cabundle"),
        ({"cabundle": [b"x"] * 9}, "cabundle"),
        ({"cabundle": ["text"]}, "cabundle"),
        ({"public_key": "text"}, "public_key"),
        ({"user_data": 5}, "user_data"),
        ({"nonce": [b"x"]}, "nonce"),
        ({"certificate": b"not a certificate"}, "leaf certificate is not valid DER"),
    ],
)
def test_malformed_fields_are_refused_with_a_reason(local_ca: LocalNitroCA, overrides: dict, reason: str):
    data = craft_document(local_ca, NOW, **overrides)
    with pytest.raises(AttestationError, match=reason):
        verify_document(data, root_der=local_ca.root_der, at=NOW)


def test_duplicate_payload_keys_are_refused(local_ca: LocalNitroCA):
    payload, key = payload_for(local_ca, NOW)
    encoded = cbor2.dumps(payload)
    # Append a second "nonce" entry by hand: map header 0xa9 (9 entries) -> 0xaa (10).
    assert encoded[0] == 0xA9
    duplicated = b"\xaa" + encoded[1:] + cbor2.dumps("nonce") + cbor2.dumps(b"evil")
    with pytest.raises(AttestationError, match="not valid CBOR"):
        parse_document(sign_raw(duplicated, key))


def test_oversize_document_is_refused_before_decoding():
    with pytest.raises(AttestationError, match="limit 16384"):
        parse_document(REAL.data + bytes(16 * 1024))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x84", b"\xa0", b"\x84\x40\xa0\x40\x40", "text"])
def test_junk_is_refused(data):
    with pytest.raises(AttestationError):
        verify_document(data)


# ----- properties ----------------------------------------------------------------------------
FLIP_SAMPLES = [vector("mysten_nautilus_weather"), vector("dstack_attest_nitro_attestation"),
                vector("blocky_nitrite_nitro_attestation_debug"), vector("brave_core_cose_unittest")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_byte_change_anywhere_never_verifies(data: st.DataObject):
    v = data.draw(st.sampled_from(FLIP_SAMPLES))
    position = data.draw(st.integers(0, len(v.data) - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(AttestationError):
        _verify_at_own_time(_flip(v.data, position, mask), v)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_attestation_error(data: bytes):
    with pytest.raises(AttestationError):
        verify_document(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_truncated_or_spliced_real_documents_raise_only_attestation_error(data: st.DataObject):
    v = data.draw(st.sampled_from(VECTORS))
    start = data.draw(st.integers(0, len(v.data)))
    end = data.draw(st.integers(start, len(v.data)))
    insert = data.draw(st.binary(max_size=16))
    mutated = v.data[:start] + insert + v.data[end:]
    if mutated == v.data:
        return
    with pytest.raises(AttestationError):
        _verify_at_own_time(mutated, v)


_cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.binary(max_size=64) | st.text(max_size=16)
    | st.floats(allow_nan=True),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10) | st.integers(0, 40),
                                                                      children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    protected=st.binary(max_size=8) | st.just(b"\xa1\x01\x38\x22"),
    unprotected=_cbor_values,
    payload=_cbor_values,
    signature=st.binary(min_size=96, max_size=96) | st.binary(max_size=100),
)
def test_structured_junk_raises_only_attestation_error(protected, unprotected, payload, signature):
    payload_bytes = cbor2.dumps(payload)
    with pytest.raises(AttestationError):
        verify_document(cbor2.dumps([protected, unprotected, payload_bytes, signature]))


@settings(max_examples=150, deadline=None)
@given(overrides=st.dictionaries(
    st.sampled_from(["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle",
                     "public_key", "user_data", "nonce"]),
    _cbor_values, min_size=1, max_size=3))
def test_payloads_with_random_field_values_raise_only_attestation_error(local_ca: LocalNitroCA, overrides):
    data = craft_document(local_ca, NOW, **overrides)
    try:
        document = verify_document(data, root_der=local_ca.root_der, at=NOW, policy=LENIENT)
    except AttestationError:
        return
    # Accepted only when every replaced value is well-typed, and then reported unchanged.
    attribute = {"timestamp": "timestamp_ms"}
    for name, value in overrides.items():
        assert name in {"module_id", "digest", "timestamp", "public_key", "user_data", "nonce"}
        reported = getattr(document, attribute.get(name, name))
        assert reported == value and type(reported) is type(value)
