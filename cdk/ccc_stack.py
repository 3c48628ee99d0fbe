"""`CccStack`: the whole system for one stage, composed from one construct per concern.

Order matters only where CloudFormation needs it: the roles the key policy names come first,
then the keys, storage, queue, functions, fleet, and last the grants that refer to all of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Annotations, CfnOutput, Stack, Tags
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from ccc_common.contracts import stack_outputs
from cdk import contract
from cdk.enclave_fleet import Fleet
from cdk.identities import Identities
from cdk.keys import Keys
from cdk.measurements import Measurements
from cdk.monitoring import Observability
from cdk.nag_acknowledgements import Ack
from cdk.orchestration import POWERTOOLS_LAYER_VERSION, Orchestration
from cdk.stage_config import TAG_MEASUREMENTS, StageConfig, StageConfigError, stage_config
from cdk.storage import Storage
from cdk.tenants import TenantConfig
from cdk.web_hosting import WebHosting
from cdk.work_queue import WorkQueue

PLACEHOLDER_TAG_VALUE = "PLACEHOLDER-no-enclave-can-decrypt"
PLACEHOLDER_WARNING_ID = "ccc:placeholder-measurements"
DEMO_ROLES_WARNING_ID = "ccc:demo-roles"
OPERATOR_KEY_WARNING_ID = "ccc:operator-key"
# The DataKeyArn output when the stage has no operator-run key: each tenant's key is in its own
# CccTenant stack (output TenantDataKeyArn), pinned in its trust file; the service names none.
TENANT_OWNED_KEYS_OUTPUT = stack_outputs.TENANT_OWNED_KEYS  # the contract's marker (ccc_common.contracts.stack_outputs)


@dataclass(frozen=True)
class StackInputs:
    """What varies per deployment beyond the stage (all from CDK context, see cdk/application.py)."""

    measurements: Measurements
    tenants: Sequence[TenantConfig] = ()  # tenants with their own key (cdk/tenants.py)
    demo_tenants: Sequence[str] = ()  # dev only: convenience roles trusting the account root
    operator_key: bool | None = None  # the operator-run data key; None = the stage's default (dev only)
    external_tenant_principals: Mapping[str, Sequence[str]] = field(default_factory=dict)
    key_admins: Sequence[str] = ()
    powertools_layer_version: int = POWERTOOLS_LAYER_VERSION
    network: str | None = None  # NetworkMode value; None = the stage's default
    warm_pool_size: int = 1
    web_origins: tuple[str, ...] = ()  # the browser client's origins: CORS on the API and buckets
    web_hosting: bool = False  # host the browser client (S3 + CloudFront with OAC; cdk/web_hosting.py)


class CccStack(Stack):
    """One stage of CCC (environment-agnostic: account and region are deploy-time parameters)."""

    def __init__(self, scope: Construct, *, stage: str, inputs: StackInputs) -> None:
        config: StageConfig = stage_config(stage, network=inputs.network, warm_pool_size=inputs.warm_pool_size)
        super().__init__(
            scope,
            config.names.stack_name,
            description=f"Confidential Cat Counter ({stage}): attested Nitro Enclave inference pipeline",
        )
        self.config = config
        self.inputs = inputs
        self.applied_acknowledgements: list[Ack] = []  # set by cdk.application.build_app
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)
        self._flag_measurements(inputs.measurements)
        self.operator_key = self._check_tenancy(stage, inputs)

        self.identities = Identities(self, "Identities", config=config, tenants=inputs.demo_tenants)
        tenant_principals_json = json.dumps({t: list(p) for t, p in sorted(inputs.external_tenant_principals.items())})
        self.keys = Keys(
            self,
            "Keys",
            config=config,
            operator_key=self.operator_key,
            parent_role_arns=[self.identities.parent_role.role_arn],
            tenant_role_arns=self.identities.tenant_role_arns(),
            external_tenant_principals=inputs.external_tenant_principals,
            admin_principals=inputs.key_admins,
            pcrs=inputs.measurements.pcrs,
        )
        self.identities.grant_parent_tenant_keys([tenant.key_arn for tenant in inputs.tenants])
        self.storage = Storage(
            self, "Storage", config=config, storage_key=self.keys.storage_key, web_origins=inputs.web_origins
        )
        self.web = (
            WebHosting(self, "Web", config=config, access_logs=self.storage.access_logs)
            if inputs.web_hosting
            else None
        )
        self.work_queue = WorkQueue(self, "WorkQueue", config=config)
        self.orchestration = Orchestration(
            self,
            "Orchestration",
            config=config,
            inbox=self.storage.inbox,
            results=self.storage.results,
            storage_key=self.keys.storage_key,
            artifacts=self.storage.artifacts,
            work_queue=self.work_queue.queue,
            dead_letter_queue=self.work_queue.dead_letter_queue,
            tenant_principals_json=self._tenant_principals_json(tenant_principals_json),
            powertools_layer_version=inputs.powertools_layer_version,
            web_origins=inputs.web_origins,
        )
        self.work_queue.route(
            inbox=self.storage.inbox,
            results=self.storage.results,
            job_events=self.orchestration.functions["job_events"],
        )
        self.fleet = Fleet(
            self,
            "Fleet",
            config=config,
            role=self.identities.parent_role,
            measurements=inputs.measurements,
            work_queue=self.work_queue.queue,
            inbox=self.storage.inbox,
            results=self.storage.results,
            jobs_table=self.orchestration.table,
            artifacts=self.storage.artifacts,
            access_logs=self.storage.access_logs,
            storage_key=self.keys.storage_key,
            data_key_arn=self._data_key_output(),
        )
        self.identities.grant_tenants(
            api=self.orchestration.api,
            inbox=self.storage.inbox,
            results=self.storage.results,
            storage_key=self.keys.storage_key,
        )
        self.observability = Observability(
            self,
            "Observability",
            config=config,
            work_queue=self.work_queue.queue,
            dead_letter_queue=self.work_queue.dead_letter_queue,
            fleet_group_name=config.names.fleet_group,
            functions=self.orchestration.functions,
            storage_key=self.keys.storage_key,
            watched_key_arns=self.keys.key_arns(),
        )
        self._admit_tenant_principals_to_the_api(config.stage)
        self._outputs()

    def _tenant_principals_json(self, external_json: str) -> str:
        """{tenant: [principal ARNs]} for jobs_api: stack roles (tokens) plus external principals."""
        merged: dict[str, list[str]] = {t: list(p) for t, p in json.loads(external_json).items()}
        for tenant, arns in self.identities.tenant_role_arns().items():
            merged.setdefault(tenant, []).extend(arns)
        for config in self.inputs.tenants:
            merged.setdefault(config.name, []).extend(config.principals)
        return self.to_json_string({t: merged[t] for t in sorted(merged)})

    def _check_tenancy(self, stage: str, inputs: StackInputs) -> bool:
        """Whether the stage gets the operator-run key; refuse the combinations that lie about trust.

        Demo roles trust the account root (anyone there with sts:AssumeRole becomes the tenant), so
        they exist only in dev, only on the operator-run key, and every synth says so.
        """
        operator_key = inputs.operator_key if inputs.operator_key is not None else stage == "dev"
        if inputs.demo_tenants and stage == "prod":
            raise StageConfigError(
                "demo_tenants are convenience roles that trust the account root: never in prod "
                "(tenants deploy CccTenant and are listed in context tenants)"
            )
        if inputs.demo_tenants and not operator_key:
            raise StageConfigError("demo_tenants use the operator-run key: set operator_key=true or drop them")
        if inputs.external_tenant_principals and not operator_key:
            raise StageConfigError(
                "tenant_principals are principals on the operator-run key; with tenant-owned keys list them in tenants"
            )
        own = {t.name for t in inputs.tenants}
        clash = sorted(own & (set(inputs.demo_tenants) | set(inputs.external_tenant_principals)))
        if clash:
            raise StageConfigError(
                f"tenant(s) {', '.join(clash)} have their own key and cannot also be on the operator's"
            )
        if inputs.demo_tenants:
            Annotations.of(self).add_warning_v2(
                DEMO_ROLES_WARNING_ID,
                f"DEMO tenant roles {', '.join(sorted(inputs.demo_tenants))} trust this account's root and use the "
                "operator-run key: the operator can act as these tenants and read their results. Dev only.",
            )
        if operator_key and stage == "prod":
            Annotations.of(self).add_warning_v2(
                OPERATOR_KEY_WARNING_ID,
                "operator-run data key in prod: whoever administers this account can rewrite its policy "
                "(docs/kms.md, 'What the operator-run key costs'). Tenant-owned keys (CccTenant) avoid that.",
            )
        return operator_key

    def _admit_tenant_principals_to_the_api(self, stage: str) -> None:
        """Tenants' principals live in their own accounts; an IAM-auth API admits a cross-account
        caller only if its resource policy does too. Exactly the three job methods, exactly those
        principals (same-account demo roles keep passing through their IAM policies alone)."""
        principals = sorted(arn for tenant in self.inputs.tenants for arn in tenant.principals)
        if not principals:
            return
        api = self.orchestration.api.node.default_child
        assert isinstance(api, apigw.CfnRestApi)
        api.add_property_override(
            "Policy",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TenantPrincipalsInvokeTheJobMethods",
                        "Effect": "Allow",
                        "Principal": {"AWS": principals},
                        "Action": "execute-api:Invoke",
                        "Resource": [
                            f"execute-api:/{stage}/POST/jobs",
                            f"execute-api:/{stage}/GET/jobs",
                            f"execute-api:/{stage}/GET/jobs/*",
                        ],
                    }
                ],
            },
        )

    def _data_key_output(self) -> str:
        return self.keys.data_key.key_arn if self.keys.data_key is not None else TENANT_OWNED_KEYS_OUTPUT

    def _flag_measurements(self, measurements: Measurements) -> None:
        if measurements.placeholder:
            Annotations.of(self).add_warning_v2(
                PLACEHOLDER_WARNING_ID,
                f"PLACEHOLDER enclave measurements ({measurements.source}): the key policy pins a PCR0 that no "
                "enclave image has, so no enclave can decrypt. Build the EIF (enclave_worker/build_eif.sh) "
                "before expecting results. prod refuses to synthesise like this.",
            )
            Tags.of(self).add(TAG_MEASUREMENTS, PLACEHOLDER_TAG_VALUE)
        else:
            Tags.of(self).add(TAG_MEASUREMENTS, measurements.pcr0[:16])

    def _outputs(self) -> None:
        """One CfnOutput per entry of the stack-outputs contract, and no other (the client refuses
        outputs it does not know, so the RestApi's automatic endpoint output, a duplicate of ApiUrl,
        is removed)."""
        storage = self.storage
        release = (
            f"s3://{storage.artifacts.bucket_name}/{contract.RELEASE_PREFIX}{self.inputs.measurements.release_id}/"
        )
        self.orchestration.api.node.try_remove_child("Endpoint")
        outputs = stack_outputs.StackOutputs(
            stage=self.config.stage,
            api_url=self.orchestration.api.url,
            inbox_bucket=storage.inbox.bucket_name,
            results_bucket=storage.results.bucket_name,
            artifacts_bucket=storage.artifacts.bucket_name,
            data_key_arn=self._data_key_output(),
            tenant_roles=self.identities.tenant_roles_json(),
            release_prefix=release,
            host_log_group=self.fleet.log_group.log_group_name,
            dashboard=self.observability.dashboard.dashboard_name,
            pcrs=dict(self.inputs.measurements.pcrs),
        )
        for key, value in stack_outputs.encode_stack_outputs(outputs).items():
            CfnOutput(self, key, value=value, description=stack_outputs.description(key))
