"""Tenant-owned data keys (interface A): the operator account gets nothing but attested key release.

Each test names the property a tenant relies on when it deploys `CccTenant` with this policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc_common.domain.key_policy import (
    ADMIN_ACTIONS,
    CONTEXT_KEYS_KEY,
    IMAGE_SHA384,
    MAX_POLICY_BYTES,
    ApprovedRelease,
    KeyPolicyError,
    KeyPolicySpec,
    TenantKeySpec,
    build_key_policy,
    build_tenant_key_policy,
    lint_key_policy,
    release_from_pcrs,
    release_sid,
    releases_from_key_policy,
)

TENANT_ACCOUNT = "111111111111"
OPERATOR_ACCOUNT = "222222222222"
PARENT = f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/ccc-parent"
CLIENT = f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-client"
ADMIN = f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-key-admin"
PCR0_A, PCR1_A, PCR2_A = "aa" * 48, "ab" * 48, "ac" * 48
PCR0_B = "bb" * 48
RELEASE_A = ApprovedRelease("2026-12-01.a", {0: PCR0_A, 1: PCR1_A, 2: PCR2_A})
RELEASE_B = ApprovedRelease("2026-12-04.b", {0: PCR0_B, 1: PCR1_A, 2: PCR2_A})


def _spec(**overrides: Any) -> TenantKeySpec:
    values: dict[str, Any] = {
        "tenant": "acme",
        "partition": "aws",
        "key_account_id": TENANT_ACCOUNT,
        "key_admin_principals": (ADMIN,),
        "tenant_principals": (CLIENT,),
        "parent_role_arns": (PARENT,),
        "releases": (RELEASE_A, RELEASE_B),
    }
    values.update(overrides)
    return TenantKeySpec(**values)


def _principals(statement: dict) -> list[str]:
    value = statement["Principal"]["AWS"]
    return [value] if isinstance(value, str) else list(value)


def _statements_for(policy: dict, principal: str) -> list[dict]:
    return [s for s in policy["Statement"] if principal in _principals(s)]


def _actions(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in s["Action"]}


def test_the_parent_gets_one_attested_statement_per_release_and_nothing_else() -> None:
    policy = build_tenant_key_policy(_spec())
    parent = _statements_for(policy, PARENT)
    attested = [s for s in parent if "StringEqualsIgnoreCase" in s.get("Condition", {})]
    assert [s["Sid"] for s in attested] == [release_sid("2026-12-01.a"), release_sid("2026-12-04.b")]
    for statement, release in zip(attested, (RELEASE_A, RELEASE_B), strict=True):
        assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        pins = statement["Condition"]["StringEqualsIgnoreCase"]
        assert pins[IMAGE_SHA384] == release.pcrs[0]
        assert pins["kms:RecipientAttestation:PCR1"] == release.pcrs[1]
        assert statement["Condition"]["StringEquals"] == {"kms:EncryptionContext:ccc:tenant": "acme"}
    # Besides the attested statements the parent may only read the key's metadata.
    assert _actions([s for s in parent if s not in attested]) == {"kms:DescribeKey"}


def test_no_operator_account_principal_other_than_the_parent_appears() -> None:
    policy = build_tenant_key_policy(_spec())
    named = {p for s in policy["Statement"] for p in _principals(s)}
    assert {p for p in named if f":{OPERATOR_ACCOUNT}:" in p} == {PARENT}
    assert f"arn:aws:iam::{OPERATOR_ACCOUNT}:root" not in named


def test_tenant_admins_and_root_manage_but_never_use_or_grant() -> None:
    policy = build_tenant_key_policy(_spec())
    for principal in (ADMIN, f"arn:aws:iam::{TENANT_ACCOUNT}:root"):
        actions = _actions(_statements_for(policy, principal))
        assert actions == set(ADMIN_ACTIONS)
        assert not actions & {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:*"}


def test_tenant_encrypts_only_its_inputs_and_decrypts_only_its_results() -> None:
    policy = build_tenant_key_policy(_spec())
    by_action = {tuple(s["Action"]): s["Condition"] for s in _statements_for(policy, CLIENT) if "Condition" in s}
    inputs = by_action[("kms:Encrypt", "kms:GenerateDataKey")]
    assert inputs["StringEquals"] == {"kms:EncryptionContext:ccc:tenant": "acme"}
    assert inputs["Null"]["kms:EncryptionContext:ccc:kind"] == "true"
    assert inputs["ForAllValues:StringEquals"] == {CONTEXT_KEYS_KEY: ["ccc:job", "ccc:tenant", "aws-crypto-public-key"]}
    results = by_action[("kms:Decrypt",)]
    assert results["StringEquals"] == {
        "kms:EncryptionContext:ccc:tenant": "acme",
        "kms:EncryptionContext:ccc:kind": "result",
    }
    # The tenant's client reads the policy to audit what the key releases to (ccc trust audit).
    unconditioned = [s for s in _statements_for(policy, CLIENT) if "Condition" not in s]
    assert _actions(unconditioned) == {"kms:DescribeKey", "kms:GetKeyPolicy"}


def test_every_use_statement_pins_the_context_key_set_and_requires_a_context() -> None:
    """ForAllValues over an empty set is true: without the Null checks a request with no encryption
    context at all would satisfy the key-set condition."""
    policy = build_tenant_key_policy(_spec())
    use = [s for s in policy["Statement"] if set(s["Action"]) & {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}]
    assert len(use) == 4  # inputs, results, two releases
    for statement in use:
        condition = statement["Condition"]
        assert set(condition["ForAllValues:StringEquals"][CONTEXT_KEYS_KEY]) <= {
            "ccc:job",
            "ccc:tenant",
            "ccc:kind",
            "aws-crypto-public-key",
        }
        assert condition["Null"][CONTEXT_KEYS_KEY] == "false"
        assert condition["Null"]["kms:EncryptionContext:ccc:tenant"] == "false"
        assert condition["Null"]["kms:EncryptionContext:ccc:job"] == "false"


def test_releases_round_trip_through_the_policy() -> None:
    policy = build_tenant_key_policy(_spec())
    assert releases_from_key_policy(policy) == (RELEASE_A, RELEASE_B)
    assert releases_from_key_policy(json.loads(json.dumps(policy))) == (RELEASE_A, RELEASE_B)


def test_a_release_made_from_bare_pcrs_is_named_after_pcr0() -> None:
    release = release_from_pcrs({0: PCR0_A.upper(), 8: PCR1_A})
    assert release.release_id == f"pcr0-{PCR0_A[:12]}"
    assert dict(release.pcrs) == {0: PCR0_A, 8: PCR1_A}


def test_releases_read_from_a_foreign_statement_are_named_after_pcr0() -> None:
    policy = {
        "Statement": [
            {
                "Sid": "someone else's wording",
                "Effect": "Allow",
                "Principal": {"AWS": PARENT},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:RecipientAttestation:ImageSha384": PCR0_B.upper()}},
            },
            {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"},
        ]
    }
    assert releases_from_key_policy(policy) == (ApprovedRelease(f"pcr0-{PCR0_B[:12]}", {0: PCR0_B}),)


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"StringEqualsIgnoreCase": {IMAGE_SHA384: [PCR0_A, PCR0_B]}}, "several values"),
        ({"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR1": PCR1_A}}, "ImageSha384"),
        ({"StringLike": {IMAGE_SHA384: PCR0_A}}, "StringLike"),
        ({"StringEquals": {IMAGE_SHA384: "0" * 96}}, "all zeros"),
        ({"StringEquals": {"kms:RecipientAttestation:Foo": PCR0_A}}, "unknown attestation"),
    ],
)
def test_a_statement_that_is_not_one_release_is_refused(condition: dict, reason: str) -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": PARENT}, "Action": "kms:Decrypt", "Condition": condition}
    with pytest.raises(KeyPolicyError, match=reason):
        releases_from_key_policy({"Statement": [statement]})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"key_account_id": OPERATOR_ACCOUNT}, "operator's"),
        ({"tenant_principals": (f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/TenantRole-acme",)}, "operator's account"),
        ({"tenant_principals": (f"arn:aws:iam::{OPERATOR_ACCOUNT}:root",)}, "operator's account"),
        ({"key_admin_principals": (f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/admin",)}, "operator's account"),
        ({"tenant_principals": ()}, "no principals"),
        ({"tenant_principals": (PARENT,)}, "both"),
        ({"key_admin_principals": (CLIENT,)}, "both"),
        ({"parent_role_arns": ()}, "parent instance role"),
        ({"parent_role_arns": (f"arn:aws:iam::{OPERATOR_ACCOUNT}:user/parent",)}, "must be an IAM role"),
        ({"releases": ()}, "at least one approved release"),
        ({"releases": RELEASE_A}, "sequence"),
        ({"releases": (RELEASE_A, ApprovedRelease("2026-12-01.a", {0: PCR0_B}))}, "not unique"),
        ({"releases": (RELEASE_A, ApprovedRelease("copy", RELEASE_A.pcrs))}, "same PCR values"),
        ({"tenant": "Acme"}, "tenant"),
        ({"partition": "gcp"}, "partition"),
        ({"key_account_id": "1234"}, "12 digits"),
        ({"tenant_principals": ("arn:aws-cn:iam::111111111111:role/x",)}, "IAM ARN"),
    ],
)
def test_unsafe_tenant_specs_are_refused(overrides: dict, reason: str) -> None:
    with pytest.raises(KeyPolicyError, match=reason):
        _spec(**overrides)


@pytest.mark.parametrize(
    ("release_id", "pcrs", "reason"),
    [
        ("has space", {0: PCR0_A}, "release id"),
        ("", {0: PCR0_A}, "release id"),
        ("x" * 65, {0: PCR0_A}, "release id"),
        ("ok", {1: PCR1_A}, "PCR0"),
        ("ok", {0: "0" * 96}, "all zeros"),
        ("ok", {0: PCR0_A[:90]}, "96 hex"),
        ("ok", {32: PCR0_A, 0: PCR0_A}, "index"),
    ],
)
def test_malformed_releases_are_refused(release_id: str, pcrs: dict, reason: str) -> None:
    with pytest.raises(KeyPolicyError, match=reason):
        ApprovedRelease(release_id, pcrs)


def test_too_many_releases_exceed_the_kms_policy_size_limit() -> None:
    releases = tuple(ApprovedRelease(f"r{i}", {n: f"{i + 1:02x}{n:02x}" * 24 for n in (0, 1, 2, 8)}) for i in range(40))
    with pytest.raises(KeyPolicyError, match=str(MAX_POLICY_BYTES)):
        build_tenant_key_policy(_spec(releases=releases))
    assert build_tenant_key_policy(_spec(releases=releases[:10]))  # ten releases at once still fit


# --- properties ---------------------------------------------------------------------------------

_accounts = st.from_regex(r"\A[0-9]{12}\Z")
_names = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")
_pcr_values = st.binary(min_size=48, max_size=48).filter(lambda b: any(b)).map(bytes.hex)
_release_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")


@st.composite
def releases(draw: st.DrawFn) -> tuple[ApprovedRelease, ...]:
    ids = draw(st.lists(_release_ids, min_size=1, max_size=4, unique=True))
    images = draw(st.lists(_pcr_values, min_size=len(ids), max_size=len(ids), unique=True))
    found: list[ApprovedRelease] = []
    for release_id, image in zip(ids, images, strict=True):
        indexes = draw(st.sets(st.sampled_from([1, 2, 3, 4, 8]), max_size=4))
        pcrs = {0: image} | {i: draw(_pcr_values) for i in indexes}
        if draw(st.booleans()):
            pcrs = {i: v.upper() for i, v in pcrs.items()}
        found.append(ApprovedRelease(release_id, pcrs))
    return tuple(found)


@st.composite
def tenant_specs(draw: st.DrawFn) -> TenantKeySpec:
    operator, tenant_account = draw(st.lists(_accounts, min_size=2, max_size=2, unique=True))
    names = draw(st.lists(_names, min_size=2, max_size=8, unique=True))
    arns = [f"arn:aws:iam::{tenant_account}:{draw(st.sampled_from(['user', 'role']))}/{n}" for n in names]
    split = draw(st.integers(min_value=0, max_value=len(arns) - 1))
    parents = tuple(
        f"arn:aws:iam::{operator}:role/parent-{n}" for n in draw(st.lists(_names, min_size=1, max_size=2, unique=True))
    )
    return TenantKeySpec(
        tenant=draw(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,15}\Z")),
        partition="aws",
        key_account_id=tenant_account,
        key_admin_principals=tuple(arns[:split]),
        tenant_principals=tuple(arns[split:]),
        parent_role_arns=parents,
        releases=draw(releases()),
    )


@settings(max_examples=150, deadline=None)
@given(spec=tenant_specs())
def test_any_tenant_policy_round_trips_its_releases(spec: TenantKeySpec) -> None:
    policy = json.loads(json.dumps(build_tenant_key_policy(spec)))
    assert releases_from_key_policy(policy) == spec.releases
    assert build_tenant_key_policy(spec) == build_tenant_key_policy(spec)  # deterministic


@settings(max_examples=150, deadline=None)
@given(spec=tenant_specs())
def test_in_any_tenant_policy_the_operator_account_only_gets_attested_use(spec: TenantKeySpec) -> None:
    for statement in build_tenant_key_policy(spec)["Statement"]:
        operator_principals = [p for p in _principals(statement) if p.split(":")[4] in spec.operator_account_ids]
        if not operator_principals:
            continue
        assert set(operator_principals) <= set(spec.parent_role_arns)
        actions = set(statement["Action"])
        if actions != {"kms:DescribeKey"}:
            assert actions == {"kms:Decrypt", "kms:GenerateDataKey"}
            assert IMAGE_SHA384 in statement["Condition"]["StringEqualsIgnoreCase"]
            assert statement["Condition"]["StringEquals"] == {"kms:EncryptionContext:ccc:tenant": spec.tenant}


# --- the linter on tenant keys: every principal but the owning tenant's is named ----------------

OTHER_TENANT = "arn:aws:iam::333333333333:role/globex-client"
FOREIGN_ACCOUNT = "arn:aws:iam::999999999999:root"


def _result_decrypt_for(principal: str) -> dict:
    return {
        "Sid": "Extra",
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"kms:EncryptionContext:ccc:tenant": "acme", "kms:EncryptionContext:ccc:kind": "result"},
            "ForAllValues:StringEquals": {CONTEXT_KEYS_KEY: ["ccc:job", "ccc:tenant", "ccc:kind"]},
            "Null": {CONTEXT_KEYS_KEY: "false"},
        },
    }


def _add(statement: dict) -> Callable[[dict], None]:
    return lambda policy: policy["Statement"].append(statement)


def _drop_condition(sid_fragment: str, operator: str) -> Callable[[dict], None]:
    def mutate(policy: dict) -> None:
        for statement in policy["Statement"]:
            if sid_fragment in statement["Sid"]:
                del statement["Condition"][operator]

    return mutate


def _drop_context_null(policy: dict) -> None:
    for statement in policy["Statement"]:
        null = statement.get("Condition", {}).get("Null", {})
        null.pop(CONTEXT_KEYS_KEY, None)


TENANT_MUTATIONS: dict[str, tuple[Callable[[dict], None], str, str | None]] = {
    # name: (mutation, rule, the principal the finding must name)
    "parent decrypts results": (_add(_result_decrypt_for(PARENT)), "foreign_reader", PARENT),
    "parent unattested": (_add(_result_decrypt_for(PARENT)), "parent_unattested_use", PARENT),
    "another tenant decrypts": (_add(_result_decrypt_for(OTHER_TENANT)), "foreign_reader", OTHER_TENANT),
    "foreign account decrypts": (_add(_result_decrypt_for(FOREIGN_ACCOUNT)), "foreign_reader", FOREIGN_ACCOUNT),
    "operator root decrypts": (
        _add(_result_decrypt_for(f"arn:aws:iam::{OPERATOR_ACCOUNT}:root")),
        "operator_principal",
        f"arn:aws:iam::{OPERATOR_ACCOUNT}:root",
    ),
    "operator admin manages": (
        _add(
            {
                "Sid": "Operator admin",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/Admin"},
                "Action": ["kms:PutKeyPolicy"],
                "Resource": "*",
            }
        ),
        "operator_principal",
        f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/Admin",
    ),
    "key admin decrypts results": (_add(_result_decrypt_for(ADMIN)), "manager_uses_key", ADMIN),
    "no context key set on inputs": (
        _drop_condition("encrypts its inputs", "ForAllValues:StringEquals"),
        "unpinned_context_keys",
        None,
    ),
    "no context key set on a release": (
        _drop_condition("Approved release", "ForAllValues:StringEquals"),
        "unpinned_context_keys",
        None,
    ),
    "empty context allowed": (_drop_context_null, "unpinned_context_keys", None),
}


@pytest.mark.parametrize("name", sorted(TENANT_MUTATIONS))
def test_each_grant_to_another_principal_is_flagged_by_name(name: str) -> None:
    policy = build_tenant_key_policy(_spec())
    assert lint_key_policy(policy, expected_pcrs=None) == []
    mutate, rule, principal = TENANT_MUTATIONS[name]
    mutate(policy)
    flagged = [f for f in lint_key_policy(policy) if f.rule == rule]
    assert flagged, lint_key_policy(policy)
    if principal is not None:
        assert any(principal in f.message for f in flagged), flagged


def test_declared_owners_catch_a_stranger_with_both_input_and_result_rights() -> None:
    """Inferred ownership (whoever may make inputs) cannot tell a stranger given both halves from the
    tenant; the tenant's own list can."""
    policy = build_tenant_key_policy(_spec())
    for statement in policy["Statement"]:
        if statement["Sid"].startswith("Tenant acme encrypts") or statement["Sid"].startswith("Tenant acme decrypts"):
            statement["Principal"]["AWS"] = [CLIENT, FOREIGN_ACCOUNT]
    assert lint_key_policy(policy, owners={"acme": [CLIENT]}) != []
    rules = {(f.rule, FOREIGN_ACCOUNT in f.message) for f in lint_key_policy(policy, owners={"acme": [CLIENT]})}
    assert {("foreign_reader", True), ("foreign_writer", True)} <= rules


def test_one_principal_for_two_tenants_is_flagged() -> None:
    shared = f"arn:aws:iam::{TENANT_ACCOUNT}:role/shared"
    policy = build_key_policy(
        KeyPolicySpec(
            account_id=OPERATOR_ACCOUNT,
            tenant_principals={"acme": (CLIENT,), "globex": (OTHER_TENANT,)},
            parent_role_arns=(PARENT,),
            pcrs={0: PCR0_A},
        )
    )
    for statement in policy["Statement"]:
        if statement["Sid"].startswith("Tenant globex"):
            statement["Principal"]["AWS"] = [OTHER_TENANT, shared]
        if statement["Sid"].startswith("Tenant acme"):
            statement["Principal"]["AWS"] = [CLIENT, shared]
    assert any(f.rule == "shared_tenant_principal" and shared in f.message for f in lint_key_policy(policy))


@settings(max_examples=100, deadline=None)
@given(spec=tenant_specs())
def test_any_tenant_policy_lints_clean_with_its_owners(spec: TenantKeySpec) -> None:
    policy = json.loads(json.dumps(build_tenant_key_policy(spec)))
    assert lint_key_policy(policy, owners={spec.tenant: spec.tenant_principals}, tenant_key=True) == []


@settings(max_examples=150, deadline=None)
@given(spec=tenant_specs(), name=st.sampled_from(sorted(TENANT_MUTATIONS)))
def test_any_tenant_policy_with_a_foreign_grant_is_flagged(spec: TenantKeySpec, name: str) -> None:
    policy = build_tenant_key_policy(spec)
    mutate, rule, _principal = TENANT_MUTATIONS[name]
    # The fixed principals above belong to the example spec; rename them into this spec's accounts.
    text = json.dumps(policy)
    mutate(policy)
    mutated = json.loads(
        json.dumps(policy)
        .replace(PARENT, spec.parent_role_arns[0])
        .replace(f":{OPERATOR_ACCOUNT}:", f":{spec.operator_account_ids[0]}:")
        .replace(ADMIN, spec.tenant_principals[0] if rule != "manager_uses_key" else spec.key_account_root)
    )
    if json.dumps(mutated) == text:
        return  # the mutation found nothing to change in this spec
    assert rule in {f.rule for f in lint_key_policy(mutated)}
