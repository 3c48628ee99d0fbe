"""The tenant key policy *evaluated* (by the local gateway's IAM evaluator, the same documents AWS gets):
who may do what, request by request, including the context-key set and the empty-context hole."""

from __future__ import annotations

from typing import Any

import pytest

from ccc.local.kms.policy_eval import RequestContext, evaluate
from ccc_common.domain.key_policy import ApprovedRelease, TenantKeySpec, build_tenant_key_policy

TENANT_ACCOUNT = "111111111111"
OPERATOR_ACCOUNT = "222222222222"
KEY = f"arn:aws:kms:eu-west-1:{TENANT_ACCOUNT}:key/0b5c2f39-1f51-4a1e-9b0e-6d1f3f0a9c11"
CLIENT = f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-client"
ADMIN = f"arn:aws:iam::{TENANT_ACCOUNT}:role/acme-key-admin"
PARENT = f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/ccc-parent"
OPERATOR_ADMIN = f"arn:aws:iam::{OPERATOR_ACCOUNT}:role/Admin"
OTHER_TENANT = "arn:aws:iam::333333333333:role/globex-client"
OLD = ApprovedRelease("old", {0: "a1" * 48, 1: "a2" * 48})
NEW = ApprovedRelease("new", {0: "b1" * 48, 1: "a2" * 48})
POLICY = build_tenant_key_policy(
    TenantKeySpec(
        tenant="acme",
        partition="aws",
        key_account_id=TENANT_ACCOUNT,
        key_admin_principals=(ADMIN,),
        tenant_principals=(CLIENT,),
        parent_role_arns=(PARENT,),
        releases=(OLD, NEW),
    )
)
JOB = "0123456789abcdef0123456789abcdef"
INPUT = {"ccc:job": JOB, "ccc:tenant": "acme", "aws-crypto-public-key": "A0B1"}
RESULT = {"ccc:job": JOB, "ccc:tenant": "acme", "ccc:kind": "result", "aws-crypto-public-key": "A0B1"}


def _attestation(release: ApprovedRelease) -> dict[str, str]:
    values = {f"PCR{i}": v for i, v in release.pcrs.items()}
    values["ImageSha384"] = release.pcrs[0]
    return values


def _allowed(principal: str, action: str, *, iam_allows: bool = False, **kwargs: Any) -> bool:
    request = RequestContext(
        principal_arn=principal,
        caller_account=principal.split(":")[4],
        action=action,
        resource_arn=KEY,
        iam_allows=iam_allows,
        **kwargs,
    )
    return evaluate(POLICY, request).allowed


def test_the_tenant_encrypts_inputs_and_decrypts_results_only() -> None:
    assert _allowed(CLIENT, "kms:GenerateDataKey", encryption_context=INPUT)
    assert _allowed(CLIENT, "kms:Decrypt", encryption_context=RESULT)
    assert not _allowed(CLIENT, "kms:Decrypt", encryption_context=INPUT)  # cannot read an input back
    assert not _allowed(CLIENT, "kms:GenerateDataKey", encryption_context=RESULT)  # cannot forge a result
    assert _allowed(CLIENT, "kms:GetKeyPolicy")  # can audit what the key releases to
    assert not _allowed(CLIENT, "kms:PutKeyPolicy")


@pytest.mark.parametrize(
    "context",
    [
        {**INPUT, "x": "y"},  # an extra key
        {"ccc:job": JOB, "CCC:TENANT": "acme", "ccc:tenant": "acme"},  # a case variant next to the real key
        {"ccc:job": JOB, "CCC:TENANT": "acme"},  # a case variant instead of it
        {"ccc:tenant": "acme"},  # no job
        {},  # no context: ForAllValues over an empty set is true, the Null check is not
        {**INPUT, "ccc:tenant": "globex"},
    ],
)
def test_any_other_context_is_refused_for_everyone(context: dict[str, str]) -> None:
    assert not _allowed(CLIENT, "kms:GenerateDataKey", encryption_context=context)
    assert not _allowed(PARENT, "kms:Decrypt", encryption_context=context, attestation=_attestation(NEW))


def test_the_parent_gets_key_material_for_either_approved_release_and_nothing_else() -> None:
    for release in (OLD, NEW):
        assert _allowed(PARENT, "kms:Decrypt", encryption_context=INPUT, attestation=_attestation(release))
        assert _allowed(PARENT, "kms:GenerateDataKey", encryption_context=RESULT, attestation=_attestation(release))
    leaking = ApprovedRelease("leaking", {0: "c1" * 48, 1: "a2" * 48})
    assert not _allowed(PARENT, "kms:Decrypt", encryption_context=INPUT, attestation=_attestation(leaking))
    mixed = {**_attestation(NEW), "PCR1": "ff" * 48}  # right image, wrong PCR1
    assert not _allowed(PARENT, "kms:Decrypt", encryption_context=INPUT, attestation=mixed)
    assert not _allowed(PARENT, "kms:Decrypt", encryption_context=INPUT)  # no attestation
    assert not _allowed(PARENT, "kms:PutKeyPolicy", attestation=_attestation(NEW))


def test_the_operator_account_and_other_tenants_get_nothing_even_with_iam_admin() -> None:
    for principal in (OPERATOR_ADMIN, f"arn:aws:iam::{OPERATOR_ACCOUNT}:root", OTHER_TENANT):
        for action, context in (("kms:Decrypt", RESULT), ("kms:GenerateDataKey", INPUT), ("kms:PutKeyPolicy", {})):
            assert not _allowed(principal, action, iam_allows=True, encryption_context=context), (principal, action)


def test_the_tenants_admins_manage_but_never_use() -> None:
    assert _allowed(ADMIN, "kms:PutKeyPolicy")
    assert _allowed(ADMIN, "kms:ScheduleKeyDeletion")
    assert not _allowed(ADMIN, "kms:Decrypt", encryption_context=RESULT)
    assert not _allowed(ADMIN, "kms:CreateGrant")
