"""The gateway's request processing (no HTTP): per-tenant keys, key states, grants, KMS error codes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccc.local.iam_users import default_identities, new_identity
from ccc.local.kms.api_error import KmsApiError
from ccc.local.kms.gateway_core import Caller, GatewayCore
from ccc.local.kms.key_store import KeyStore
from ccc_common.domain.key_policy import (
    KeyPolicySpec,
    TenantKeySpec,
    build_key_policy,
    build_tenant_key_policy,
    release_from_pcrs,
)

OPERATOR = "123456789012"
REGION = "us-east-1"
PCRS = {0: "a1" * 48, 1: "b2" * 48, 2: "c3" * 48}
JOB = "0123456789abcdef0123456789abcdef"
INPUT_A = {"ccc:job": JOB, "ccc:tenant": "tenant-a"}
RESULT_A = {**INPUT_A, "ccc:kind": "result"}

IDENTITIES = default_identities(OPERATOR)
TENANT_A_ACCOUNT = IDENTITIES["tenant-a"].account_id
IDENTITIES["key-admin-a"] = new_identity("key-admin-a", f"arn:aws:iam::{TENANT_A_ACCOUNT}:role/key-admin")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Harness:
    def __init__(self, store: KeyStore | None = None) -> None:
        self.core = GatewayCore(IDENTITIES, b"unused: no Recipient in these tests", store=store or KeyStore())
        spec = TenantKeySpec(
            tenant="tenant-a",
            partition="aws",
            key_account_id=TENANT_A_ACCOUNT,
            key_admin_principals=(IDENTITIES["key-admin-a"].principal_arn,),
            tenant_principals=(IDENTITIES["tenant-a"].principal_arn,),
            parent_role_arns=(IDENTITIES["parent"].principal_arn,),
            releases=(release_from_pcrs(PCRS),),
        )
        self.tenant_policy = build_tenant_key_policy(spec)
        self.tenant_key = self.core.store.create_key(
            partition="aws", region=REGION, account=TENANT_A_ACCOUNT, policy=json.dumps(self.tenant_policy)
        ).arn

    def call(self, who: str, operation: str, **params: Any) -> dict[str, Any]:
        caller = Caller(identity=IDENTITIES[who], region=REGION, iam_admin=who == "admin")
        return self.core.handle(operation, caller, params)

    def error(self, who: str, operation: str, **params: Any) -> str:
        with pytest.raises(KmsApiError) as info:
            self.call(who, operation, **params)
        return info.value.error_type

    def input_blob(self, plaintext: bytes = b"image key") -> str:
        answer = self.call(
            "tenant-a", "Encrypt", KeyId=self.tenant_key, Plaintext=_b64(plaintext), EncryptionContext=INPUT_A
        )
        return str(answer["CiphertextBlob"])

    def result_blob(self, plaintext: bytes = b"result key") -> str:
        """What the attested enclave makes (the store's own sealing: the parent needs a document)."""
        from ccc.local.kms import operations

        key = self.core.store.resolve(self.tenant_key, account=OPERATOR, region=REGION)
        answer = operations.encrypt(key, {"Plaintext": _b64(plaintext), "EncryptionContext": RESULT_A})
        return str(answer["CiphertextBlob"])


@pytest.fixture
def h() -> Harness:
    return Harness()


# --- the operator's admin can neither use nor change a tenant's key -----------------------------


ADMIN_ATTEMPTS: list[tuple[str, dict[str, Any]]] = [
    ("PutKeyPolicy", {"PolicyName": "default", "Policy": "{}"}),
    ("CreateGrant", {"GranteePrincipal": IDENTITIES["admin"].principal_arn, "Operations": ["Decrypt"]}),
    ("ScheduleKeyDeletion", {"PendingWindowInDays": 7}),
    ("DisableKey", {}),
    ("EnableKey", {}),
    ("CancelKeyDeletion", {}),
    ("TagResource", {"Tags": [{"TagKey": "owner", "TagValue": "operator"}]}),
    ("UpdateKeyDescription", {"Description": "mine now"}),
    ("GetKeyPolicy", {"PolicyName": "default"}),
    ("DescribeKey", {}),
    ("ListGrants", {}),
    ("Encrypt", {"Plaintext": _b64(b"x"), "EncryptionContext": INPUT_A}),
    ("GenerateDataKey", {"NumberOfBytes": 32, "EncryptionContext": RESULT_A}),
    ("GenerateDataKeyWithoutPlaintext", {"NumberOfBytes": 32, "EncryptionContext": RESULT_A}),
]


@pytest.mark.parametrize(("operation", "params"), ADMIN_ATTEMPTS, ids=[a[0] for a in ADMIN_ATTEMPTS])
@pytest.mark.parametrize("who", ["admin", "tenant-b", "parent"])
def test_nobody_outside_the_tenant_changes_or_uses_its_key(
    h: Harness, who: str, operation: str, params: dict[str, Any]
) -> None:
    if who == "parent" and operation == "DescribeKey":
        return  # the parent role may describe the key (its enclave resolves it), nothing else
    assert h.error(who, operation, KeyId=h.tenant_key, **params) == "AccessDeniedException"


@pytest.mark.parametrize("who", ["admin", "tenant-b", "parent", "key-admin-a"])
def test_nobody_but_the_tenant_decrypts_its_results(h: Harness, who: str) -> None:
    result = h.result_blob()
    assert h.error(who, "Decrypt", CiphertextBlob=result, EncryptionContext=RESULT_A) == "AccessDeniedException"
    assert h.error(who, "Decrypt", CiphertextBlob=h.input_blob(), EncryptionContext=INPUT_A) == (
        "AccessDeniedException"
    )
    assert (
        base64.b64decode(h.call("tenant-a", "Decrypt", CiphertextBlob=result, EncryptionContext=RESULT_A)["Plaintext"])
        == b"result key"
    )


def test_the_admin_cannot_alias_or_re_encrypt_a_tenant_key(h: Harness) -> None:
    other = h.call("admin", "CreateKey")["KeyMetadata"]["Arn"]
    assert h.error("admin", "CreateAlias", AliasName="alias/stolen", TargetKeyId=h.tenant_key) == (
        "AccessDeniedException"
    )
    assert (
        h.error(
            "admin", "ReEncrypt", CiphertextBlob=h.input_blob(), SourceEncryptionContext=INPUT_A, DestinationKeyId=other
        )
        == "AccessDeniedException"
    )


def test_the_tenant_uses_its_key_only_within_its_context_rules(h: Harness) -> None:
    assert h.call("tenant-a", "GenerateDataKey", KeyId=h.tenant_key, NumberOfBytes=32, EncryptionContext=INPUT_A)
    for context in (
        {**INPUT_A, "extra": "x"},  # the context-key set is pinned
        {**INPUT_A, "CCC:TENANT": "tenant-a"},  # a case variant is another key for EncryptionContextKeys
        {"ccc:job": JOB, "ccc:tenant": "tenant-b"},
        RESULT_A,  # a tenant cannot make results
        {},
    ):
        assert (
            h.error("tenant-a", "Encrypt", KeyId=h.tenant_key, Plaintext=_b64(b"x"), EncryptionContext=context)
            == "AccessDeniedException"
        )
    assert json.loads(h.call("tenant-a", "GetKeyPolicy", KeyId=h.tenant_key)["Policy"]) == h.tenant_policy
    assert h.error("tenant-a", "PutKeyPolicy", KeyId=h.tenant_key, Policy=json.dumps(h.tenant_policy)) == (
        "AccessDeniedException"
    )


# --- key states, as KMS -------------------------------------------------------------------------


def test_disable_enable_and_deletion_follow_kms_key_states(h: Harness) -> None:
    blob = h.input_blob()
    h.call("key-admin-a", "DisableKey", KeyId=h.tenant_key)
    assert h.call("key-admin-a", "DescribeKey", KeyId=h.tenant_key)["KeyMetadata"]["KeyState"] == "Disabled"
    assert h.error("tenant-a", "Encrypt", KeyId=h.tenant_key, Plaintext=_b64(b"x"), EncryptionContext=INPUT_A) == (
        "DisabledException"
    )
    h.call("key-admin-a", "EnableKey", KeyId=h.tenant_key)
    h.input_blob()
    scheduled = h.call("key-admin-a", "ScheduleKeyDeletion", KeyId=h.tenant_key, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
    assert h.error("key-admin-a", "EnableKey", KeyId=h.tenant_key) == "KMSInvalidStateException"
    assert h.error("key-admin-a", "ScheduleKeyDeletion", KeyId=h.tenant_key) == "KMSInvalidStateException"
    assert h.error("tenant-a", "Encrypt", KeyId=h.tenant_key, Plaintext=_b64(b"x"), EncryptionContext=INPUT_A) == (
        "KMSInvalidStateException"
    )
    assert h.error("tenant-a", "Decrypt", CiphertextBlob=blob, EncryptionContext=INPUT_A) == "AccessDeniedException"
    h.call("key-admin-a", "CancelKeyDeletion", KeyId=h.tenant_key)
    assert h.call("key-admin-a", "DescribeKey", KeyId=h.tenant_key)["KeyMetadata"]["KeyState"] == "Disabled"
    h.call("key-admin-a", "EnableKey", KeyId=h.tenant_key)
    h.input_blob()
    assert h.error("key-admin-a", "ScheduleKeyDeletion", KeyId=h.tenant_key, PendingWindowInDays=3) == (
        "ValidationException"
    )


def test_the_tenant_key_admin_may_manage_but_not_lock_itself_out(h: Harness) -> None:
    lockout = {**h.tenant_policy, "Statement": [s for s in h.tenant_policy["Statement"] if "manage" not in s["Sid"]]}
    assert h.error("key-admin-a", "PutKeyPolicy", KeyId=h.tenant_key, Policy=json.dumps(lockout)) == (
        "MalformedPolicyDocumentException"
    )
    h.call("key-admin-a", "PutKeyPolicy", KeyId=h.tenant_key, Policy=json.dumps(h.tenant_policy))
    h.call("key-admin-a", "TagResource", KeyId=h.tenant_key, Tags=[{"TagKey": "a", "TagValue": "b"}])
    assert h.call("key-admin-a", "ListResourceTags", KeyId=h.tenant_key)["Tags"] == [{"TagKey": "a", "TagValue": "b"}]


# --- grants: honoured after the key policy, constrained by context -------------------------------


def _granting_policy(h: Harness) -> dict[str, Any]:
    policy = json.loads(json.dumps(h.tenant_policy))
    policy["Statement"].append(
        {
            "Sid": "key admin may grant",
            "Effect": "Allow",
            "Principal": {"AWS": IDENTITIES["key-admin-a"].principal_arn},
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": "*",
        }
    )
    return policy


def test_a_grant_lets_its_grantee_decrypt_only_within_its_constraints(h: Harness) -> None:
    h.call("key-admin-a", "PutKeyPolicy", KeyId=h.tenant_key, Policy=json.dumps(_granting_policy(h)))
    result = h.result_blob()
    grantee = IDENTITIES["tenant-b"].principal_arn
    grant = h.call(
        "key-admin-a",
        "CreateGrant",
        KeyId=h.tenant_key,
        GranteePrincipal=grantee,
        Operations=["Decrypt"],
        Constraints={"EncryptionContextSubset": {"CCC:KIND": "result"}},  # grant keys: case-insensitive
    )
    assert h.call("tenant-b", "Decrypt", CiphertextBlob=result, EncryptionContext=RESULT_A)["Plaintext"]
    assert h.error("tenant-b", "Decrypt", CiphertextBlob=h.input_blob(), EncryptionContext=INPUT_A) == (
        "AccessDeniedException"
    )
    assert [g["GrantId"] for g in h.call("key-admin-a", "ListGrants", KeyId=h.tenant_key)["Grants"]] == [
        grant["GrantId"]
    ]
    h.call("key-admin-a", "RevokeGrant", KeyId=h.tenant_key, GrantId=grant["GrantId"])
    assert h.error("tenant-b", "Decrypt", CiphertextBlob=result, EncryptionContext=RESULT_A) == "AccessDeniedException"


def test_an_explicit_deny_beats_a_grant(h: Harness) -> None:
    policy = _granting_policy(h)
    policy["Statement"].append(
        {
            "Sid": "never tenant-b",
            "Effect": "Deny",
            "Principal": {"AWS": IDENTITIES["tenant-b"].principal_arn},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    h.call("key-admin-a", "PutKeyPolicy", KeyId=h.tenant_key, Policy=json.dumps(policy))
    h.call(
        "key-admin-a",
        "CreateGrant",
        KeyId=h.tenant_key,
        GranteePrincipal=IDENTITIES["tenant-b"].principal_arn,
        Operations=["Decrypt"],
    )
    assert h.error("tenant-b", "Decrypt", CiphertextBlob=h.result_blob(), EncryptionContext=RESULT_A) == (
        "AccessDeniedException"
    )


# --- operations and errors as KMS answers them ---------------------------------------------------


def test_re_encrypt_needs_both_from_and_to(h: Harness) -> None:
    own = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OPERATOR}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    first = h.call("admin", "CreateKey", Policy=json.dumps(own))["KeyMetadata"]["Arn"]
    second = h.call("admin", "CreateKey")["KeyMetadata"]["Arn"]  # KMS's default policy: the root, via IAM
    blob = h.call("admin", "Encrypt", KeyId=first, Plaintext=_b64(b"p"), EncryptionContext={"a": "1"})["CiphertextBlob"]
    moved = h.call(
        "admin",
        "ReEncrypt",
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "1"},
        DestinationKeyId=second,
        DestinationEncryptionContext={"b": "2"},
    )
    assert moved["SourceKeyId"] == first and moved["KeyId"] == second
    back = h.call("admin", "Decrypt", CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"b": "2"})
    assert base64.b64decode(back["Plaintext"]) == b"p"
    assert (
        h.error(
            "admin", "ReEncrypt", CiphertextBlob=blob, SourceEncryptionContext={"a": "1"}, DestinationKeyId=h.tenant_key
        )
        == "AccessDeniedException"
    )


def test_kms_error_codes(h: Harness) -> None:
    blob = h.input_blob()
    missing = f"arn:aws:kms:{REGION}:{TENANT_A_ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    assert h.error("tenant-a", "DescribeKey", KeyId=missing) == "NotFoundException"
    assert h.error("admin", "DescribeKey", KeyId="alias/nope") == "NotFoundException"
    assert h.error("tenant-a", "Decrypt", CiphertextBlob=_b64(b"not a blob"), EncryptionContext=INPUT_A) == (
        "InvalidCiphertextException"
    )
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    assert h.error("parent", "Decrypt", CiphertextBlob=_b64(bytes(raw)), EncryptionContext=INPUT_A) == (
        "AccessDeniedException"  # authorised before the blob is opened: no oracle for the unauthorised
    )
    other = h.call("admin", "CreateKey")["KeyMetadata"]["Arn"]
    assert h.error("tenant-a", "Decrypt", CiphertextBlob=blob, KeyId=other, EncryptionContext=INPUT_A) == (
        "IncorrectKeyException"
    )
    assert (
        h.error("tenant-a", "GenerateDataKey", KeyId=h.tenant_key, NumberOfBytes=2000, EncryptionContext=INPUT_A)
        == "ValidationException"
    )
    assert (
        h.error("tenant-a", "Encrypt", KeyId=h.tenant_key, Plaintext=_b64(bytes(4097)), EncryptionContext=INPUT_A)
        == "ValidationException"
    )
    assert h.error("tenant-a", "GetKeyPolicy", KeyId=h.tenant_key, PolicyName="other") == "NotFoundException"
    assert h.error("tenant-a", "Sign", KeyId=h.tenant_key) == "UnsupportedOperationException"
    assert h.error("tenant-a", "CreateKey") == "AccessDeniedException"
    assert h.error("admin", "CreateKey", KeySpec="RSA_2048") == "UnsupportedOperationException"
    assert h.error(
        "admin",
        "CreateKey",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
            }
        ),
    ) == ("MalformedPolicyDocumentException")


def test_keys_and_aliases_survive_a_gateway_restart(tmp_path: Any) -> None:
    path = tmp_path / "keys.json"
    first = Harness(KeyStore(path))
    blob = first.input_blob(b"kept")
    first.call("admin", "CreateKey")
    assert path.stat().st_mode & 0o077 == 0  # it holds key material
    second = Harness.__new__(Harness)
    second.core = GatewayCore(IDENTITIES, b"unused", store=KeyStore(path))
    second.tenant_key, second.tenant_policy = first.tenant_key, first.tenant_policy
    key = second.core.store.resolve(first.tenant_key, account=OPERATOR, region=REGION)
    assert key.policy == json.dumps(first.tenant_policy)
    assert len(second.call("admin", "ListKeys")["Keys"]) == 1  # the admin's own account holds one key
    from ccc.local.kms import operations

    _, plaintext = operations.decrypt(key, {"CiphertextBlob": blob, "EncryptionContext": INPUT_A})
    assert plaintext == b"kept"


def test_the_shared_operator_key_refuses_a_smuggled_result_context() -> None:
    """The concrete attack: with moto's binding, tenant-b (allowed to make inputs only) made a
    ciphertext that decrypted as a *result* of its job. Canonical binding: InvalidCiphertext."""
    h = Harness()
    spec = KeyPolicySpec(
        account_id=OPERATOR,
        admin_principals=(IDENTITIES["admin"].principal_arn,),
        tenant_principals={t: (IDENTITIES[t].principal_arn,) for t in ("tenant-a", "tenant-b")},
        parent_role_arns=(IDENTITIES["parent"].principal_arn,),
        pcrs=PCRS,
    )
    shared = h.call("admin", "CreateKey", Policy=json.dumps(build_key_policy(spec)))["KeyMetadata"]["Arn"]
    smuggled = {"ccc:job": JOB, "ccc:kin": "dresult", "ccc:tenant": "tenant-b"}
    blob = h.call("tenant-b", "Encrypt", KeyId=shared, Plaintext=_b64(b"forged"), EncryptionContext=smuggled)
    as_result = {"ccc:job": JOB, "ccc:kind": "result", "ccc:tenant": "tenant-b"}
    assert h.error("tenant-b", "Decrypt", CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=as_result) == (
        "InvalidCiphertextException"
    )


# One gateway and one key with KMS's default policy (the operator account's root, via IAM: any
# context is allowed), shared by the examples below so that only the binding is under test.
_SHARED = Harness()
_SHARED_KEY = str(_SHARED.call("admin", "CreateKey")["KeyMetadata"]["Arn"])


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="ck:-á\x00", min_size=1, max_size=5), st.text(alphabet="ck:-á", max_size=5), max_size=3
    ),
    st.dictionaries(
        st.text(alphabet="ck:-á\x00", min_size=1, max_size=5), st.text(alphabet="ck:-á", max_size=5), max_size=3
    ),
)
def test_through_the_gateway_a_ciphertext_opens_only_under_its_own_context(
    first: dict[str, str], second: dict[str, str]
) -> None:
    h, key = _SHARED, _SHARED_KEY
    blob = h.call("admin", "Encrypt", KeyId=key, Plaintext=_b64(b"p"), EncryptionContext=first)["CiphertextBlob"]
    if first == second:
        assert h.call("admin", "Decrypt", CiphertextBlob=blob, EncryptionContext=second)["Plaintext"] == _b64(b"p")
    else:
        assert h.error("admin", "Decrypt", CiphertextBlob=blob, EncryptionContext=second) == (
            "InvalidCiphertextException"
        )
