"""The one key-policy builder and its linter: safe by construction, and every unsafe edit is caught."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc_common.domain.key_policy import (
    ADMIN_ACTIONS,
    IMAGE_SHA384,
    MAX_POLICY_BYTES,
    RULES,
    KeyPolicyError,
    KeyPolicySpec,
    build_key_policy,
    lint_key_policy,
)

ACCOUNT = "111122223333"
PCR0 = "ab" * 48
PCR1 = "cd" * 48
PCR2 = "ef" * 48
PCR8 = "12" * 48


def _spec(**overrides: Any) -> KeyPolicySpec:
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "admin_principals": (f"arn:aws:iam::{ACCOUNT}:role/ccc-admin",),
        "tenant_principals": {
            "tenant-a": (f"arn:aws:iam::{ACCOUNT}:role/tenant-a",),
            "tenant-b": ("arn:aws:iam::444455556666:user/bob",),
        },
        "parent_role_arns": (f"arn:aws:iam::{ACCOUNT}:role/ccc-parent",),
        "pcrs": {0: PCR0, 1: PCR1, 2: PCR2, 8: PCR8},
    }
    values.update(overrides)
    return KeyPolicySpec(**values)


def _by_sid(policy: dict, fragment: str) -> dict:
    matches = [s for s in policy["Statement"] if fragment in s["Sid"]]
    assert len(matches) == 1, fragment
    return matches[0]


def _rules(findings: list) -> set[str]:
    return {f.rule for f in findings}


# --- builder ------------------------------------------------------------------------------------


def test_built_policy_has_the_promised_shape() -> None:
    policy = build_key_policy(_spec())
    assert policy["Version"] == "2012-10-17"
    enclave = _by_sid(policy, "attested enclave")
    assert enclave["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ccc-parent"}
    assert sorted(enclave["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert enclave["Condition"] == {
        "StringEqualsIgnoreCase": {
            IMAGE_SHA384: PCR0,
            "kms:RecipientAttestation:PCR1": PCR1,
            "kms:RecipientAttestation:PCR2": PCR2,
            "kms:RecipientAttestation:PCR8": PCR8,
        }
    }
    results = _by_sid(policy, "tenant-a decrypts")
    assert results["Action"] == ["kms:Decrypt"]
    assert results["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:ccc:tenant": "tenant-a", "kms:EncryptionContext:ccc:kind": "result"}
    }
    inputs = _by_sid(policy, "tenant-b encrypts")
    assert inputs["Principal"] == {"AWS": "arn:aws:iam::444455556666:user/bob"}
    assert inputs["Condition"]["StringEquals"] == {"kms:EncryptionContext:ccc:tenant": "tenant-b"}
    assert inputs["Condition"]["Null"] == {"kms:EncryptionContext:ccc:kind": "true"}
    json.dumps(policy)  # plain JSON types only


def test_admins_and_root_manage_but_never_get_key_material() -> None:
    policy = build_key_policy(_spec())
    for fragment in ("root", "administrators"):
        statement = _by_sid(policy, fragment)
        assert statement["Action"] == list(ADMIN_ACTIONS)
        assert "Condition" not in statement
        lowered = {a.lower() for a in statement["Action"]}
        for forbidden in ("kms:decrypt", "kms:generatedatakey", "kms:reencryptfrom", "kms:creategrant", "kms:*"):
            assert forbidden not in lowered
        assert not any("*" in a for a in statement["Action"])
    root = _by_sid(policy, "root")
    assert root["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert "kms:PutKeyPolicy" in root["Action"]  # no lockout


def test_build_is_deterministic_and_pcr_hex_is_normalised() -> None:
    upper = _spec(pcrs={0: PCR0.upper()})
    assert build_key_policy(upper) == build_key_policy(_spec(pcrs={0: PCR0}))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"pcrs": {0: "00" * 48}}, "all zeros"),
        ({"pcrs": {0: PCR0, 1: "0" * 96}}, "all zeros"),
        ({"pcrs": {1: PCR1}}, "PCR0"),
        ({"pcrs": {0: PCR0[:-2]}}, "96 hex"),
        ({"pcrs": {0: "zz" * 48}}, "96 hex"),
        ({"pcrs": {0: PCR0, 32: PCR1}}, "index"),
        ({"pcrs": {0: PCR0, True: PCR1}}, "index"),
        ({"pcrs": {0: bytes.fromhex(PCR0)}}, "96 hex"),
        ({"account_id": "12345"}, "12 digits"),
        ({"partition": "gcp"}, "partition"),
        ({"parent_role_arns": ()}, "parent"),
        ({"parent_role_arns": (f"arn:aws:iam::{ACCOUNT}:user/someone",)}, "must be an IAM role"),
        ({"parent_role_arns": f"arn:aws:iam::{ACCOUNT}:role/p"}, "sequence"),
        ({"admin_principals": ("*",)}, "IAM ARN"),
        ({"admin_principals": (f"arn:aws-cn:iam::{ACCOUNT}:role/x",)}, "IAM ARN"),
        ({"admin_principals": (f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y",)}, "IAM ARN"),
        ({"tenant_principals": {"Tenant_A": (f"arn:aws:iam::{ACCOUNT}:role/t",)}}, "tenant id"),
        ({"tenant_principals": {"tenant-a": ()}}, "no principals"),
        (
            {"tenant_principals": {"tenant-a": (f"arn:aws:iam::{ACCOUNT}:role/ccc-admin",)}},
            "both admin and tenant",
        ),
        (
            {
                "tenant_principals": {
                    "tenant-a": (f"arn:aws:iam::{ACCOUNT}:role/shared",),
                    "tenant-b": (f"arn:aws:iam::{ACCOUNT}:role/shared",),
                }
            },
            "both tenant",
        ),
        ({"admin_principals": (f"arn:aws:iam::{ACCOUNT}:role/ccc-parent",)}, "both admin and parent"),
    ],
)
def test_unsafe_or_malformed_specs_are_refused(overrides: dict, reason: str) -> None:
    with pytest.raises(KeyPolicyError, match=reason):
        _spec(**overrides)


def test_policy_over_the_kms_size_limit_is_refused() -> None:
    many = {f"t{i}": (f"arn:aws:iam::{ACCOUNT}:role/{'x' * 200}-{i}",) for i in range(120)}
    with pytest.raises(KeyPolicyError, match=str(MAX_POLICY_BYTES)):
        build_key_policy(_spec(tenant_principals=many))


def test_spec_without_tenants_or_admins_is_valid_and_lints_clean() -> None:
    spec = _spec(admin_principals=(), tenant_principals={}, pcrs={0: PCR0})
    policy = build_key_policy(spec)
    assert lint_key_policy(policy, expected_pcrs={0: PCR0}) == []


# --- linter on hand-written policies ------------------------------------------------------------


def test_the_aws_default_key_policy_is_flagged() -> None:
    default = {
        "Version": "2012-10-17",
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
    assert _rules(lint_key_policy(default)) == {
        "wildcard_action",
        "unattested_key_release",
        "unconstrained_data_key",
        "manager_uses_key",
    }


def test_linter_accepts_json_text_and_reports_garbage() -> None:
    policy = build_key_policy(_spec())
    assert lint_key_policy(json.dumps(policy), expected_pcrs={0: PCR0, 1: PCR1, 2: PCR2, 8: PCR8}) == []
    garbage_inputs: list[object] = ["{", "[]", 7, None, {"Statement": []}, {"Statement": ["x"]}]
    garbage_inputs.append({"Statement": [{"Effect": "Maybe"}]})
    for garbage in garbage_inputs:
        assert "malformed_policy" in _rules(lint_key_policy(garbage))


def test_expected_pcrs_given_but_no_enclave_statement() -> None:
    policy = build_key_policy(_spec())
    policy["Statement"] = [s for s in policy["Statement"] if "enclave" not in s["Sid"]]
    assert "no_attested_statement" in _rules(lint_key_policy(policy, expected_pcrs={0: PCR0}))
    assert lint_key_policy(policy) == []


def test_every_rule_has_a_description() -> None:
    assert all(RULES.values())


# --- mutations: each unsafe edit of a built policy is flagged with the right rule ---------------


def _enclave(policy: dict) -> dict:
    return _by_sid(policy, "attested enclave")


def _drop_attestation(p: dict) -> None:
    del _enclave(p)["Condition"]


def _zero_pcr(p: dict) -> None:
    _enclave(p)["Condition"]["StringEqualsIgnoreCase"]["kms:RecipientAttestation:PCR1"] = "0" * 96


def _zero_image(p: dict) -> None:
    _enclave(p)["Condition"]["StringEqualsIgnoreCase"][IMAGE_SHA384] = "0" * 96


def _drop_image(p: dict) -> None:
    del _enclave(p)["Condition"]["StringEqualsIgnoreCase"][IMAGE_SHA384]


def _weak_operator(p: dict) -> None:
    cond = _enclave(p)["Condition"]
    cond["StringLike"] = cond.pop("StringEqualsIgnoreCase")


def _if_exists_operator(p: dict) -> None:
    cond = _enclave(p)["Condition"]
    cond["StringEqualsIgnoreCaseIfExists"] = cond.pop("StringEqualsIgnoreCase")


def _kms_star_for_admins(p: dict) -> None:
    _by_sid(p, "administrators")["Action"] = "kms:*"


def _decrypt_for_admins(p: dict) -> None:
    _by_sid(p, "administrators")["Action"].append("kms:Decrypt")


def _grant_for_root(p: dict) -> None:
    _by_sid(p, "root")["Action"].append("kms:Create*")


def _reencrypt_wildcard(p: dict) -> None:
    _by_sid(p, "root")["Action"].append("kms:ReEncrypt*")


def _tenant_decrypts_inputs(p: dict) -> None:
    del _by_sid(p, "tenant-a decrypts")["Condition"]["StringEquals"]["kms:EncryptionContext:ccc:kind"]


def _tenant_forges_results(p: dict) -> None:
    del _by_sid(p, "tenant-a encrypts")["Condition"]["Null"]


def _tenant_any_tenant(p: dict) -> None:
    _by_sid(p, "tenant-b encrypts")["Condition"]["StringEquals"]["kms:EncryptionContext:ccc:tenant"] = "*"


def _not_principal(p: dict) -> None:
    st_ = _by_sid(p, "tenant-a encrypts")
    st_["NotPrincipal"] = st_.pop("Principal")


def _not_action(p: dict) -> None:
    _by_sid(p, "root")["NotAction"] = "kms:Decrypt"


def _star_principal(p: dict) -> None:
    _by_sid(p, "describe")["Principal"] = "*"


def _attested_star_principal(p: dict) -> None:
    _enclave(p)["Principal"] = "*"  # attestation says which enclave, not whose


def _other_image(p: dict) -> None:
    _enclave(p)["Condition"]["StringEqualsIgnoreCase"][IMAGE_SHA384] = "99" * 48


def _short_pcr(p: dict) -> None:
    _enclave(p)["Condition"]["StringEqualsIgnoreCase"]["kms:RecipientAttestation:PCR2"] = PCR2[:90]


def _extra_unattested_statement(p: dict) -> None:
    p["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ccc-parent"},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
        }
    )


def _result_reader(principal_of: Callable[[dict], Any]) -> Callable[[dict], None]:
    """Issue 11: an extra statement letting someone decrypt tenant-a's results used to lint clean."""

    def mutate(p: dict) -> None:
        p["Statement"].append(
            {
                "Sid": "Extra reader",
                "Effect": "Allow",
                "Principal": {"AWS": principal_of(p)},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:EncryptionContext:ccc:tenant": "tenant-a",
                        "kms:EncryptionContext:ccc:kind": "result",
                    }
                },
            }
        )

    return mutate


MUTATIONS: dict[str, tuple[Callable[[dict], None], str]] = {
    "drop attestation": (_drop_attestation, "unattested_key_release"),
    "zero PCR1": (_zero_pcr, "zero_pcr"),
    "zero image": (_zero_image, "zero_pcr"),
    "drop ImageSha384": (_drop_image, "missing_image_sha384"),
    "StringLike on PCRs": (_weak_operator, "weak_attestation_operator"),
    "IfExists on PCRs": (_if_exists_operator, "weak_attestation_operator"),
    "kms:* for admins": (_kms_star_for_admins, "wildcard_action"),
    "Decrypt for admins": (_decrypt_for_admins, "unattested_key_release"),
    "Create* for root": (_grant_for_root, "unattested_key_release"),
    "ReEncrypt* for root": (_reencrypt_wildcard, "unattested_key_release"),
    "tenant decrypts inputs": (_tenant_decrypts_inputs, "unattested_key_release"),
    "tenant forges results": (_tenant_forges_results, "unconstrained_data_key"),
    "tenant wildcard": (_tenant_any_tenant, "unconstrained_data_key"),
    "NotPrincipal": (_not_principal, "not_element"),
    "NotAction": (_not_action, "not_element"),
    "star principal": (_star_principal, "wildcard_principal"),
    "attested star principal": (_attested_star_principal, "wildcard_principal"),
    "other image": (_other_image, "pcr_mismatch"),
    "short PCR": (_short_pcr, "malformed_pcr"),
    "extra unattested statement": (_extra_unattested_statement, "unattested_key_release"),
    "parent reads tenant-a results": (_result_reader(lambda p: _enclave(p)["Principal"]["AWS"]), "foreign_reader"),
    "tenant-b reads tenant-a results": (
        _result_reader(lambda p: _by_sid(p, "tenant-b encrypts")["Principal"]["AWS"]),
        "foreign_reader",
    ),
    "foreign account reads tenant-a results": (
        _result_reader(lambda p: "arn:aws:iam::999999999999:root"),
        "foreign_reader",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_mutation_is_flagged_with_its_rule(name: str) -> None:
    spec = _spec()
    policy = build_key_policy(spec)
    mutate, rule = MUTATIONS[name]
    mutate(policy)
    findings = lint_key_policy(policy, expected_pcrs=spec.pcrs)
    assert rule in _rules(findings), findings
    assert all(f.message for f in findings)


# --- properties ---------------------------------------------------------------------------------

_accounts = st.from_regex(r"\A[0-9]{12}\Z")
_names = st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")
_tenants = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,15}\Z")
_pcr_values = st.binary(min_size=48, max_size=48).filter(lambda b: any(b)).map(bytes.hex)


@st.composite
def specs(draw: st.DrawFn, *, full: bool = False) -> KeyPolicySpec:
    """Random valid specs; `full` guarantees an admin, tenants a and b, and PCR1/PCR2 (mutation targets)."""
    account = draw(_accounts)
    names = draw(st.lists(_names, min_size=3, max_size=12, unique=True))
    arns = [f"arn:aws:iam::{draw(_accounts)}:{draw(st.sampled_from(['user', 'role']))}/{n}" for n in names]
    parent = f"arn:aws:iam::{account}:role/parent-{draw(_names)}"
    n_admins = draw(st.integers(min_value=1 if full else 0, max_value=len(arns) - (2 if full else 0)))
    admins, rest = arns[:n_admins], arns[n_admins:]
    tenant_ids = draw(st.lists(_tenants, max_size=len(rest), unique=True))
    if full:
        tenant_ids = ["tenant-a", "tenant-b", *(t for t in tenant_ids if t not in ("tenant-a", "tenant-b"))]
        tenant_ids = tenant_ids[: len(rest)]
    tenants = {t: (rest[i],) for i, t in enumerate(tenant_ids)}
    pcr_indexes = draw(st.sets(st.sampled_from([1, 2, 3, 4, 8]), max_size=4)) | ({0, 1, 2} if full else {0})
    pcrs = {i: draw(_pcr_values) for i in pcr_indexes}
    if draw(st.booleans()):
        pcrs = {i: v.upper() for i, v in pcrs.items()}
    return KeyPolicySpec(
        account_id=account,
        admin_principals=tuple(admins),
        tenant_principals=tenants,
        parent_role_arns=(parent,),
        pcrs=pcrs,
    )


@settings(max_examples=150, deadline=None)
@given(spec=specs())
def test_any_built_policy_lints_clean(spec: KeyPolicySpec) -> None:
    policy = build_key_policy(spec)
    assert lint_key_policy(policy, expected_pcrs=spec.pcrs) == []
    assert lint_key_policy(json.loads(json.dumps(policy))) == []


@settings(max_examples=200, deadline=None)
@given(spec=specs(full=True), name=st.sampled_from(sorted(MUTATIONS)))
def test_any_mutated_policy_is_flagged(spec: KeyPolicySpec, name: str) -> None:
    policy = build_key_policy(spec)
    assert lint_key_policy(policy, expected_pcrs=spec.pcrs) == []
    mutate, rule = MUTATIONS[name]
    mutated = copy.deepcopy(policy)
    mutate(mutated)
    assert rule in _rules(lint_key_policy(mutated, expected_pcrs=spec.pcrs))
