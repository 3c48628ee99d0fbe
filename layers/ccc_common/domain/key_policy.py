"""The KMS key policy of the CCC data key: one builder, one linter, used by every tier.

Why one function: the key policy *is* the security boundary. CDK deploys it, the local stack puts
it on the moto key and the local attested-KMS gateway enforces it. If each built its own, the
tiers would drift and a local test would prove nothing about AWS.

The policy (see docs/kms.md for the reasoning):

* account root: only the key-management actions (never `kms:*`), so the key can never become
  unmanageable (the "default key policy" lockout problem) yet IAM cannot hand out decryption;
* administrators: the same management actions, never Decrypt / ReEncrypt / GenerateDataKey*,
  and no `kms:CreateGrant` (a grant would bypass every condition below);
* each tenant's principals: Encrypt / GenerateDataKey* only for *inputs* of their own tenant
  (`ccc:tenant` == tenant and no `ccc:kind` key), and Decrypt only of their own *results*
  (`ccc:tenant` == tenant and `ccc:kind` == "result");
* the parent instance role(s): Decrypt and GenerateDataKey only with `StringEqualsIgnoreCase`
  on `kms:RecipientAttestation:ImageSha384` (= PCR0) and `PCR<n>` for every other given PCR,
  i.e. only an attested enclave running the measured image gets key material, wrapped for it;
* DescribeKey for every named principal.

Pure standard library: the Lambdas, CDK and the local stack all import it.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ccc_common.errors import CommonError
from ccc_core.identity import CTX_JOB, CTX_KIND, CTX_TENANT, KIND_RESULT, NamingError, validate_tenant

POLICY_VERSION = "2012-10-17"
MAX_POLICY_BYTES = 32768  # KMS key policy size limit

# Management only. Explicit names instead of `kms:Create*`-style wildcards: `Create*` covers
# kms:CreateGrant, and a grant bypasses the key policy's attestation conditions.
ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
TENANT_INPUT_ACTIONS: tuple[str, ...] = ("kms:Encrypt", "kms:GenerateDataKey")
TENANT_RESULT_ACTIONS: tuple[str, ...] = ("kms:Decrypt",)
ENCLAVE_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:GenerateDataKey")

# Actions that hand out key material or the power to obtain it.
KEY_RELEASE_ACTIONS: tuple[str, ...] = (
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:CreateGrant",
)
# Actions that create ciphertext under a chosen context: harmless for inputs, forgery for results.
DATA_KEY_ACTIONS: tuple[str, ...] = (
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
)

ATTESTATION_PREFIX = "kms:RecipientAttestation:"
IMAGE_SHA384 = ATTESTATION_PREFIX + "ImageSha384"
CONTEXT_PREFIX = "kms:EncryptionContext:"
ATTESTATION_OPERATOR = "StringEqualsIgnoreCase"
MAX_PCR_INDEX = 31

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_PARTITION_RE = re.compile(r"^aws(-[a-z]+)*$")
_PCR_HEX_RE = re.compile(r"^[0-9a-fA-F]{96}$")
_PRINCIPAL_PATH_RE = re.compile(r"^(root|(user|role)/[A-Za-z0-9+=,.@_/-]{1,512})$")


class KeyPolicyError(CommonError, ValueError):
    """The key-policy specification would produce an unsafe or invalid policy."""


def _validate_pcr_hex(index: int, value: object) -> str:
    if not isinstance(value, str) or not _PCR_HEX_RE.fullmatch(value):
        raise KeyPolicyError(f"PCR{index} must be 96 hex characters (SHA-384), got {value!r}")
    if set(value) == {"0"}:
        raise KeyPolicyError(f"PCR{index} is all zeros: a debug-mode enclave must never get key material")
    return value.lower()


def _validate_principal(arn: object, partition: str, role: str) -> str:
    if not isinstance(arn, str):
        raise KeyPolicyError(f"{role} principal {arn!r} is not a string")
    parts = arn.split(":", 5)
    if (
        len(parts) != 6
        or parts[0] != "arn"
        or parts[1] != partition
        or parts[2] != "iam"
        or parts[3] != ""
        or not _ACCOUNT_RE.fullmatch(parts[4])
        or not _PRINCIPAL_PATH_RE.fullmatch(parts[5])
    ):
        raise KeyPolicyError(
            f"{role} principal {arn!r} is not an IAM ARN arn:{partition}:iam::<account>:(root|user/..|role/..)"
        )
    return arn


def _principal_tuple(values: object, partition: str, role: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise KeyPolicyError(f"{role} principals must be a sequence of ARNs, not {type(values).__name__}")
    result = tuple(_validate_principal(v, partition, role) for v in values)
    if len(set(result)) != len(result):
        raise KeyPolicyError(f"{role} principals contain duplicates")
    return result


@dataclass(frozen=True, kw_only=True)
class KeyPolicySpec:
    """What the key policy grants, to whom. Validated on construction; immutable afterwards."""

    account_id: str
    partition: str = "aws"
    admin_principals: tuple[str, ...] = ()
    tenant_principals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parent_role_arns: tuple[str, ...] = ()
    pcrs: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.account_id, str) or not _ACCOUNT_RE.fullmatch(self.account_id):
            raise KeyPolicyError(f"account id {self.account_id!r} is not 12 digits")
        if not isinstance(self.partition, str) or not _PARTITION_RE.fullmatch(self.partition):
            raise KeyPolicyError(f"partition {self.partition!r} is not an AWS partition")
        admins = _principal_tuple(self.admin_principals, self.partition, "admin")
        parents = _principal_tuple(self.parent_role_arns, self.partition, "parent role")
        if not parents:
            raise KeyPolicyError("at least one parent instance role is needed (the enclave's only way in)")
        for arn in parents:
            if ":role/" not in arn:
                raise KeyPolicyError(f"parent principal {arn!r} must be an IAM role")
        if not isinstance(self.tenant_principals, Mapping):
            raise KeyPolicyError("tenant_principals must map tenant id -> principal ARNs")
        tenants: dict[str, tuple[str, ...]] = {}
        for tenant, principals in sorted(self.tenant_principals.items(), key=lambda kv: str(kv[0])):
            try:
                validate_tenant(tenant)
            except NamingError as exc:
                raise KeyPolicyError(str(exc)) from None
            arns = _principal_tuple(principals, self.partition, f"tenant {tenant!r}")
            if not arns:
                raise KeyPolicyError(f"tenant {tenant!r} has no principals")
            tenants[tenant] = arns
        self._check_disjoint(admins, parents, tenants)
        if not isinstance(self.pcrs, Mapping):
            raise KeyPolicyError("pcrs must map PCR index -> hex")
        pcrs: dict[int, str] = {}
        for index, value in self.pcrs.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_PCR_INDEX:
                raise KeyPolicyError(f"PCR index {index!r} is not an integer 0..{MAX_PCR_INDEX}")
            pcrs[index] = _validate_pcr_hex(index, value)
        if 0 not in pcrs:
            raise KeyPolicyError("PCR0 (the enclave image measurement) is required")
        object.__setattr__(self, "admin_principals", admins)
        object.__setattr__(self, "parent_role_arns", parents)
        object.__setattr__(self, "tenant_principals", MappingProxyType(tenants))
        object.__setattr__(self, "pcrs", MappingProxyType(dict(sorted(pcrs.items()))))

    @staticmethod
    def _check_disjoint(
        admins: tuple[str, ...], parents: tuple[str, ...], tenants: Mapping[str, tuple[str, ...]]
    ) -> None:
        # One principal in two roles would merge their rights: an admin who is also a tenant could
        # decrypt results; a principal shared by two tenants would break tenant isolation.
        owner: dict[str, str] = {}
        groups: list[tuple[str, tuple[str, ...]]] = [("admin", admins), ("parent role", parents)]
        groups += [(f"tenant {t!r}", arns) for t, arns in tenants.items()]
        for role, arns in groups:
            for arn in arns:
                if arn in owner:
                    raise KeyPolicyError(f"principal {arn} is both {owner[arn]} and {role}")
                owner[arn] = role

    @property
    def root_principal(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:root"


def attestation_conditions(pcrs: Mapping[int, str]) -> dict[str, str]:
    """Condition keys pinning the enclave: ImageSha384 for PCR0, PCR<n> for the others."""
    conditions: dict[str, str] = {}
    for index, value in sorted(pcrs.items()):
        key = IMAGE_SHA384 if index == 0 else f"{ATTESTATION_PREFIX}PCR{index}"
        conditions[key] = _validate_pcr_hex(index, value)
    return conditions


def _aws(principals: Iterable[str]) -> dict[str, Any]:
    values = list(principals)
    return {"AWS": values[0] if len(values) == 1 else values}


def _statement(sid: str, principals: Iterable[str], actions: Iterable[str], condition: dict | None = None) -> dict:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": _aws(principals),
        "Action": list(actions),
        "Resource": "*",
    }
    if condition:
        statement["Condition"] = condition
    return statement


def build_key_policy(spec: KeyPolicySpec) -> dict[str, Any]:
    """The key policy (IAM JSON as a dict) for `spec`. Deterministic: same spec, same policy."""
    statements = [
        _statement("Account root keeps the key manageable, no data access", [spec.root_principal], ADMIN_ACTIONS)
    ]
    if spec.admin_principals:
        statements.append(_statement("Key administrators manage, never decrypt", spec.admin_principals, ADMIN_ACTIONS))
    everyone = [*spec.admin_principals, *spec.parent_role_arns]
    for tenant, principals in spec.tenant_principals.items():
        everyone += principals
        statements.append(
            _statement(
                f"Tenant {tenant} encrypts its inputs",
                principals,
                TENANT_INPUT_ACTIONS,
                {
                    "StringEquals": {CONTEXT_PREFIX + CTX_TENANT: tenant},
                    "Null": {CONTEXT_PREFIX + CTX_KIND: "true"},
                },
            )
        )
        statements.append(
            _statement(
                f"Tenant {tenant} decrypts its results",
                principals,
                TENANT_RESULT_ACTIONS,
                {"StringEquals": {CONTEXT_PREFIX + CTX_TENANT: tenant, CONTEXT_PREFIX + CTX_KIND: KIND_RESULT}},
            )
        )
    statements.append(
        _statement(
            "Only the attested enclave image gets key material",
            spec.parent_role_arns,
            ENCLAVE_ACTIONS,
            {ATTESTATION_OPERATOR: attestation_conditions(spec.pcrs)},
        )
    )
    statements.append(_statement("Named principals may describe the key", everyone, ["kms:DescribeKey"]))
    policy = {"Version": POLICY_VERSION, "Id": "ccc-data-key", "Statement": statements}
    size = len(json.dumps(policy, separators=(",", ":")).encode())
    if size > MAX_POLICY_BYTES:
        raise KeyPolicyError(f"key policy is {size} bytes, KMS allows {MAX_POLICY_BYTES}: too many principals")
    return policy


# --- tenant-owned keys (interface A) -------------------------------------------------------------
#
# The tenant deploys its own data key in its own account (cdk/tenant_stack.py). Its policy must hold
# against the *operator*: the account that runs the service (the account of the parent roles) gets
# no statement at all except the parent roles' attested ones, so neither its root, its admins nor a
# role it creates can use, grant or change the key.

ESDK_PUBLIC_KEY_CONTEXT = "aws-crypto-public-key"  # the ESDK adds it for signed algorithm suites
CONTEXT_KEYS_KEY = "kms:EncryptionContextKeys"
# Exactly the context keys CCC ciphertexts carry; KMS compares them case-sensitively with
# StringEquals, so `CCC:TENANT` or an extra key makes the request fail at KMS itself.
INPUT_CONTEXT_KEYS: tuple[str, ...] = (CTX_JOB, CTX_TENANT, ESDK_PUBLIC_KEY_CONTEXT)
RESULT_CONTEXT_KEYS: tuple[str, ...] = (CTX_JOB, CTX_TENANT, CTX_KIND, ESDK_PUBLIC_KEY_CONTEXT)
TENANT_READ_ACTIONS: tuple[str, ...] = ("kms:DescribeKey", "kms:GetKeyPolicy")
RELEASE_SID_PREFIX = "Approved release "
RELEASE_SID_SUFFIX = ": attested enclaves get key material"
_RELEASE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def context_key_conditions(allowed_keys: Iterable[str], *, absent: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Conditions that pin the *set* of encryption-context keys of a request.

    `ForAllValues:StringEquals` on the multi-valued `kms:EncryptionContextKeys` holds when every
    key of the request is in the list, and also when the request has *no* context at all (for all
    members of the empty set). The `Null ... = false` entries close that hole: the context must
    exist and carry `ccc:job` and `ccc:tenant`. Keys in `absent` must not be present.
    """
    null: dict[str, str] = {
        CONTEXT_KEYS_KEY: "false",
        CONTEXT_PREFIX + CTX_JOB: "false",
        CONTEXT_PREFIX + CTX_TENANT: "false",
    }
    for key in absent:
        null[CONTEXT_PREFIX + key] = "true"
    return {
        "ForAllValues:StringEquals": {CONTEXT_KEYS_KEY: list(allowed_keys)},
        "Null": null,
    }


def _validate_release_id(value: object) -> str:
    if not isinstance(value, str) or not _RELEASE_ID_RE.fullmatch(value):
        raise KeyPolicyError(
            f"release id {value!r} must be 1-64 characters of letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return value


@dataclass(frozen=True, eq=False)  # eq/hash below: pcrs is a read-only mapping, compared by value
class ApprovedRelease:
    """One enclave release the tenant approved: its id and the PCR values an enclave must attest.

    The PCRs of one release are ANDed in one key-policy statement; releases are ORed (one statement
    each), so a new release can be approved before the old one is removed: no downtime on a roll.
    """

    release_id: str  # the release manifest id, or "pcr0-<first 12 hex>" (release_from_pcrs)
    pcrs: Mapping[int, str]  # lower-case hex SHA-384; index 0 (the image) required

    def __post_init__(self) -> None:
        _validate_release_id(self.release_id)
        if not isinstance(self.pcrs, Mapping):
            raise KeyPolicyError("pcrs must map PCR index -> hex")
        pcrs: dict[int, str] = {}
        for index, value in self.pcrs.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_PCR_INDEX:
                raise KeyPolicyError(f"PCR index {index!r} is not an integer 0..{MAX_PCR_INDEX}")
            pcrs[index] = _validate_pcr_hex(index, value)
        if 0 not in pcrs:
            raise KeyPolicyError(f"release {self.release_id}: PCR0 (the enclave image measurement) is required")
        object.__setattr__(self, "pcrs", MappingProxyType(dict(sorted(pcrs.items()))))

    def __hash__(self) -> int:
        return hash((self.release_id, tuple(self.pcrs.items())))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApprovedRelease):
            return NotImplemented
        return self.release_id == other.release_id and dict(self.pcrs) == dict(other.pcrs)


def release_from_pcrs(pcrs: Mapping[int, str], release_id: str | None = None) -> ApprovedRelease:
    """An ApprovedRelease from bare PCRs; without an id it is named after PCR0 ("pcr0-<12 hex>")."""
    pcr0 = pcrs.get(0)
    if release_id is None:
        release_id = f"pcr0-{pcr0.lower()[:12]}" if isinstance(pcr0, str) else "pcr0-missing"
    return ApprovedRelease(release_id=release_id, pcrs=pcrs)


def _account_of(arn: str) -> str:
    return arn.split(":", 5)[4]


@dataclass(frozen=True)
class TenantKeySpec:
    """A tenant-owned data key: who may use it for what. Validated on construction; immutable.

    The operator account is the account of the parent roles: none of the tenant's admins or
    principals may live there, and neither may the key (its root would manage it).
    """

    tenant: str
    partition: str
    key_account_id: str  # the account owning the key (the tenant's own account)
    key_admin_principals: tuple[str, ...]  # the tenant's admins: manage only, never use
    tenant_principals: tuple[str, ...]  # encrypt inputs / decrypt results of THIS tenant only
    parent_role_arns: tuple[str, ...]  # the service's parent instance role(s); may be another account
    releases: tuple[ApprovedRelease, ...]  # >= 1; one statement per release

    def __post_init__(self) -> None:
        try:
            validate_tenant(self.tenant)
        except NamingError as exc:
            raise KeyPolicyError(str(exc)) from None
        if not isinstance(self.partition, str) or not _PARTITION_RE.fullmatch(self.partition):
            raise KeyPolicyError(f"partition {self.partition!r} is not an AWS partition")
        if not isinstance(self.key_account_id, str) or not _ACCOUNT_RE.fullmatch(self.key_account_id):
            raise KeyPolicyError(f"key account id {self.key_account_id!r} is not 12 digits")
        admins = _principal_tuple(self.key_admin_principals, self.partition, "key admin")
        tenants = _principal_tuple(self.tenant_principals, self.partition, f"tenant {self.tenant!r}")
        parents = _principal_tuple(self.parent_role_arns, self.partition, "parent role")
        if not tenants:
            raise KeyPolicyError(f"tenant {self.tenant!r} has no principals: nobody could encrypt or read results")
        if not parents:
            raise KeyPolicyError("at least one parent instance role is needed (the enclave's only way in)")
        for arn in parents:
            if ":role/" not in arn:
                raise KeyPolicyError(f"parent principal {arn!r} must be an IAM role")
        KeyPolicySpec._check_disjoint(admins, parents, {self.tenant: tenants})
        operator_accounts = {_account_of(arn) for arn in parents}
        if self.key_account_id in operator_accounts:
            raise KeyPolicyError(
                f"key account {self.key_account_id} is the operator's (a parent role's) account: its root and "
                "admins could manage the key; a tenant key lives in the tenant's own account"
            )
        for role, arns in (("key admin", admins), (f"tenant {self.tenant!r}", tenants)):
            for arn in arns:
                if _account_of(arn) in operator_accounts:
                    raise KeyPolicyError(
                        f"{role} principal {arn} is in the operator's account {_account_of(arn)}: "
                        "no principal of the operator account may use or change a tenant key"
                    )
        if isinstance(self.releases, ApprovedRelease) or not isinstance(self.releases, Iterable):
            raise KeyPolicyError("releases must be a sequence of ApprovedRelease")
        releases = tuple(self.releases)
        if not releases:
            raise KeyPolicyError("at least one approved release is needed (else no enclave can ever decrypt)")
        for release in releases:
            if not isinstance(release, ApprovedRelease):
                raise KeyPolicyError(f"release {release!r} is not an ApprovedRelease")
        ids = [r.release_id for r in releases]
        if len(set(ids)) != len(ids):
            raise KeyPolicyError(f"release ids are not unique: {ids}")
        pcr_sets = [tuple(r.pcrs.items()) for r in releases]
        if len(set(pcr_sets)) != len(pcr_sets):
            raise KeyPolicyError("two releases pin the same PCR values")
        object.__setattr__(self, "key_admin_principals", admins)
        object.__setattr__(self, "tenant_principals", tenants)
        object.__setattr__(self, "parent_role_arns", parents)
        object.__setattr__(self, "releases", releases)

    @property
    def key_account_root(self) -> str:
        return f"arn:{self.partition}:iam::{self.key_account_id}:root"

    @property
    def operator_account_ids(self) -> tuple[str, ...]:
        return tuple(sorted({_account_of(arn) for arn in self.parent_role_arns}))


def release_sid(release_id: str) -> str:
    return f"{RELEASE_SID_PREFIX}{release_id}{RELEASE_SID_SUFFIX}"


def build_tenant_key_policy(spec: TenantKeySpec) -> dict[str, Any]:
    """The policy of a tenant-owned data key (IAM JSON as a dict). Deterministic.

    * the key account's root and the tenant's key admins: management only (never use, never
      CreateGrant); the root statement keeps the key manageable by the tenant's own IAM and lets
      CloudFormation in the tenant's account pass KMS's lockout safety check;
    * the tenant's principals: Encrypt/GenerateDataKey for inputs of this tenant (no `ccc:kind`),
      Decrypt for results of this tenant (`ccc:kind` = result), DescribeKey and GetKeyPolicy (so
      the tenant's client can audit what the key releases to);
    * the parent roles: Decrypt/GenerateDataKey for this tenant's contexts, one statement per
      approved release, each pinning that release's PCRs with StringEqualsIgnoreCase;
    * every use statement pins the set of context keys (context_key_conditions).
    """
    tenant_condition = {"StringEquals": {CONTEXT_PREFIX + CTX_TENANT: spec.tenant}}
    statements = [
        _statement("Tenant account root manages the key, never uses it", [spec.key_account_root], ADMIN_ACTIONS)
    ]
    if spec.key_admin_principals:
        statements.append(
            _statement("Tenant key administrators manage, never use", spec.key_admin_principals, ADMIN_ACTIONS)
        )
    statements.append(
        _statement(
            f"Tenant {spec.tenant} encrypts its inputs",
            spec.tenant_principals,
            TENANT_INPUT_ACTIONS,
            {**tenant_condition, **context_key_conditions(INPUT_CONTEXT_KEYS, absent=(CTX_KIND,))},
        )
    )
    statements.append(
        _statement(
            f"Tenant {spec.tenant} decrypts its results",
            spec.tenant_principals,
            TENANT_RESULT_ACTIONS,
            {
                "StringEquals": {CONTEXT_PREFIX + CTX_TENANT: spec.tenant, CONTEXT_PREFIX + CTX_KIND: KIND_RESULT},
                **context_key_conditions(RESULT_CONTEXT_KEYS),
            },
        )
    )
    statements.append(
        _statement(f"Tenant {spec.tenant} reads the key and its policy", spec.tenant_principals, TENANT_READ_ACTIONS)
    )
    for release in spec.releases:
        statements.append(
            _statement(
                release_sid(release.release_id),
                spec.parent_role_arns,
                ENCLAVE_ACTIONS,
                {
                    ATTESTATION_OPERATOR: attestation_conditions(release.pcrs),
                    **tenant_condition,
                    **context_key_conditions(RESULT_CONTEXT_KEYS),
                },
            )
        )
    statements.append(_statement("Parent roles may describe the key", spec.parent_role_arns, ["kms:DescribeKey"]))
    policy = {"Version": POLICY_VERSION, "Id": f"{TENANT_KEY_ID_PREFIX}{spec.tenant}", "Statement": statements}
    size = len(json.dumps(policy, separators=(",", ":")).encode())
    if size > MAX_POLICY_BYTES:
        raise KeyPolicyError(
            f"key policy is {size} bytes, KMS allows {MAX_POLICY_BYTES}: too many releases or principals"
        )
    return policy


def releases_from_key_policy(policy: Mapping[str, Any]) -> tuple[ApprovedRelease, ...]:
    """What the key releases key material to: one ApprovedRelease per attested Allow statement.

    Reads every Allow statement that carries `kms:RecipientAttestation:*` conditions (whoever built
    the policy), in policy order. The release id comes from our Sid when the statement has one,
    else it is named after PCR0. This says *which images* get key material, not whether the
    policy is safe otherwise: that is lint_key_policy's job. Raises KeyPolicyError when a statement
    cannot be read as one release (several values for one PCR, no ImageSha384, an operator other
    than StringEquals/StringEqualsIgnoreCase, a malformed or all-zero value).
    """
    if not isinstance(policy, Mapping):
        raise KeyPolicyError("the key policy is not a JSON object")
    statements = policy.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise KeyPolicyError("the key policy has no Statement list")
    releases: list[ApprovedRelease] = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        conditions = statement.get("Condition")
        if not isinstance(conditions, Mapping):
            continue
        entries = _attestation_entries(conditions)
        if not entries:
            continue
        sid = statement.get("Sid")
        where = sid if isinstance(sid, str) else f"#{index}"
        pcrs: dict[int, str] = {}
        for operator, key, values in entries:
            pcr_index = _pcr_index(key)
            if pcr_index is None:
                raise KeyPolicyError(f"statement {where}: unknown attestation condition key {key}")
            if operator not in (ATTESTATION_OPERATOR, "StringEquals"):
                raise KeyPolicyError(f"statement {where}: {key} is compared with {operator}")
            if len(values) != 1 or pcr_index in pcrs:
                raise KeyPolicyError(f"statement {where}: PCR{pcr_index} has several values, not one release")
            pcrs[pcr_index] = _validate_pcr_hex(pcr_index, values[0])
        if 0 not in pcrs:
            raise KeyPolicyError(f"statement {where}: releases key material without pinning {IMAGE_SHA384}")
        release_id: str | None = None
        if isinstance(sid, str) and sid.startswith(RELEASE_SID_PREFIX) and sid.endswith(RELEASE_SID_SUFFIX):
            candidate = sid[len(RELEASE_SID_PREFIX) : -len(RELEASE_SID_SUFFIX)]
            release_id = candidate if _RELEASE_ID_RE.fullmatch(candidate) else None
        release = release_from_pcrs(pcrs, release_id)
        if release not in releases:
            releases.append(release)
    return tuple(releases)


# --- linter -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyFinding:
    """One property a key policy violates. `rule` is stable (tests and CI match on it)."""

    rule: str
    message: str
    sid: str | None = None

    def __str__(self) -> str:
        where = f" [{self.sid}]" if self.sid else ""
        return f"{self.rule}{where}: {self.message}"


RULES: Mapping[str, str] = MappingProxyType(
    {
        "malformed_policy": "the document is not a key policy this linter can check",
        "not_element": "NotPrincipal / NotAction / NotResource invert matching and hide grants",
        "wildcard_action": "'*' or 'kms:*' grants everything, including decryption",
        "wildcard_principal": "a '*' principal without conditions, or one that may obtain data keys",
        "unattested_key_release": "Decrypt / ReEncrypt* / GenerateDataKeyPair* / CreateGrant without attestation",
        "unconstrained_data_key": "Encrypt / GenerateDataKey* without attestation and not limited to tenant inputs",
        "weak_attestation_operator": "attestation keys must be compared with StringEqualsIgnoreCase/StringEquals",
        "missing_image_sha384": "an attested statement must pin kms:RecipientAttestation:ImageSha384 (PCR0)",
        "malformed_pcr": "an attestation value is not 96 hex characters / an unknown attestation key",
        "zero_pcr": "an all-zero PCR is a debug-mode enclave",
        "pcr_mismatch": "the pinned measurements differ from the expected ones",
        "no_attested_statement": "expected PCRs given, but no statement releases keys to an attested enclave",
        "foreign_reader": "a principal other than the owning tenant's may decrypt that tenant's results",
        "foreign_writer": "a principal other than the owning tenant's may make inputs in that tenant's name",
        "shared_tenant_principal": "one principal acts for two tenants",
        "parent_unattested_use": "a parent (attested) principal may also use the key without attestation",
        "manager_uses_key": "a principal that may change the policy may also use the key",
        "operator_principal": "a tenant key names an operator-account principal other than the attested parent",
        "unpinned_context_keys": "a use statement of a tenant key does not pin kms:EncryptionContextKeys",
    }
)

TENANT_KEY_ID_PREFIX = "ccc-tenant-key-"  # the "Id" of every build_tenant_key_policy document


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _action_matches(pattern: object, action: str) -> bool:
    # IAM action matching is case-insensitive with '*' and '?' wildcards.
    if not isinstance(pattern, str):
        return False
    return fnmatch.fnmatchcase(action.lower(), pattern.lower().replace("[", "[[]"))


def _condition_values(conditions: Mapping[str, Any], operator: str, key: str) -> list[Any] | None:
    block = conditions.get(operator)
    if not isinstance(block, Mapping):
        return None
    for name, values in block.items():
        if isinstance(name, str) and name.lower() == key.lower():
            return _as_list(values)
    return None


def _exact_strings(values: list[Any] | None) -> list[str]:
    if not values or not all(isinstance(v, str) and v and not any(c in v for c in "*?$") for v in values):
        return []
    return values


def _constrains_tenant(conditions: Mapping[str, Any]) -> bool:
    return bool(_exact_strings(_condition_values(conditions, "StringEquals", CONTEXT_PREFIX + CTX_TENANT)))


def _is_result_decrypt(conditions: Mapping[str, Any]) -> bool:
    kinds = _condition_values(conditions, "StringEquals", CONTEXT_PREFIX + CTX_KIND)
    return _constrains_tenant(conditions) and kinds == [KIND_RESULT]


def _is_input_only(conditions: Mapping[str, Any]) -> bool:
    kind_null = _condition_values(conditions, "Null", CONTEXT_PREFIX + CTX_KIND)
    return _constrains_tenant(conditions) and kind_null is not None and [str(v).lower() for v in kind_null] == ["true"]


def _attestation_entries(conditions: Mapping[str, Any]) -> list[tuple[str, str, list[Any]]]:
    entries = []
    for operator, block in conditions.items():
        if not isinstance(block, Mapping):
            continue
        for key, values in block.items():
            if isinstance(key, str) and key.lower().startswith(ATTESTATION_PREFIX.lower()):
                entries.append((str(operator), key, _as_list(values)))
    return entries


def _pcr_index(key: str) -> int | None:
    suffix = key[len(ATTESTATION_PREFIX) :]
    if suffix.lower() == "imagesha384":
        return 0
    match = re.fullmatch(r"PCR(\d{1,2})", suffix, flags=re.IGNORECASE)
    if match and int(match.group(1)) <= MAX_PCR_INDEX:
        return int(match.group(1))
    return None


class _StatementLinter:
    def __init__(self, statement: Mapping[str, Any], index: int, expected: Mapping[int, str] | None) -> None:
        self.statement = statement
        sid = statement.get("Sid")
        self.sid = sid if isinstance(sid, str) else f"#{index}"
        self.expected = expected
        self.findings: list[PolicyFinding] = []
        self.attested = False

    def add(self, rule: str, message: str) -> None:
        self.findings.append(PolicyFinding(rule, message, self.sid))

    def run(self) -> list[PolicyFinding]:
        st = self.statement
        for element in ("NotPrincipal", "NotAction", "NotResource"):
            if element in st:
                self.add("not_element", f"{element} is not allowed in the key policy")
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny"):
            self.add("malformed_policy", f"Effect {effect!r} is neither Allow nor Deny")
            return self.findings
        conditions = st.get("Condition", {})
        if not isinstance(conditions, Mapping):
            self.add("malformed_policy", "Condition is not an object")
            return self.findings
        self._lint_attestation(conditions)
        if effect == "Allow":
            self._lint_allow(conditions)
        return self.findings

    def _lint_attestation(self, conditions: Mapping[str, Any]) -> None:
        entries = _attestation_entries(conditions)
        pinned: dict[int, list[str]] = {}
        for operator, key, values in entries:
            index = _pcr_index(key)
            if index is None:
                self.add("malformed_pcr", f"unknown attestation condition key {key}")
                continue
            if operator not in (ATTESTATION_OPERATOR, "StringEquals"):
                self.add("weak_attestation_operator", f"{key} is compared with {operator}")
                continue
            for value in values:
                if not isinstance(value, str) or not _PCR_HEX_RE.fullmatch(value):
                    self.add("malformed_pcr", f"{key} value {value!r} is not 96 hex characters")
                elif set(value) == {"0"}:
                    self.add("zero_pcr", f"{key} is all zeros (debug-mode enclave)")
                else:
                    pinned.setdefault(index, []).append(value.lower())
        if not entries:
            return
        if 0 not in pinned:
            self.add("missing_image_sha384", f"{IMAGE_SHA384} is not pinned")
            return
        self.attested = True
        if self.expected is None:
            return
        for index, expected in sorted(self.expected.items()):
            got = pinned.get(index)
            if got is None:
                self.add("pcr_mismatch", f"PCR{index} is expected but not pinned")
            elif any(v != expected.lower() for v in got):
                self.add("pcr_mismatch", f"PCR{index} pins {got} instead of {expected.lower()}")
        for index in sorted(set(pinned) - set(self.expected)):
            self.add("pcr_mismatch", f"PCR{index} is pinned but not expected")

    def _principals(self) -> list[Any]:
        principal = self.statement.get("Principal")
        if principal == "*":
            return ["*"]
        if isinstance(principal, Mapping):
            found: list[Any] = []
            for values in principal.values():
                found += _as_list(values)
            return found
        self.add("malformed_policy", "Principal is missing or not an object")
        return []

    def _lint_allow(self, conditions: Mapping[str, Any]) -> None:
        principals = self._principals()
        actions = _as_list(self.statement.get("Action", []))
        releases_keys = any(
            _action_matches(a, sensitive) for a in actions for sensitive in KEY_RELEASE_ACTIONS + DATA_KEY_ACTIONS
        )
        if "*" in principals and not conditions:
            self.add("wildcard_principal", "Principal '*' without conditions")
        elif "*" in principals and releases_keys:
            # Attestation conditions say *which enclave*, not *whose*: an enclave image is often
            # public, so anyone could run it in their own account. Key release names its principals.
            self.add("wildcard_principal", "Principal '*' may obtain data keys; name the parent role")
        for action in actions:
            if isinstance(action, str) and action.lower() in ("*", "kms:*"):
                self.add("wildcard_action", f"Action {action!r} grants every KMS action")
        who = ", ".join(str(p) for p in principals) or "?"
        for sensitive in KEY_RELEASE_ACTIONS + DATA_KEY_ACTIONS:
            if not any(_action_matches(a, sensitive) for a in actions) or self.attested:
                continue
            if sensitive == "kms:Decrypt" and _is_result_decrypt(conditions):
                continue
            if sensitive in DATA_KEY_ACTIONS:
                if not _is_input_only(conditions):
                    self.add(
                        "unconstrained_data_key",
                        f"{sensitive} for {who} without attestation is not limited to one tenant's inputs",
                    )
                continue
            self.add("unattested_key_release", f"{sensitive} for {who} without kms:RecipientAttestation conditions")


def lint_key_policy(
    policy: object,
    *,
    expected_pcrs: Mapping[int, str] | None = None,
    owners: Mapping[str, Iterable[str]] | None = None,
    tenant_key: bool | None = None,
) -> list[PolicyFinding]:
    """Check any key policy document (ours, or e.g. a synthesised template's) for the CCC properties.

    Returns the findings; an empty list means the policy has every property. Deny statements are
    checked for malformed attestation values but never count as granting anything.

    `owners` ({tenant: principals}) says whose each tenant's data is; without it, a tenant's
    principals are those that may make its inputs. `tenant_key` applies the tenant-owned key rules
    (no operator-account principal but the attested parent, pinned context keys); None = decide by
    the policy's Id (build_tenant_key_policy's documents say so).
    """
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return [PolicyFinding("malformed_policy", "the policy is not JSON")]
    if not isinstance(policy, Mapping):
        return [PolicyFinding("malformed_policy", "the policy is not a JSON object")]
    statements = policy.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return [PolicyFinding("malformed_policy", "the policy has no Statement list")]
    expected = None
    if expected_pcrs is not None:
        try:
            expected = {i: _validate_pcr_hex(i, v) for i, v in expected_pcrs.items()}
        except KeyPolicyError as exc:
            return [PolicyFinding("malformed_pcr", f"expected PCRs: {exc}")]
    if tenant_key is None:
        policy_id = policy.get("Id")
        tenant_key = isinstance(policy_id, str) and policy_id.startswith(TENANT_KEY_ID_PREFIX)
    findings: list[PolicyFinding] = []
    attested_any = False
    grants = _Grants()
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            findings.append(PolicyFinding("malformed_policy", f"statement #{index} is not an object"))
            continue
        linter = _StatementLinter(statement, index, expected)
        findings += linter.run()
        allow = statement.get("Effect") == "Allow"
        attested_any = attested_any or (linter.attested and allow)
        if allow and not any(element in statement for element in ("NotPrincipal", "NotAction", "NotResource")):
            grants.add(statement, linter.sid, linter.attested)
    if expected is not None and not attested_any:
        findings.append(PolicyFinding("no_attested_statement", "no Allow statement pins the expected enclave"))
    findings += grants.findings(owners, tenant_key=tenant_key)
    return findings


def _principal_name(value: object) -> str:
    """A principal as text: an ARN as is, a CloudFormation intrinsic as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _statement_principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [_principal_name(p) for values in principal.values() for p in _as_list(values)]
    return []


def _principal_account(name: str) -> str | None:
    if _ACCOUNT_RE.fullmatch(name):
        return name
    parts = name.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and _ACCOUNT_RE.fullmatch(parts[4]):
        return parts[4]
    return None


_USE_ACTIONS = KEY_RELEASE_ACTIONS + DATA_KEY_ACTIONS


class _Grants:
    """Who may do what for which tenant, across the whole policy: the rules no single statement shows."""

    def __init__(self) -> None:
        self.readers: dict[str, dict[str, str]] = {}  # tenant -> principal -> sid
        self.writers: dict[str, dict[str, str]] = {}
        self.parents: dict[str, str] = {}  # principal -> sid of an attested statement
        self.unattested_users: dict[str, str] = {}  # principal -> sid of an unattested use
        self.managers: dict[str, str] = {}  # principal -> sid granting PutKeyPolicy
        self.named: dict[str, str] = {}  # every principal -> first sid naming it
        self.unpinned: list[str] = []  # sids of use statements without a pinned context-key set

    def add(self, statement: Mapping[str, Any], sid: str, attested: bool) -> None:
        principals = _statement_principals(statement)
        actions = _as_list(statement.get("Action", []))
        conditions = statement.get("Condition", {})
        if not isinstance(conditions, Mapping):
            return
        for principal in principals:
            self.named.setdefault(principal, sid)
        uses = any(_action_matches(a, use) for a in actions for use in _USE_ACTIONS)
        if any(_action_matches(a, "kms:PutKeyPolicy") for a in actions):
            for principal in principals:
                self.managers.setdefault(principal, sid)
        if not uses:
            return
        if not _pins_context_keys(conditions):
            self.unpinned.append(sid)
        if attested:
            for principal in principals:
                self.parents.setdefault(principal, sid)
            return
        for principal in principals:
            self.unattested_users.setdefault(principal, sid)
        tenants = _exact_strings(_condition_values(conditions, "StringEquals", CONTEXT_PREFIX + CTX_TENANT))
        if len(tenants) != 1:
            return  # unconstrained: the per-statement rules already flag it
        tenant = tenants[0]
        if any(_action_matches(a, "kms:Decrypt") for a in actions) and _is_result_decrypt(conditions):
            for principal in principals:
                self.readers.setdefault(tenant, {}).setdefault(principal, sid)
        if any(_action_matches(a, w) for a in actions for w in DATA_KEY_ACTIONS) and _is_input_only(conditions):
            for principal in principals:
                self.writers.setdefault(tenant, {}).setdefault(principal, sid)

    def findings(self, owners: Mapping[str, Iterable[str]] | None, *, tenant_key: bool) -> list[PolicyFinding]:
        found: list[PolicyFinding] = []
        if owners is not None:
            owner_sets = {tenant: {_principal_name(p) for p in arns} for tenant, arns in owners.items()}
        else:
            owner_sets = {tenant: set(writers) for tenant, writers in self.writers.items()}
        for tenant in sorted(set(self.readers) | set(self.writers)):
            own = owner_sets.get(tenant, set())
            for principal, sid in sorted(self.readers.get(tenant, {}).items()):
                if principal not in own:
                    found.append(
                        PolicyFinding(
                            "foreign_reader",
                            f"{principal} may decrypt tenant {tenant}'s results but is not one of its principals",
                            sid,
                        )
                    )
            if owners is not None:
                for principal, sid in sorted(self.writers.get(tenant, {}).items()):
                    if principal not in own:
                        found.append(
                            PolicyFinding(
                                "foreign_writer",
                                f"{principal} may make inputs as tenant {tenant} but is not one of its principals",
                                sid,
                            )
                        )
        acting: dict[str, set[str]] = {}
        for grants in (self.readers, self.writers):
            for tenant, principals in grants.items():
                for principal in principals:
                    acting.setdefault(principal, set()).add(tenant)
        for principal, tenants in sorted(acting.items()):
            if len(tenants) > 1:
                found.append(
                    PolicyFinding(
                        "shared_tenant_principal",
                        f"{principal} acts for tenants {', '.join(sorted(tenants))}",
                        self.named.get(principal),
                    )
                )
        for principal, sid in sorted(self.unattested_users.items()):
            if principal in self.parents:
                found.append(
                    PolicyFinding(
                        "parent_unattested_use",
                        f"parent {principal} may use the key without attestation (statement {sid})",
                        self.parents[principal],
                    )
                )
            if principal in self.managers:
                found.append(
                    PolicyFinding(
                        "manager_uses_key",
                        f"{principal} may change the key policy and use the key",
                        self.managers[principal],
                    )
                )
        if tenant_key:
            found += self._tenant_key_findings()
        return found

    def _tenant_key_findings(self) -> list[PolicyFinding]:
        found: list[PolicyFinding] = []
        operator_accounts = {_principal_account(p) for p in self.parents} - {None}
        for principal, sid in sorted(self.named.items()):
            if principal in self.parents or _principal_account(principal) not in operator_accounts:
                continue
            found.append(
                PolicyFinding(
                    "operator_principal",
                    f"{principal} is in the operator account (that of the parent roles) and is named by a tenant key",
                    sid,
                )
            )
        for sid in self.unpinned:
            found.append(
                PolicyFinding(
                    "unpinned_context_keys",
                    f"no ForAllValues:StringEquals {CONTEXT_KEYS_KEY} with Null {CONTEXT_KEYS_KEY} = false",
                    sid,
                )
            )
        return found


def _pins_context_keys(conditions: Mapping[str, Any]) -> bool:
    """ForAllValues on the key set, with the Null check without which an empty context passes."""
    allowed = _exact_strings(_condition_values(conditions, "ForAllValues:StringEquals", CONTEXT_KEYS_KEY))
    null = _condition_values(conditions, "Null", CONTEXT_KEYS_KEY)
    return bool(allowed) and null is not None and [str(v).lower() for v in null] == ["false"]
