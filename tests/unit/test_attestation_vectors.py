"""Real AWS-signed attestation documents: every one verifies at its own time, and only then."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import cbor2
import pytest
from cryptography import x509

from ccc.attestation import AWS_NITRO_ROOT_G1_SHA256, AttestationPolicy, aws_nitro_root_der, verify_document
from ccc_core.attestation.document import parse_document
from ccc_core.attestation.errors import AttestationError
from tests.unit.test_attestation_support import FIXTURES, VECTORS, Vector, vector


def _policy_for(v: Vector) -> AttestationPolicy:
    """The default limits (the device's 1024 bytes); only debug mode needs saying."""
    return AttestationPolicy(allow_debug=v.debug)


def test_there_are_real_vectors_of_each_kind():
    assert len(VECTORS) == 26
    assert any(v.debug for v in VECTORS) and any(not v.debug for v in VECTORS)
    assert any(v.meta["payload_map_indefinite_length"] for v in VECTORS)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.name)
def test_every_real_document_verifies_at_its_own_timestamp(v: Vector):
    document = verify_document(v.data, at=v.timestamp, policy=_policy_for(v))
    assert document.module_id == v.meta["module_id"]
    assert document.timestamp_ms == v.meta["timestamp_ms"]
    assert document.timestamp == v.timestamp
    assert document.digest == "SHA384"
    assert len(document.pcrs) == v.meta["pcr_count"]
    assert document.pcrs[0].hex() == v.meta["pcr0"]
    assert document.is_debug == v.debug
    assert len(document.cabundle) == v.meta["cabundle_len"]
    assert document.cabundle[0] == aws_nitro_root_der()
    for field in ("public_key", "user_data", "nonce"):
        value = getattr(document, field)
        if v.meta[f"{field}_present"]:
            assert value is not None and len(value) == v.meta[f"{field}_len"]
        else:
            assert value is None


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v.name)
def test_real_documents_are_refused_today(v: Vector):
    # Leaf certificates live ~3 hours; every vector is long expired.
    with pytest.raises(AttestationError, match="expired"):
        verify_document(v.data, policy=_policy_for(v))


@pytest.mark.parametrize("v", [v for v in VECTORS if v.debug], ids=lambda v: v.name)
def test_debug_documents_need_allow_debug(v: Vector):
    with pytest.raises(AttestationError, match="debug-mode"):
        verify_document(v.data, at=v.timestamp)


def test_debug_detection_looks_at_pcr0_1_2_only():
    v = vector("dstack_attest_nitro_attestation_dbg")
    document = parse_document(v.data)
    assert document.pcrs[4] != bytes(48)  # PCR4 is set even in debug mode
    assert document.is_debug


def test_tagged_cose_is_accepted_too():
    v = vector("mysten_nautilus_weather")
    tagged = b"\xd2" + v.data
    assert verify_document(tagged, at=v.timestamp) == verify_document(v.data, at=v.timestamp)


def test_other_tags_are_refused():
    v = vector("mysten_nautilus_weather")
    with pytest.raises(AttestationError, match="tag"):
        parse_document(b"\xd1" + v.data)


@pytest.mark.parametrize(
    "v", [v for v in VECTORS if v.meta["payload_map_indefinite_length"]], ids=lambda v: v.name
)
def test_indefinite_length_payloads_verify_over_original_bytes(v: Vector):
    payload = cbor2.loads(v.data)[2]
    assert payload[0] == 0xBF  # indefinite-length map: a re-encoding would differ
    assert cbor2.dumps(cbor2.loads(payload)) != payload
    verify_document(v.data, at=v.timestamp, policy=_policy_for(v))


def test_seventeen_pcr_document():
    v = vector("marlin_oyster_risczero_aws_pcr16")
    document = verify_document(v.data, at=v.timestamp)
    assert sorted(document.pcrs) == list(range(17))


def test_empty_public_key_is_not_null():
    v = vector("brave_core_cose_unittest")
    document = verify_document(v.data, at=v.timestamp, policy=AttestationPolicy(allow_debug=True))
    assert document.public_key == b""
    assert parse_document(vector("mysten_nautilus_weather").data).user_data is None


def test_empty_user_data_is_not_null():
    v = vector("marlin_oyster_risczero_aws_pcr16")
    assert parse_document(v.data).user_data == b""


LARGE_USER_DATA = sorted(v.name for v in VECTORS if (v.meta["user_data_len"] or 0) > 512)


def test_three_genuine_documents_carry_user_data_beyond_512_bytes():
    assert len(LARGE_USER_DATA) == 3
    assert sorted({vector(name).meta["user_data_len"] for name in LARGE_USER_DATA}) == [746, 1024]


@pytest.mark.parametrize("name", LARGE_USER_DATA)
def test_user_data_beyond_512_bytes_verifies_by_default_and_only_strict_refuses_it(name: str):
    v = vector(name)
    verify_document(v.data, at=v.timestamp, policy=_policy_for(v))  # the device's limit: what NSMs produce
    with pytest.raises(AttestationError, match="policy allows 512"):
        verify_document(v.data, at=v.timestamp, policy=_policy_for(v).strict())


def test_time_outside_the_leaf_validity_is_refused():
    v = vector("mysten_nautilus_weather")
    leaf = x509.load_der_x509_certificate(parse_document(v.data).certificate)
    verify_document(v.data, at=leaf.not_valid_before_utc)
    verify_document(v.data, at=leaf.not_valid_after_utc)
    with pytest.raises(AttestationError, match="leaf certificate is not yet valid"):
        verify_document(v.data, at=leaf.not_valid_before_utc - timedelta(seconds=1))
    with pytest.raises(AttestationError, match="leaf certificate expired"):
        verify_document(v.data, at=leaf.not_valid_after_utc + timedelta(seconds=1))


def test_naive_verification_time_is_refused():
    v = vector("mysten_nautilus_weather")
    with pytest.raises(AttestationError, match="timezone"):
        verify_document(v.data, at=v.timestamp.replace(tzinfo=None))


def test_pinned_root_is_the_published_aws_root():
    der = aws_nitro_root_der()
    assert hashlib.sha256(der).hexdigest() == AWS_NITRO_ROOT_G1_SHA256
    assert der == x509.load_pem_x509_certificate((FIXTURES / "aws_nitro_root_g1.pem").read_bytes()).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER
    )
    root = x509.load_der_x509_certificate(der)
    assert root.subject.rfc4514_string() == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"


def test_explicit_root_equal_to_the_pinned_one_works():
    v = vector("anjuna_attestdoc_sample_prod_doc")
    verify_document(v.data, root_der=aws_nitro_root_der(), at=v.timestamp)


def test_expected_pcrs_of_a_real_document():
    v = vector("mysten_nautilus_weather")
    document = parse_document(v.data)
    good = AttestationPolicy(expected_pcrs={0: document.pcrs[0], 1: document.pcrs[1], 2: document.pcrs[2]})
    verify_document(v.data, at=v.timestamp, policy=good)
    wrong = bytes([document.pcrs[0][0] ^ 1]) + document.pcrs[0][1:]
    with pytest.raises(AttestationError, match="PCR0 does not match"):
        verify_document(v.data, at=v.timestamp, policy=AttestationPolicy(expected_pcrs={0: wrong}))
    with pytest.raises(AttestationError, match="no PCR20"):
        verify_document(v.data, at=v.timestamp, policy=AttestationPolicy(expected_pcrs={20: wrong}))


def test_max_age_is_relative_to_verification_time():
    v = vector("mysten_nautilus_weather")
    policy = AttestationPolicy(max_age=timedelta(minutes=5))
    verify_document(v.data, at=v.timestamp + timedelta(minutes=4), policy=policy)
    with pytest.raises(AttestationError, match="maximum age"):
        verify_document(v.data, at=v.timestamp + timedelta(minutes=6), policy=policy)
