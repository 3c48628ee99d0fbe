"""KMS keys: the operator-run *data key* (demo; policy from the shared builder) and the *storage key*.

The operator-run data key is optional (context operator_key; dev default on, prod default off): on
it the operator's account root holds PutKeyPolicy, so the operator can re-point it at any enclave.
Tenants who do not accept that deploy their own key (cdk/tenant_stack.py) and the service only
refers to it (cdk/tenants.py). It is tagged `ccc:data-key=operator-demo` so `ccc key-policy lint`
lints it and not the storage key.

Why two keys: the data key encrypts job inputs and results (AWS Encryption SDK) and its policy
releases key material to the parent role only with an enclave attestation. S3, SNS and the like
cannot attest, so using the data key for server-side encryption would either break them or need an
unattested Decrypt for the parent role, which would defeat the whole design. The storage key does
the at-rest encryption of the inbox and artifacts buckets and the alarm topic (the results bucket
is SSE-S3, see cdk/storage.py); everything in those is ESDK ciphertext or metadata already, and
IAM grants on it are limited to `kms:ViaService` S3 and to the bucket by encryption context.

The data key policy is built by `ccc_common.domain.key_policy.build_key_policy`, the same function the
local stack enforces. That builder validates real ARNs (12-digit account, known principals), but
this stack is environment-agnostic, so account and role ARNs are CloudFormation tokens. We build
with *sentinel* ARNs and then swap each sentinel for its token, string for string: the builder
still decides every statement, action and condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Aws, Duration, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ccc_common.domain.key_policy import KeyPolicySpec, build_key_policy
from cdk.stage_config import StageConfig

SENTINEL_ACCOUNT = "000000000000"
DATA_KEY_TAG = "ccc:data-key"  # the tag `ccc key-policy lint` selects data keys by
OPERATOR_KEY_TAG_VALUE = "operator-demo"
NOT_A_DATA_KEY = "none"  # the storage key: never linted with the data-key rules
_SENTINEL_PARTITION = "aws"


def sentinel_role_arn(label: str) -> str:
    return f"arn:{_SENTINEL_PARTITION}:iam::{SENTINEL_ACCOUNT}:role/ccc-sentinel-{label}"


def substitute_strings(document: Any, replacements: Mapping[str, str]) -> Any:
    """Replace whole strings anywhere in a JSON-like document (dict keys untouched)."""
    if isinstance(document, str):
        return replacements.get(document, document)
    if isinstance(document, list):
        return [substitute_strings(item, replacements) for item in document]
    if isinstance(document, dict):
        return {key: substitute_strings(value, replacements) for key, value in document.items()}
    return document


def data_key_policy(
    *,
    parent_role_arns: Sequence[str],
    tenant_role_arns: Mapping[str, Sequence[str]],
    external_tenant_principals: Mapping[str, Sequence[str]],
    admin_principals: Sequence[str],
    pcrs: Mapping[int, str],
) -> dict[str, Any]:
    """The data key policy with CloudFormation tokens in place of this stack's own ARNs.

    `parent_role_arns` and `tenant_role_arns` may be tokens (roles of this stack); the external
    tenant principals and admins must be literal ARNs and are validated by the builder as given.
    """
    replacements: dict[str, str] = {
        f"arn:{_SENTINEL_PARTITION}:iam::{SENTINEL_ACCOUNT}:root": f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:root",
    }
    parents: list[str] = []
    for index, arn in enumerate(parent_role_arns):
        sentinel = sentinel_role_arn(f"parent-{index}")
        replacements[sentinel] = arn
        parents.append(sentinel)
    tenants: dict[str, tuple[str, ...]] = {}
    for tenant in sorted(set(tenant_role_arns) | set(external_tenant_principals)):
        principals: list[str] = []
        for index, arn in enumerate(tenant_role_arns.get(tenant, ())):
            sentinel = sentinel_role_arn(f"tenant-{tenant}-{index}")
            replacements[sentinel] = arn
            principals.append(sentinel)
        principals += list(external_tenant_principals.get(tenant, ()))
        tenants[tenant] = tuple(principals)
    spec = KeyPolicySpec(
        account_id=SENTINEL_ACCOUNT,
        partition=_SENTINEL_PARTITION,
        admin_principals=tuple(admin_principals),
        tenant_principals=tenants,
        parent_role_arns=tuple(parents),
        pcrs=dict(pcrs),
    )
    return substitute_strings(build_key_policy(spec), replacements)


class Keys(Construct):
    """The data key (attested, alias from naming) and the storage key (SSE for S3 and SNS)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        operator_key: bool,
        parent_role_arns: Sequence[str],
        tenant_role_arns: Mapping[str, Sequence[str]],
        external_tenant_principals: Mapping[str, Sequence[str]],
        admin_principals: Sequence[str],
        pcrs: Mapping[int, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy_document: dict[str, Any] | None = None
        self.data_key: kms.Key | None = None
        self.data_key_alias: kms.Alias | None = None
        if operator_key:
            self._operator_key(
                config, parent_role_arns, tenant_role_arns, external_tenant_principals, admin_principals, pcrs
            )
        self.storage_key = kms.Key(
            self,
            "StorageKey",
            description=f"CCC {config.stage}: SSE of the inbox and artifacts buckets and the alarm topic",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
            pending_window=Duration.days(30 if config.stage == "prod" else 7),
        )
        Tags.of(self.storage_key).add(DATA_KEY_TAG, NOT_A_DATA_KEY)
        # CloudWatch alarms and the key-change EventBridge rule publish to the SSE-KMS topic.
        self.storage_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopic",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

    def _operator_key(
        self,
        config: StageConfig,
        parent_role_arns: Sequence[str],
        tenant_role_arns: Mapping[str, Sequence[str]],
        external_tenant_principals: Mapping[str, Sequence[str]],
        admin_principals: Sequence[str],
        pcrs: Mapping[int, str],
    ) -> None:
        self.policy_document = data_key_policy(
            parent_role_arns=parent_role_arns,
            tenant_role_arns=tenant_role_arns,
            external_tenant_principals=external_tenant_principals,
            admin_principals=admin_principals,
            pcrs=pcrs,
        )
        self.data_key = kms.Key(
            self,
            "DataKey",
            description=f"CCC {config.stage}: job inputs and results; key material only for the attested enclave",
            enable_key_rotation=True,
            policy=iam.PolicyDocument.from_json(self.policy_document),
            removal_policy=config.removal_policy,
            pending_window=Duration.days(30 if config.stage == "prod" else 7),
        )
        # The builder's document verbatim (PolicyDocument.from_json drops "Id" and would let later
        # grants append statements): nothing but the shared builder writes this key policy.
        cfn_key = self.data_key.node.default_child
        assert isinstance(cfn_key, kms.CfnKey)
        cfn_key.add_property_override("KeyPolicy", self.policy_document)
        Tags.of(self.data_key).add(DATA_KEY_TAG, OPERATOR_KEY_TAG_VALUE)
        self.data_key_alias = kms.Alias(
            self, "DataKeyAlias", alias_name=config.names.key_alias, target_key=self.data_key
        )

    def key_arns(self) -> list[str]:
        """The keys this stack owns, for the key-change alarm."""
        keys = [self.data_key, self.storage_key] if self.data_key is not None else [self.storage_key]
        return [key.key_arn for key in keys]
