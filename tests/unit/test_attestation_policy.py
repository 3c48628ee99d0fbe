"""AttestationPolicy: what an authentic document must also satisfy, on simulated documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.attestation import AttestationPolicy, verify_document
from ccc_core.attestation.errors import AttestationError
from ccc_enclave.nsm.simulated import LocalNitroCA, SimulatedNsm
from tests.unit.test_attestation_support import craft_document

NOW = datetime(2031, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
PCRS = {0: b"\x10" * 48, 1: b"\x11" * 48, 2: b"\x12" * 48, 3: b"\x13" * 48}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalNitroCA:
    return LocalNitroCA.create(tmp_path_factory.mktemp("policy") / "ca", now=NOW - timedelta(days=2))


@pytest.fixture(scope="module")
def nsm(ca: LocalNitroCA) -> SimulatedNsm:
    return SimulatedNsm(ca, PCRS, clock=lambda: NOW)


def _verify(ca: LocalNitroCA, data: bytes, **policy) -> None:
    verify_document(data, root_der=ca.root_der, at=NOW, policy=AttestationPolicy(**policy))


def test_matching_policy_accepts(ca, nsm):
    doc = nsm.attest(public_key=b"pk", user_data=b"ud", nonce=b"nn")
    _verify(ca, doc, expected_pcrs=PCRS, nonce=b"nn", user_data=b"ud", max_age=timedelta(seconds=1))


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_each_pinned_pcr_must_match(ca, nsm, index):
    wrong = dict(PCRS)
    wrong[index] = b"\xee" * 48
    with pytest.raises(AttestationError, match=f"PCR{index} does not match"):
        _verify(ca, nsm.attest(), expected_pcrs=wrong)


def test_unpinned_pcrs_are_not_checked(ca, nsm):
    _verify(ca, nsm.attest(), expected_pcrs={0: PCRS[0]})


@pytest.mark.parametrize("field", ["nonce", "user_data"])
def test_binding_must_match_and_be_present(ca, nsm, field):
    with pytest.raises(AttestationError, match=f"{field} does not match"):
        _verify(ca, nsm.attest(**{field: b"actual"}), **{field: b"expected"})
    with pytest.raises(AttestationError, match=f"carries no {field}"):
        _verify(ca, nsm.attest(), **{field: b"expected"})


def test_empty_binding_differs_from_none(ca, nsm):
    _verify(ca, nsm.attest(user_data=b""), user_data=b"")
    with pytest.raises(AttestationError, match="carries no user_data"):
        _verify(ca, nsm.attest(user_data=None), user_data=b"")


def test_max_age_and_future_documents(ca):
    stamped_at = NOW - timedelta(minutes=10)
    old = SimulatedNsm(ca, PCRS, clock=lambda: stamped_at).attest()
    _verify(ca, old, max_age=timedelta(minutes=11))
    with pytest.raises(AttestationError, match="maximum age"):
        _verify(ca, old, max_age=timedelta(minutes=9))
    # A timestamp ahead of the verifier's clock by more than the skew (leaf itself valid now).
    stamp = int((NOW + timedelta(minutes=5)).timestamp() * 1000)
    future = craft_document(ca, NOW, timestamp=stamp)
    with pytest.raises(AttestationError, match="in the future"):
        _verify(ca, future, max_age=timedelta(hours=1))
    slightly_ahead = craft_document(ca, NOW, timestamp=int((NOW + timedelta(seconds=30)).timestamp() * 1000))
    _verify(ca, slightly_ahead, max_age=timedelta(hours=1))


def test_debug_documents_are_refused_unless_allowed(ca):
    debug = SimulatedNsm(ca, {3: b"\x13" * 48, 4: b"\x14" * 48}, clock=lambda: NOW).attest()
    with pytest.raises(AttestationError, match="debug-mode"):
        _verify(ca, debug)
    _verify(ca, debug, allow_debug=True)


def test_one_nonzero_debug_register_is_not_debug(ca):
    _verify(ca, SimulatedNsm(ca, {2: b"\x01" * 48}, clock=lambda: NOW).attest())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"expected_pcrs": {0: b"short"}},
        {"expected_pcrs": {32: bytes(48)}},
        {"expected_pcrs": {-1: bytes(48)}},
        {"expected_pcrs": {"0": bytes(48)}},
        {"max_age": timedelta(0)},
        {"max_user_data": 1025},
        {"max_nonce": -1},
    ],
)
def test_invalid_policies_are_refused_at_construction(kwargs):
    with pytest.raises(ValueError):
        AttestationPolicy(**kwargs)


def test_policy_is_immutable():
    source = {0: bytes(48)}
    policy = AttestationPolicy(expected_pcrs=source)
    source[1] = bytes(48)
    assert dict(policy.expected_pcrs) == {0: bytes(48)}
    with pytest.raises(TypeError):
        policy.expected_pcrs[2] = bytes(48)  # type: ignore[index]


@settings(max_examples=60, deadline=None)
@given(
    pinned=st.dictionaries(st.sampled_from(sorted(PCRS)), st.binary(min_size=48, max_size=48), max_size=4),
    nonce=st.none() | st.binary(max_size=40),
    expected_nonce=st.none() | st.binary(max_size=40),
)
def test_policy_accepts_exactly_when_every_requirement_holds(ca, nsm, pinned, nonce, expected_nonce):
    doc = nsm.attest(nonce=nonce)
    should_pass = all(PCRS[i] == v for i, v in pinned.items()) and (
        expected_nonce is None or nonce == expected_nonce
    )
    try:
        _verify(ca, doc, expected_pcrs=pinned, nonce=expected_nonce)
        passed = True
    except AttestationError:
        passed = False
    assert passed == should_pass
