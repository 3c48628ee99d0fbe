"""IAM roles that the data key policy names: the parent instance role and (dev) demo tenant roles.

Demo tenant roles trust the account root: anyone in the operator account with sts:AssumeRole can
act as that tenant. They are a dev convenience on the operator-run key, tagged `ccc:demo-role`, and
refused in prod (cdk/ccc_stack.py); real tenants use principals in their own accounts.

Why they exist before everything else: the key policy (built first, by the shared builder) must
name them, while their permissions refer to buckets, queues and the API created later. A role's
ARN does not depend on its policies, so the roles come first and the grants are attached after,
without a dependency cycle (key -> role, policy -> key/bucket, never role -> key).
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Aws, Stack, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ccc_common.domain.iam_policies import tenant_statements
from ccc_common.domain.key_policy import ENCLAVE_ACTIONS
from ccc_core.identity import validate_tenant
from cdk.iam_grants import attach, policy_resources
from cdk.stage_config import StageConfig


def s3_via_service(key: kms.IKey, actions: list[str], buckets: list[s3.IBucket]) -> iam.PolicyStatement:
    """Storage-key use only when S3 makes the call for the principal (SSE-KMS), never directly,
    and only for the named buckets (S3 puts the bucket ARN, or with bucket keys off the object
    ARN, into the encryption context)."""
    scopes: list[str] = []
    for bucket in buckets:
        scopes += [bucket.bucket_arn, bucket.arn_for_objects("*")]
    return iam.PolicyStatement(
        actions=actions,
        resources=[key.key_arn],
        conditions={
            "StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": scopes},
        },
    )


TAG_DEMO_ROLE = "ccc:demo-role"
DEMO_ROLE_TAG_VALUE = "trusts-account-root"


class Identities(Construct):
    """The parent instance role and the tenant client roles."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, tenants: Iterable[str]) -> None:
        super().__init__(scope, construct_id)
        self._stage = config.stage
        self._config = config
        self.parent_role = iam.Role(
            self,
            "ParentInstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"CCC {config.stage} enclave host: queue, inbox read, results write; KMS only via attestation",
        )
        self.tenant_roles: dict[str, iam.Role] = {}
        for tenant in sorted(set(tenants)):
            validate_tenant(tenant)
            self.tenant_roles[tenant] = iam.Role(
                self,
                f"TenantRole-{tenant}",
                # Who in the account may act for the tenant is decided by IAM (sts:AssumeRole).
                assumed_by=iam.AccountRootPrincipal(),
                description=f"CCC {config.stage} DEMO client of tenant {tenant} (trusts the account root)",
            )
            Tags.of(self.tenant_roles[tenant]).add(TAG_DEMO_ROLE, DEMO_ROLE_TAG_VALUE)

    def grant_parent_tenant_keys(self, key_arns: Iterable[str]) -> None:
        """The identity half of cross-account key use: exactly these keys, exactly the enclave's actions.

        A key in another account is usable only if its key policy AND the caller's IAM policy allow
        the call; the tenant's key policy adds the attestation conditions, this adds nothing else.
        """
        arns = sorted(set(key_arns))
        if arns:
            self.parent_role.add_to_policy(
                iam.PolicyStatement(sid="TenantOwnedDataKeys", actions=list(ENCLAVE_ACTIONS), resources=arns)
            )

    def grant_tenants(
        self, *, api: apigw.RestApi, inbox: s3.IBucket, results: s3.IBucket, storage_key: kms.IKey
    ) -> None:
        """Each tenant role: call the jobs API, write its own inbox prefix, read its own results.

        The data key (encrypt inputs, decrypt results) is granted by the key policy, not here.
        """
        shared = policy_resources(
            self._config, inbox_bucket_arn=inbox.bucket_arn, results_bucket_arn=results.bucket_arn,
            rest_api_id=api.rest_api_id,
        )
        for tenant, role in self.tenant_roles.items():
            # The shared builder's statements: the local stack enforces the very same documents.
            attach(role, tenant_statements(tenant, shared))
            # Uploads into the SSE-KMS inbox; downloads from the SSE-S3 results bucket need no KMS right.
            role.add_to_policy(s3_via_service(storage_key, ["kms:GenerateDataKey"], [inbox]))

    def tenant_role_arns(self) -> dict[str, tuple[str, ...]]:
        return {tenant: (role.role_arn,) for tenant, role in self.tenant_roles.items()}

    def tenant_roles_json(self) -> str:
        return Stack.of(self).to_json_string({tenant: role.role_arn for tenant, role in self.tenant_roles.items()})
