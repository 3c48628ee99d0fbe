"""The gateway's key-policy evaluator: the builder's intent, IAM semantics, and failing closed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.kms.policy_eval import Decision, RequestContext, evaluate, parse_policy
from ccc_common.domain.key_policy import ADMIN_ACTIONS, KeyPolicySpec, build_key_policy

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0b5c2f39-1f51-4a1e-9b0e-6d1f3f0a9c11"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/ccc-admin"
PARENT = f"arn:aws:iam::{ACCOUNT}:role/ccc-parent"
TENANT_A = f"arn:aws:iam::{ACCOUNT}:role/tenant-a"
TENANT_B = f"arn:aws:iam::{ACCOUNT}:role/tenant-b"
OUTSIDER = f"arn:aws:iam::{ACCOUNT}:user/mallory"
PCRS = {0: "a1" * 48, 1: "b2" * 48, 2: "c3" * 48}


def _spec(pcrs: dict[int, str] | None = None) -> KeyPolicySpec:
    return KeyPolicySpec(
        account_id=ACCOUNT,
        admin_principals=(ADMIN,),
        tenant_principals={"tenant-a": (TENANT_A,), "tenant-b": (TENANT_B,)},
        parent_role_arns=(PARENT,),
        pcrs=pcrs or PCRS,
    )


POLICY = build_key_policy(_spec())


def _attestation(pcrs: dict[int, str] = PCRS, **overrides: str) -> dict[str, str]:
    values = {f"PCR{i}": v for i, v in pcrs.items()}
    values["ImageSha384"] = pcrs[0]
    values.update(overrides)
    return values


def _req(principal: str, action: str, **kwargs: Any) -> RequestContext:
    return RequestContext(principal_arn=principal, caller_account=ACCOUNT, action=action, resource_arn=KEY, **kwargs)


def _allowed(policy: Any, request: RequestContext) -> bool:
    return evaluate(policy, request).allowed


# --- the built policy ---------------------------------------------------------------------------


def test_parent_needs_a_matching_attestation() -> None:
    ctx = {"ccc:tenant": "tenant-a", "ccc:job": "j"}
    assert _allowed(POLICY, _req(PARENT, "kms:Decrypt", encryption_context=ctx, attestation=_attestation()))
    assert _allowed(POLICY, _req(PARENT, "kms:GenerateDataKey", attestation=_attestation()))
    upper = _attestation({i: v.upper() for i, v in PCRS.items()})
    assert _allowed(POLICY, _req(PARENT, "kms:Decrypt", attestation=upper))  # StringEqualsIgnoreCase
    assert not _allowed(POLICY, _req(PARENT, "kms:Decrypt", encryption_context=ctx))
    assert not _allowed(POLICY, _req(PARENT, "kms:Decrypt", attestation=_attestation(ImageSha384="ff" * 48)))
    assert not _allowed(POLICY, _req(PARENT, "kms:Decrypt", attestation=_attestation(PCR2="ff" * 48)))
    missing_pcr1 = _attestation()
    del missing_pcr1["PCR1"]
    assert not _allowed(POLICY, _req(PARENT, "kms:Decrypt", attestation=missing_pcr1))
    assert not _allowed(POLICY, _req(PARENT, "kms:Encrypt", attestation=_attestation()))
    assert not _allowed(POLICY, _req(PARENT, "kms:ReEncryptFrom", attestation=_attestation()))


def test_tenants_encrypt_inputs_and_decrypt_only_their_results() -> None:
    inputs = {"ccc:tenant": "tenant-a", "ccc:job": "j"}
    results = {**inputs, "ccc:kind": "result"}
    assert _allowed(POLICY, _req(TENANT_A, "kms:GenerateDataKey", encryption_context=inputs))
    assert _allowed(POLICY, _req(TENANT_A, "kms:Encrypt", encryption_context=inputs))
    assert _allowed(POLICY, _req(TENANT_A, "kms:Decrypt", encryption_context=results))
    assert not _allowed(POLICY, _req(TENANT_A, "kms:Decrypt", encryption_context=inputs))
    assert not _allowed(POLICY, _req(TENANT_A, "kms:GenerateDataKey", encryption_context=results))
    assert not _allowed(POLICY, _req(TENANT_B, "kms:GenerateDataKey", encryption_context=inputs))
    assert not _allowed(POLICY, _req(TENANT_B, "kms:Decrypt", encryption_context=results))
    assert not _allowed(POLICY, _req(TENANT_A, "kms:GenerateDataKey"))
    # Condition-key names are case-insensitive on AWS: `kms:EncryptionContext:ccc:tenant` reads the
    # context key `CCC:TENANT` too (only kms:EncryptionContextKeys makes the key's case matter).
    assert _allowed(
        POLICY, _req(TENANT_A, "kms:Decrypt", encryption_context={"CCC:TENANT": "tenant-a", "Ccc:Kind": "result"})
    )


def test_admins_manage_but_never_decrypt() -> None:
    for action in ADMIN_ACTIONS:
        assert _allowed(POLICY, _req(ADMIN, action))
    for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant", "kms:ReEncryptTo"):
        assert not _allowed(POLICY, _req(ADMIN, action, attestation=_attestation()))
    assert _allowed(POLICY, _req(ADMIN, "kms:putkeypolicy"))  # actions are case-insensitive


def test_root_delegates_to_iam_only_for_iam_admins() -> None:
    assert _allowed(POLICY, _req(OUTSIDER, "kms:PutKeyPolicy", iam_allows=True))
    assert not _allowed(POLICY, _req(OUTSIDER, "kms:PutKeyPolicy"))
    assert not _allowed(POLICY, _req(OUTSIDER, "kms:Decrypt", iam_allows=True, attestation=_attestation()))
    other_account = RequestContext(
        principal_arn="arn:aws:iam::999999999999:role/x",
        caller_account="999999999999",
        action="kms:PutKeyPolicy",
        resource_arn=KEY,
        iam_allows=True,
    )
    assert not _allowed(POLICY, other_account)


def test_everyone_named_may_describe_the_key_and_outsiders_nothing() -> None:
    for principal in (ADMIN, PARENT, TENANT_A, TENANT_B):
        assert _allowed(POLICY, _req(principal, "kms:DescribeKey"))
    assert not _allowed(POLICY, _req(OUTSIDER, "kms:DescribeKey"))


def test_explicit_deny_wins() -> None:
    policy = copy.deepcopy(POLICY)
    policy["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:ccc:job": "blocked"}},
        }
    )
    ctx = {"ccc:tenant": "tenant-a", "ccc:kind": "result", "ccc:job": "blocked"}
    result = evaluate(policy, _req(TENANT_A, "kms:Decrypt", encryption_context=ctx))
    assert result.decision is Decision.EXPLICIT_DENY
    assert _allowed(policy, _req(TENANT_A, "kms:Decrypt", encryption_context={**ctx, "ccc:job": "ok"}))


# --- operators ----------------------------------------------------------------------------------


def _one(condition: dict[str, Any], principal: Any = None) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal or {"AWS": TENANT_A},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": condition,
            }
        ],
    }


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"kms:EncryptionContext:k": ["x", "y"]}}, {"k": "y"}, True),
        ({"StringEquals": {"kms:EncryptionContext:k": "x"}}, {"k": "X"}, False),
        ({"StringEqualsIgnoreCase": {"kms:EncryptionContext:k": "x"}}, {"k": "X"}, True),
        ({"StringLike": {"kms:EncryptionContext:k": "job-*"}}, {"k": "job-42"}, True),
        ({"StringLike": {"kms:EncryptionContext:k": "job-?"}}, {"k": "job-42"}, False),
        ({"StringLike": {"kms:EncryptionContext:k": "a.c"}}, {"k": "abc"}, False),
        ({"Null": {"kms:EncryptionContext:k": "true"}}, {}, True),
        ({"Null": {"kms:EncryptionContext:k": True}}, {"k": "v"}, False),
        ({"Null": {"kms:EncryptionContext:k": "false"}}, {"k": "v"}, True),
        ({"Bool": {"kms:EncryptionContext:k": "true"}}, {"k": "True"}, True),
        ({"Bool": {"kms:EncryptionContext:k": "true"}}, {}, False),
        ({"StringEquals": {"kms:EncryptionContext:k": "x"}}, {}, False),
        ({"StringEquals": {"kms:CallerAccount": ACCOUNT}}, {}, True),
        ({"StringEquals": {"kms:calleraccount": "000000000000"}}, {}, False),
        (
            {"StringEquals": {"kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": "2"}},
            {"a": "1"},
            False,
        ),
    ],
)
def test_condition_operators(condition: dict, context: dict, expected: bool) -> None:
    assert _allowed(_one(condition), _req(TENANT_A, "kms:Decrypt", encryption_context=context)) is expected


@pytest.mark.parametrize(
    "policy_edit",
    [
        lambda p: p["Statement"][0].update({"NotPrincipal": p["Statement"][0].pop("Principal")}),
        lambda p: p["Statement"][0].update({"NotAction": "kms:Encrypt"}),
        lambda p: p["Statement"][0]["Condition"].update({"StringEqualsIfExists": {"kms:EncryptionContext:k": "x"}}),
        lambda p: p["Statement"][0]["Condition"].update({"ForAnyValue:StringEquals": {"kms:EncryptionContext:k": "v"}}),
        lambda p: p["Statement"][0]["Condition"].update({"StringEquals": {"kms:EncryptionContextKeys": "k"}}),
        lambda p: p["Statement"][0]["Condition"].update(
            {"ForAllValues:NumericLessThan": {"kms:EncryptionContextKeys": "3"}}
        ),
        lambda p: p["Statement"][0]["Condition"].update({"StringEquals": {"aws:SourceIp": "10.0.0.1"}}),
        lambda p: p["Statement"][0]["Condition"].update({"StringEquals": {"kms:ViaService": "s3.amazonaws.com"}}),
        lambda p: p["Statement"][0]["Condition"].update(
            {"StringEquals": {"kms:EncryptionContext:k": "${aws:username}"}}
        ),
        lambda p: p["Statement"][0]["Condition"].update({"NumericLessThan": {"kms:EncryptionContext:k": "3"}}),
        lambda p: p["Statement"][0]["Condition"].update({"Null": {"kms:EncryptionContext:k": "maybe"}}),
        lambda p: p["Statement"][0].update({"Principal": {"Federated": "cognito-identity.amazonaws.com"}}),
        lambda p: p["Statement"][0].update({"Principal": {"AWS": "arn:aws:iam::111122223333:role/*"}}),
        lambda p: p["Statement"][0].update({"Effect": "allow"}),
        lambda p: p["Statement"][0].pop("Resource"),
        lambda p: p.update({"Version": "2020-01-01"}),
        lambda p: p.update({"Statement": []}),
        lambda p: p["Statement"].append("not a statement"),
        lambda p: p["Statement"][0].update({"Condition": {"StringEquals": {"kms:RecipientAttestation:PCR99": "x"}}}),
    ],
)
def test_anything_not_understood_denies_everything(policy_edit: Any) -> None:
    policy = _one({"StringEquals": {"kms:EncryptionContext:k": "v"}})
    request = _req(TENANT_A, "kms:Decrypt", encryption_context={"k": "v"})
    assert _allowed(policy, request)
    policy_edit(policy)
    result = evaluate(policy, request)
    assert result.decision is Decision.IMPLICIT_DENY
    assert "not understood" in result.reason


def test_a_non_json_policy_denies() -> None:
    assert not _allowed("{nope", _req(TENANT_A, "kms:Decrypt"))
    assert not _allowed(["list"], _req(TENANT_A, "kms:Decrypt"))  # type: ignore[arg-type]


def test_aws_default_key_policy_is_understood() -> None:
    default = {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    parse_policy(default)
    assert _allowed(default, _req(ADMIN, "kms:Decrypt", iam_allows=True))
    assert not _allowed(default, _req(TENANT_A, "kms:Decrypt"))


# --- property: the evaluator agrees with the builder's stated intent ----------------------------

_hex96 = st.binary(min_size=48, max_size=48).filter(any).map(bytes.hex)
ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
]


def _intended(spec: KeyPolicySpec, request: RequestContext) -> bool:
    """The builder's promise, restated without looking at the policy JSON."""
    p, a, ctx = request.principal_arn, request.action, request.encryption_context
    named = {*spec.admin_principals, *spec.parent_role_arns} | {x for v in spec.tenant_principals.values() for x in v}
    if a == "kms:DescribeKey" and p in named:
        return True
    if a in ADMIN_ACTIONS and (
        p in spec.admin_principals or (request.iam_allows and request.caller_account == ACCOUNT)
    ):
        return True
    for tenant, principals in spec.tenant_principals.items():
        if p not in principals or ctx.get("ccc:tenant") != tenant:
            continue
        if a in ("kms:Encrypt", "kms:GenerateDataKey") and "ccc:kind" not in ctx:
            return True
        if a == "kms:Decrypt" and ctx.get("ccc:kind") == "result":
            return True
    if p in spec.parent_role_arns and a in ("kms:Decrypt", "kms:GenerateDataKey") and request.attestation:
        att = request.attestation
        want = {"ImageSha384": spec.pcrs[0], **{f"PCR{i}": v for i, v in spec.pcrs.items() if i}}
        return all(att.get(k, "").lower() == v.lower() for k, v in want.items())
    return False


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[KeyPolicySpec, RequestContext]:
    pcrs = {0: draw(_hex96)}
    for index in draw(st.sets(st.sampled_from([1, 2, 8]))):
        pcrs[index] = draw(_hex96)
    spec = _spec(pcrs)
    principal = draw(st.sampled_from([ADMIN, PARENT, TENANT_A, TENANT_B, OUTSIDER]))
    context: dict[str, str] = {}
    if draw(st.booleans()):
        context["ccc:tenant"] = draw(st.sampled_from(["tenant-a", "tenant-b", "tenant-c"]))
    if draw(st.booleans()):
        context["ccc:kind"] = draw(st.sampled_from(["result", "input", "RESULT"]))
    if draw(st.booleans()):
        context["ccc:job"] = draw(st.text(max_size=8))
    attestation = None
    choice = draw(st.sampled_from(["none", "match", "upper", "wrong-image", "wrong-other", "extra"]))
    if choice != "none":
        attestation = _attestation(pcrs)
        if choice == "upper":
            attestation = {k: v.upper() for k, v in attestation.items()}
        elif choice == "wrong-image":
            attestation["ImageSha384"] = draw(_hex96)
        elif choice == "wrong-other":
            key = draw(st.sampled_from(sorted(attestation)))
            attestation[key] = draw(_hex96)
            if key == "PCR0":
                attestation["PCR0"] = pcrs[0]  # PCR0 itself is not a condition key; keep consistent
        elif choice == "extra":
            attestation["PCR4"] = draw(_hex96)
    request = _req(
        principal,
        draw(st.sampled_from(ACTIONS)),
        encryption_context=context,
        attestation=attestation,
        iam_allows=draw(st.booleans()) and principal == OUTSIDER,
    )
    return spec, request


@settings(max_examples=600, deadline=None)
@given(scenario=scenarios())
def test_evaluator_matches_the_builders_intent(scenario: tuple[KeyPolicySpec, RequestContext]) -> None:
    spec, request = scenario
    assert evaluate(build_key_policy(spec), request).allowed is _intended(spec, request)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(policy=_json)
def test_arbitrary_json_never_crashes_and_never_allows_by_accident(policy: Any) -> None:
    result = evaluate(policy, _req(TENANT_A, "kms:Decrypt"))
    assert result.decision in (Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY, Decision.ALLOW)
    if result.allowed:  # only possible if the random document really is a valid allowing policy
        parse_policy(policy)


# --- condition-key names are case-insensitive (AWS); values compare per operator ------------------


@pytest.mark.parametrize(
    "policy_key", ["kms:EncryptionContext:ccc:kind", "KMS:ENCRYPTIONCONTEXT:CCC:KIND", "kms:EncryptionContext:Ccc:Kind"]
)
@pytest.mark.parametrize("context_key", ["ccc:kind", "CCC:KIND", "cCc:kInD"])
def test_condition_key_names_match_in_any_case(policy_key: str, context_key: str) -> None:
    policy = _one({"StringEquals": {policy_key: "result"}})
    assert _allowed(policy, _req(TENANT_A, "kms:Decrypt", encryption_context={context_key: "result"}))
    # ... but the value is compared as the operator says: StringEquals is exact.
    assert not _allowed(policy, _req(TENANT_A, "kms:Decrypt", encryption_context={context_key: "RESULT"}))
    ignore_case = _one({"StringEqualsIgnoreCase": {policy_key: "result"}})
    assert _allowed(ignore_case, _req(TENANT_A, "kms:Decrypt", encryption_context={context_key: "RESULT"}))


def test_null_reads_the_context_key_in_any_case() -> None:
    policy = _one({"Null": {"kms:EncryptionContext:CCC:KIND": "true"}})
    assert _allowed(policy, _req(TENANT_A, "kms:Decrypt", encryption_context={"ccc:job": "j"}))
    # A case variant of ccc:kind IS ccc:kind for the condition: it is not null.
    assert not _allowed(policy, _req(TENANT_A, "kms:Decrypt", encryption_context={"Ccc:Kind": "result"}))


def test_case_variant_duplicates_make_allow_stricter_and_deny_broader() -> None:
    ambiguous = {"ccc:tenant": "tenant-a", "CCC:TENANT": "tenant-b"}
    allow = _one({"StringEquals": {"kms:EncryptionContext:ccc:tenant": "tenant-a"}})
    assert not _allowed(allow, _req(TENANT_A, "kms:Decrypt", encryption_context=ambiguous))
    deny = copy.deepcopy(allow)
    deny["Statement"][0]["Condition"] = {}
    deny["Statement"].append(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:ccc:tenant": "tenant-b"}},
        }
    )
    del deny["Statement"][0]["Condition"]
    assert evaluate(deny, _req(TENANT_A, "kms:Decrypt", encryption_context=ambiguous)).decision is (
        Decision.EXPLICIT_DENY
    )


# --- kms:EncryptionContextKeys: ForAllValues / ForAnyValue / Null ---------------------------------

ALLOWED_KEYS = ["ccc:job", "ccc:tenant", "ccc:kind", "aws-crypto-public-key"]


def _keys_policy(operator: str, values: Any = ALLOWED_KEYS) -> dict[str, Any]:
    return _one({operator: {"kms:EncryptionContextKeys": values}})


@pytest.mark.parametrize(
    ("context", "for_all", "for_any"),
    [
        ({"ccc:job": "j", "ccc:tenant": "t"}, True, True),
        ({"ccc:job": "j", "ccc:tenant": "t", "extra": "x"}, False, True),
        ({"CCC:TENANT": "t"}, False, False),  # StringEquals on the KEYS is case-sensitive
        ({"extra": "x"}, False, False),
        ({}, True, False),  # AWS: ForAllValues holds for an empty set, ForAnyValue does not
    ],
)
def test_context_keys_set_operators(context: dict[str, str], for_all: bool, for_any: bool) -> None:
    request = _req(TENANT_A, "kms:Decrypt", encryption_context=context)
    assert _allowed(_keys_policy("ForAllValues:StringEquals"), request) is for_all
    assert _allowed(_keys_policy("ForAnyValue:StringEquals"), request) is for_any


def test_context_keys_ignore_case_and_like_operators() -> None:
    request = _req(TENANT_A, "kms:Decrypt", encryption_context={"CCC:TENANT": "t"})
    assert _allowed(_keys_policy("ForAllValues:StringEqualsIgnoreCase"), request)
    assert _allowed(_keys_policy("ForAllValues:StringLike", "CCC:*"), request)
    assert not _allowed(_keys_policy("ForAllValues:StringLike", "ccc:*"), request)


def test_null_on_context_keys_means_no_context() -> None:
    no_context = _one({"Null": {"kms:EncryptionContextKeys": "true"}})
    some_context = _one({"Null": {"kms:EncryptionContextKeys": "false"}})
    assert _allowed(no_context, _req(TENANT_A, "kms:Decrypt"))
    assert not _allowed(no_context, _req(TENANT_A, "kms:Decrypt", encryption_context={"k": "v"}))
    assert _allowed(some_context, _req(TENANT_A, "kms:Decrypt", encryption_context={"k": "v"}))
    assert not _allowed(some_context, _req(TENANT_A, "kms:Decrypt"))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["ccc:job", "ccc:tenant", "ccc:kind", "x", "CCC:JOB", "aws-crypto-public-key"]),
        st.text(max_size=3),
        max_size=5,
    )
)
def test_for_all_values_is_subset_and_for_any_value_is_intersection(context: dict[str, str]) -> None:
    request = _req(TENANT_A, "kms:Decrypt", encryption_context=context)
    assert _allowed(_keys_policy("ForAllValues:StringEquals"), request) is set(context).issubset(ALLOWED_KEYS)
    assert _allowed(_keys_policy("ForAnyValue:StringEquals"), request) is bool(set(context) & set(ALLOWED_KEYS))


# --- the tenant-owned key policy (interface A) as the gateway evaluates it ------------------------

TENANT_KEY_ACCOUNT = "444455556666"
TENANT_KEY_PRINCIPAL = f"arn:aws:iam::{TENANT_KEY_ACCOUNT}:role/tenant-a"


def _tenant_key_policy() -> dict[str, Any]:
    from ccc_common.domain.key_policy import TenantKeySpec, build_tenant_key_policy, release_from_pcrs

    return build_tenant_key_policy(
        TenantKeySpec(
            tenant="tenant-a",
            partition="aws",
            key_account_id=TENANT_KEY_ACCOUNT,
            key_admin_principals=(),
            tenant_principals=(TENANT_KEY_PRINCIPAL,),
            parent_role_arns=(PARENT,),
            releases=(release_from_pcrs(PCRS),),
        )
    )


TENANT_KEY_POLICY = parse_policy(_tenant_key_policy())
_CONTEXT_KEY_NAMES = [
    "ccc:job",
    "ccc:tenant",
    "ccc:kind",
    "aws-crypto-public-key",
    "CCC:JOB",
    "Ccc:Tenant",
    "ccc:kin",
    "x",
]
_CONTEXT_VALUES = ["tenant-a", "tenant-b", "result", "RESULT", "j"]


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(_CONTEXT_KEY_NAMES), st.sampled_from(_CONTEXT_VALUES), max_size=5))
def test_the_tenant_key_policy_allows_exactly_its_intent(context: dict[str, str]) -> None:
    """An independent restatement of interface A, against the evaluator, on random contexts."""
    inputs = {"ccc:job", "ccc:tenant", "aws-crypto-public-key"}
    results = inputs | {"ccc:kind"}
    own = "ccc:job" in context and context.get("ccc:tenant") == "tenant-a"
    may_input = own and set(context) <= inputs
    may_read_result = own and set(context) <= results and context.get("ccc:kind") == "result"
    may_enclave = own and set(context) <= results

    def allowed(principal: str, action: str, attestation: dict[str, str] | None = None) -> bool:
        request = RequestContext(
            principal_arn=principal,
            caller_account=principal.split(":")[4],
            action=action,
            resource_arn=KEY,
            encryption_context=context,
            attestation=attestation,
        )
        return TENANT_KEY_POLICY.evaluate(request).allowed

    assert allowed(TENANT_KEY_PRINCIPAL, "kms:Encrypt") is may_input
    assert allowed(TENANT_KEY_PRINCIPAL, "kms:GenerateDataKey") is may_input
    assert allowed(TENANT_KEY_PRINCIPAL, "kms:Decrypt") is may_read_result
    assert allowed(PARENT, "kms:Decrypt", _attestation()) is may_enclave
    assert allowed(PARENT, "kms:GenerateDataKey", _attestation()) is may_enclave
    assert not allowed(PARENT, "kms:Decrypt", _attestation({**PCRS, 0: "ee" * 48}))
    assert not allowed(PARENT, "kms:Decrypt")
    for outsider in (ADMIN, TENANT_B):
        for action in ("kms:Decrypt", "kms:Encrypt", "kms:PutKeyPolicy", "kms:CreateGrant", "kms:DisableKey"):
            assert not allowed(outsider, action, _attestation())
