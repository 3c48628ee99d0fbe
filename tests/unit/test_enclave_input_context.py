"""Strict input encryption contexts (issue 11 §6): the enclave accepts exactly {ccc:job, ccc:tenant}
plus the ESDK's own `aws-crypto-public-key`; any other key, any case variant, is context_mismatch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_enclave.pipeline import check_input_context
from ccc_enclave.ports import JobError
from ccc_enclave.protocol.errors import ErrorCode
from ccc_enclave.protocol.job_messages import JobSpec

JOB = JobSpec(job_id="0123456789abcdef0123456789abcdef", tenant="tenant-a")
EXACT = {"ccc:job": JOB.job_id, "ccc:tenant": JOB.tenant}
PUBLIC_KEY = "aws-crypto-public-key"
ALLOWED = {"ccc:job", "ccc:tenant", PUBLIC_KEY}


def _case_variants(key: str) -> st.SearchStrategy[str]:
    """Every spelling of `key` that differs from it only in letter case (never `key` itself)."""
    return st.lists(st.booleans(), min_size=len(key), max_size=len(key)).map(
        lambda flips: "".join(c.swapcase() if flip else c for c, flip in zip(key, flips, strict=True))
    ).filter(lambda variant: variant != key)


extra_keys = st.one_of(
    _case_variants("ccc:job"),
    _case_variants("ccc:tenant"),
    _case_variants("ccc:kind"),
    _case_variants(PUBLIC_KEY),
    st.sampled_from(["ccc:kind", "ccc:x", "ccc:job ", " ccc:tenant", "ccc:tenant\x00", "mine", "aws:kms", ""]),
    st.text(max_size=20).filter(lambda key: key not in ALLOWED),
)


def _refused(context: dict[str, str]) -> bool:
    try:
        check_input_context(context, JOB)
    except JobError as exc:
        assert exc.code == ErrorCode.CONTEXT_MISMATCH
        assert JOB.job_id not in exc.reason  # names keys, never quotes values
        return True
    return False


def test_the_exact_context_is_accepted_with_or_without_the_esdk_public_key() -> None:
    assert not _refused(dict(EXACT))
    assert not _refused({**EXACT, PUBLIC_KEY: "A3b1c2...base64 point"})


@given(extra=st.dictionaries(extra_keys, st.text(max_size=12), min_size=1, max_size=3),
       public_key=st.booleans())
def test_any_other_key_or_case_variant_is_a_context_mismatch(extra: dict[str, str], public_key: bool) -> None:
    context = {**EXACT, **({PUBLIC_KEY: "key"} if public_key else {}), **extra}
    assert _refused(context)


@given(st.dictionaries(st.sampled_from(["ccc:job", "ccc:tenant", "ccc:kind", "CCC:TENANT", "Ccc:Kind", PUBLIC_KEY]),
                       st.sampled_from([JOB.job_id, JOB.tenant, "tenant-b", "input", "result", ""]), max_size=6))
def test_accepted_exactly_when_the_keys_are_allowed_and_the_values_name_this_job(context: dict[str, str]) -> None:
    expected_ok = (set(context) <= ALLOWED and context.get("ccc:job") == JOB.job_id
                   and context.get("ccc:tenant") == JOB.tenant)
    assert _refused(context) is not expected_ok


@pytest.mark.parametrize(
    "context",
    [
        {**EXACT, "CCC:TENANT": "tenant-b"},  # the example: a case variant naming another tenant
        {**EXACT, "Ccc:Kind": "result"},
        {**EXACT, "ccc:kind": "input"},  # inputs carry no kind at all now
        {"CCC:JOB": JOB.job_id, "CCC:TENANT": JOB.tenant},  # only case variants, no real keys
        {"ccc:job": JOB.job_id},
        {},
    ],
)
def test_named_attacks_are_refused(context: dict[str, str]) -> None:
    assert _refused(context)
