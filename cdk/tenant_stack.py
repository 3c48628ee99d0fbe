"""`CccTenant`: what a tenant deploys in ITS OWN account: its data key, and an alarm on changes to it.

Why a separate app: the key that protects a tenant's images and counts must not be in the hands of
the operator who runs the service. In the tenant's account, with the policy built by
`ccc_common.domain.key_policy.build_tenant_key_policy`, the operator's account appears only as the
service's parent role(s), which get key material only inside an enclave attesting one of the
releases the tenant approved. The tenant rolls releases by redeploying with a new release list
(old and new at once, then the old removed).

    cdk --app "python3 tenant_app.py" synth -c tenant=acme -c account=111111111111 \\
        -c principals=arn:aws:iam::111111111111:role/acme-client \\
        -c parent_roles=arn:aws:iam::222222222222:role/CccProd-IdentitiesParentInstanceRole... \\
        -c releases='[{"id": "2026-12-01", "pcrs": {"0": "<96 hex>", "1": "...", "2": "..."}}]'

Context (all strings; lists as comma-separated ARNs or JSON lists):
  tenant        the tenant id the service knows it by (ccc:tenant in every encryption context)
  account       the tenant's own AWS account id (the key lives there; the stack is pinned to it)
  region        the region of the service (optional; default: the CLI's)
  principals    the tenant's client principals: encrypt inputs, decrypt results, read the policy
  key_admins    the tenant's key administrators: manage, never use (optional)
  parent_roles  the service's parent instance role ARN(s) (the operator gives them; another account)
  releases      JSON list of {"id": ..., "pcrs": {"0": hex, ...}}; or pcr0 (+ pcr1, pcr2, pcr8) for one
  notify        e-mail addresses subscribed to the key-change topic (optional)

Browser sign-in (cdk/tenant_sign_in.py; on when web_url is given):
  web_url         the page's exact URL (https://<distribution>/): the app client's only callback/logout URL
  api_url         the service's ApiUrl output: the jobs API the web user role may call
  sign_in_domain  the hosted UI's domain prefix (default ccc-<tenant>-<account>)
  sign_in         false: no sign-in even with a web_url
With sign-in, principals may be empty: the web user role is a tenant principal of the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, CfnOutput, Duration, Environment, RemovalPolicy, Stack, Tags, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from ccc_common.domain.key_policy import (
    ApprovedRelease,
    KeyPolicyError,
    TenantKeySpec,
    build_tenant_key_policy,
    release_from_pcrs,
)
from ccc_common.domain.naming import PROJECT
from cdk.errors import CdkAppError
from cdk.key_change_alarm import KeyChangeAlarm
from cdk.stage_config import TAG_PROJECT
from cdk.tenant_sign_in import CONSTRUCT_ID as SIGN_IN_CONSTRUCT_ID
from cdk.tenant_sign_in import SignInSettings, TenantSignIn, sign_in_settings_from_context

DATA_KEY_TAG = "ccc:data-key"  # `ccc key-policy lint` lints the keys carrying it (value tenant:<id>)
TAG_TENANT = "ccc:tenant"
PCR_CONTEXT_KEYS = ("pcr0", "pcr1", "pcr2", "pcr8")
SIGN_IN_CONTEXT_KEYS = ("web_url", "api_url", "sign_in_domain", "sign_in")

OUTPUT_TENANT = "TenantName"
OUTPUT_TENANT_KEY_ARN = "TenantDataKeyArn"
OUTPUT_KEY_CHANGE_TOPIC = "KeyChangeTopicArn"
OUTPUT_RELEASES = "ApprovedReleases"


class TenantConfigError(CdkAppError, ValueError):
    """A tenant-stack context value that would make an unsafe or invalid key."""


def tenant_stack_name(tenant: str) -> str:
    return f"CccTenant-{tenant}"


def _arn_list(value: object, key: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise TenantConfigError(f"context {key} is not a JSON list: {exc}") from None
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str) for v in value):
            raise TenantConfigError(f"context {key} must list ARNs as strings")
        return tuple(v.strip() for v in value if v.strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _releases(context: Mapping[str, Any]) -> tuple[ApprovedRelease, ...]:
    raw = context.get("releases")
    pcrs = {int(k[3:]): str(context[k]) for k in PCR_CONTEXT_KEYS if context.get(k)}
    if raw and pcrs:
        raise TenantConfigError("give either releases or pcr0..pcr8, not both")
    if pcrs:
        return (release_from_pcrs(pcrs),)
    if not raw:
        raise TenantConfigError('no approved release: give releases=\'[{"id":..., "pcrs":{...}}]\' or pcr0=HEX')
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise TenantConfigError(f"context releases is not JSON: {exc}") from None
    if not isinstance(raw, list):
        raise TenantConfigError("context releases must be a JSON list of {id, pcrs}")
    releases = []
    for entry in raw:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("pcrs"), Mapping):
            raise TenantConfigError("each release must be an object with id and pcrs")
        try:
            values = {int(index): value for index, value in entry["pcrs"].items()}
        except (TypeError, ValueError):
            raise TenantConfigError(f"release {entry.get('id')!r}: PCR indexes must be integers") from None
        releases.append(release_from_pcrs(values, entry.get("id")))
    return tuple(releases)


@dataclass(frozen=True)
class TenantStackInputs:
    spec: TenantKeySpec
    region: str | None = None
    notify: tuple[str, ...] = ()
    sign_in: SignInSettings | None = None


_REQUIRED = ("tenant", "account", "principals", "parent_roles")


def tenant_inputs_from_context(context: Mapping[str, Any]) -> TenantStackInputs:
    """Validated inputs; every refusal is one TenantConfigError line (tenant_app.py prints it)."""
    required = ("tenant", "account", "parent_roles") if context.get("web_url") else _REQUIRED
    missing = [key for key in required if not context.get(key)]
    if missing:
        raise TenantConfigError(f"missing context: {', '.join(missing)} (see cdk/tenant_stack.py)")
    account = str(context["account"])
    region = str(context["region"]) if context.get("region") else None
    partition = str(context.get("partition") or "aws")
    parents = _arn_list(context.get("parent_roles"), "parent_roles")
    operator_accounts = tuple(sorted({arn.split(":")[4] for arn in parents if arn.count(":") >= 5}))
    sign_in = sign_in_settings_from_context(
        context, tenant=str(context["tenant"]), account=account, region=region, operator_accounts=operator_accounts
    )
    principals = _arn_list(context.get("principals"), "principals")
    if sign_in is not None:  # the web user role is a tenant principal like the CLI's (same key statements)
        principals = (*principals, sign_in.web_role_arn(partition, account, str(context["tenant"])))
    try:
        spec = TenantKeySpec(
            tenant=str(context["tenant"]),
            partition=partition,
            key_account_id=account,
            key_admin_principals=_arn_list(context.get("key_admins"), "key_admins"),
            tenant_principals=principals,
            parent_role_arns=parents,
            releases=_releases(context),
        )
        build_tenant_key_policy(spec)  # size limit and the like, before any construct exists
    except KeyPolicyError as exc:
        raise TenantConfigError(str(exc)) from None
    notify = _arn_list(context.get("notify"), "notify")
    for address in notify:
        if "@" not in address:
            raise TenantConfigError(f"notify address {address!r} is not an e-mail address")
    return TenantStackInputs(spec=spec, region=region, notify=notify, sign_in=sign_in)


class CccTenant(Stack):
    """The tenant's data key (policy from the shared builder, verbatim) and its key-change alarm."""

    def __init__(self, scope: Construct, *, inputs: TenantStackInputs) -> None:
        spec = inputs.spec
        super().__init__(
            scope,
            tenant_stack_name(spec.tenant),
            env=Environment(account=spec.key_account_id, region=inputs.region),
            description=f"Confidential Cat Counter: tenant {spec.tenant}'s own data key (deployed by the tenant)",
        )
        self.inputs = inputs
        Tags.of(self).add(TAG_PROJECT, PROJECT)
        Tags.of(self).add(TAG_TENANT, spec.tenant)
        self.policy_document = build_tenant_key_policy(spec)
        self.sign_in: TenantSignIn | None = None
        if inputs.sign_in is not None:
            self.sign_in = TenantSignIn(
                self, SIGN_IN_CONSTRUCT_ID, tenant=spec.tenant, partition=spec.partition, settings=inputs.sign_in
            )
            self.sign_in.acknowledge_findings(tenant=spec.tenant, settings=inputs.sign_in, partition=spec.partition)
        self.data_key = kms.Key(
            self,
            "DataKey",
            description=f"CCC tenant {spec.tenant}: inputs and results; key material only for approved enclaves",
            enable_key_rotation=True,
            policy=iam.PolicyDocument.from_json(self.policy_document),
            removal_policy=RemovalPolicy.RETAIN,  # the tenant's results stay decryptable after a teardown
            pending_window=Duration.days(30),
        )
        # The builder's document verbatim: nothing but the shared builder writes this key policy.
        cfn_key = self.data_key.node.default_child
        assert isinstance(cfn_key, kms.CfnKey)
        cfn_key.add_property_override("KeyPolicy", self.policy_document)
        Tags.of(self.data_key).add(DATA_KEY_TAG, f"tenant:{spec.tenant}")
        if self.sign_in is not None:  # KMS refuses a key policy naming a role that does not exist yet
            self.data_key.node.add_dependency(self.sign_in.web_role)
        kms.Alias(self, "DataKeyAlias", alias_name=f"alias/ccc-tenant/{spec.tenant}", target_key=self.data_key)

        # The topic is SSE-KMS with a key of its own: EventBridge and CloudWatch must be allowed to use
        # it, which the data key's policy must never allow.
        self.notification_key = kms.Key(
            self,
            "NotificationKey",
            description=f"CCC tenant {spec.tenant}: encrypts the key-change topic (never tenant data)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        Tags.of(self.notification_key).add(DATA_KEY_TAG, "none")
        self.notification_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeAndCloudWatchPublishToTheEncryptedTopic",
                principals=[
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "KeyChangeTopic",
            display_name=f"CCC tenant {spec.tenant}: data key changed",
            master_key=self.notification_key,
            enforce_ssl=True,
        )
        for address in inputs.notify:
            self.topic.add_subscription(subscriptions.EmailSubscription(address))
        self.key_change = KeyChangeAlarm(
            self,
            "KeyChange",
            key_arns=[self.data_key.key_arn],
            description=f"tenant {spec.tenant}'s data key",
            topic=self.topic,
        )
        CfnOutput(self, OUTPUT_TENANT, value=spec.tenant, description="Tenant id (ccc:tenant)")
        CfnOutput(self, OUTPUT_TENANT_KEY_ARN, value=self.data_key.key_arn, description="Pin it: ccc trust init")
        CfnOutput(self, OUTPUT_KEY_CHANGE_TOPIC, value=self.topic.topic_arn, description="Key-change alarms")
        CfnOutput(
            self,
            OUTPUT_RELEASES,
            value=json.dumps([r.release_id for r in spec.releases]),
            description="Releases the key gives key material to",
        )


def build_tenant_app(context: Mapping[str, Any] | None = None, outdir: str | None = None) -> tuple[App, CccTenant]:
    """The tenant app with cdk-nag AwsSolutions as a validation plugin (only sign-in's table rows acknowledged)."""
    app = App(outdir=outdir, context=dict(context or {}))
    keys = ("tenant", "account", "region", "partition", "principals", "key_admins", "parent_roles", "releases")
    merged = {key: app.node.try_get_context(key) for key in (*keys, "notify", *PCR_CONTEXT_KEYS, *SIGN_IN_CONTEXT_KEYS)}
    stack = CccTenant(app, inputs=tenant_inputs_from_context({k: v for k, v in merged.items() if v is not None}))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
