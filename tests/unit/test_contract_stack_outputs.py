"""The stack-outputs contract (`ccc_common.contracts.stack_outputs`): CDK writes the outputs, the
client reads them (tests/infra/test_cdk_stack_outputs.py checks the synthesised stack itself)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.client.target import outputs_to_target
from ccc_common.contracts import stack_outputs as so
from cdk import contract

text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
outputs = st.fixed_dictionaries({
    "stage": st.sampled_from(["dev", "prod", "local"]),
    "api_url": text, "inbox_bucket": text, "results_bucket": text, "artifacts_bucket": text, "data_key_arn": text,
    "tenant_roles": text, "release_prefix": text, "host_log_group": text, "dashboard": text,
    "pcrs": st.dictionaries(st.sampled_from([0, 1, 2, 8]), st.from_regex(r"[0-9a-f]{96}", fullmatch=True), max_size=4),
}).map(lambda fields: so.StackOutputs(**fields))
PCR = "ab" * 48
EXAMPLE = so.StackOutputs(
    stage="dev", api_url="https://api/", inbox_bucket="in", results_bucket="out", artifacts_bucket="art",
    data_key_arn="arn:aws:kms:eu-west-1:111122223333:key/k", tenant_roles="{}", release_prefix="s3://art/release/x/",
    host_log_group="hosts", dashboard="dash", pcrs={0: PCR},
)


@settings(max_examples=80, deadline=None)
@given(outputs)
def test_encode_then_decode_is_the_identity(value: so.StackOutputs) -> None:
    encoded = so.encode_stack_outputs(value)
    assert all(isinstance(v, str) for v in encoded.values())
    assert so.decode_stack_outputs(encoded) == value


def test_every_output_has_a_name_a_description_and_the_version_tag() -> None:
    encoded = so.encode_stack_outputs(EXAMPLE)
    assert encoded[so.OUTPUT_FORMAT] == so.STACK_OUTPUTS_FORMAT == "ccc-stack-outputs/1"
    assert set(encoded) == {*so.NAMED_OUTPUTS, "EnclavePcr0"}
    assert all(so.description(key) for key in encoded)


def test_cdk_spells_the_outputs_with_the_contracts_names() -> None:
    for name in ("FORMAT", "API_URL", "INBOX_BUCKET", "RESULTS_BUCKET", "ARTIFACTS_BUCKET", "DATA_KEY_ARN",
                 "TENANT_ROLES", "RELEASE_PREFIX", "STAGE", "HOST_LOG_GROUP", "DASHBOARD", "PCR_PREFIX"):
        assert getattr(contract, f"OUTPUT_{name}") == getattr(so, f"OUTPUT_{name}")
    assert contract.MEASUREMENTS_NAME == so.MEASUREMENTS_NAME


@pytest.mark.parametrize("tag", [None, "ccc-stack-outputs/2", ""])
def test_unknown_or_missing_versions_are_refused(tag: str | None) -> None:
    encoded = so.encode_stack_outputs(EXAMPLE)
    if tag is None:
        del encoded[so.OUTPUT_FORMAT]
    else:
        encoded[so.OUTPUT_FORMAT] = tag
    with pytest.raises(so.DocumentError, match="ccc-stack-outputs/1") as info:
        so.decode_stack_outputs(encoded)
    assert info.value.reason == "unknown-format"


@pytest.mark.parametrize("extra", ["NewOutput", "pcrs", "OrchestrationJobsApiEndpoint4A2EA5FE", "EnclavePcrX"])
def test_unknown_outputs_are_refused(extra: str) -> None:
    with pytest.raises(so.DocumentError, match=extra) as info:
        so.decode_stack_outputs({**so.encode_stack_outputs(EXAMPLE), extra: "x"})
    assert info.value.reason == "malformed"


@pytest.mark.parametrize(
    "changes",
    [{so.OUTPUT_STAGE: ""}, {so.OUTPUT_INBOX_BUCKET: 1}, {"EnclavePcr0": "zz" * 48}, {"EnclavePcr1": PCR.upper()}],
)
def test_wrong_types_and_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(so.DocumentError) as info:
        so.decode_stack_outputs({**so.encode_stack_outputs(EXAMPLE), **changes})  # type: ignore[dict-item]
    assert info.value.reason == "malformed"
    missing = so.encode_stack_outputs(EXAMPLE)
    del missing[so.OUTPUT_DATA_KEY_ARN]
    with pytest.raises(so.DocumentError, match=so.OUTPUT_DATA_KEY_ARN):
        so.decode_stack_outputs(missing)


def test_what_cdk_writes_the_client_turns_into_its_target() -> None:
    target = outputs_to_target("CccDev", so.encode_stack_outputs(EXAMPLE), "eu-west-1", lambda tenant: None)
    assert (target.stage, target.inbox_bucket, target.results_bucket, target.api_url) == (
        "dev", "in", "out", "https://api/"
    )
    # Where to send jobs, nothing to trust: key and PCRs reach the client only through the tenant's
    # trust file (ccc trust init proposes them from these outputs; issue 11).
    assert not {"key_arn", "expected_pcrs", "attestation_root_der"} & set(vars(target))
