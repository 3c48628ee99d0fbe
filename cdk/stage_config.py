"""Per-stage infrastructure configuration: the CDK-only facts (sizes, retention, purchase options).

Why a separate module from `ccc_common.domain.settings`: settings there are shared with the local stack
and the runtime (queue timeouts, fleet maximum, limits); what lives here only matters to the AWS
deployment (instance types, how many AZs carry VPC endpoints, log retention, removal policies).
Everything below is *derived* from the shared settings where a shared fact exists, so the two
cannot contradict each other (e.g. inbox objects outlive the DLQ retention, the lifecycle-hook
heartbeat covers a whole visibility timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_logs as logs

from ccc_common.domain.bucket_lifecycle import job_bucket_lifecycles
from ccc_common.domain.naming import PROJECT, ResourceNames, resource_names
from ccc_common.domain.settings import StageSettings, stage_settings
from cdk.errors import CdkAppError

DEPLOYABLE_STAGES = ("dev", "prod")
DEFAULT_STAGE = "dev"

# Nitro Enclaves need a Nitro instance with >= 4 vCPUs; the enclave takes whole cores (2 vCPUs)
# and its memory from the host. All x86_64 (the EIF is built for x86_64), all >= 8 GiB, so a
# 4 GiB enclave fits. Several families make spot capacity likelier in dev.
ENCLAVE_INSTANCE_TYPES: tuple[str, ...] = ("m6i.xlarge", "c6i.xlarge", "m5.xlarge", "c5.xlarge", "r6i.xlarge")

# The one instance type of a warm-pool group: Auto Scaling warm pools accept neither a mixed instances
# policy nor spot, so the group launches on demand from the launch template; c6i.xlarge is the
# cheapest enclave-capable type above (tied with c5.xlarge, one generation newer).
WARM_POOL_INSTANCE_TYPE = "c6i.xlarge"


class NetworkMode(StrEnum):
    """How hosts reach AWS APIs (CDK context `network=`; the argument is in docs/deploy.md).

    PUBLIC: public subnets, no inbound rule, a public IPv4 address per *running* host (billed only
    while it runs), S3 through the gateway endpoint: zero idle cost, the dev default.
    ENDPOINTS: isolated subnets and interface endpoints per AZ: no internet route at all, billed
    per endpoint per AZ-hour whether used or not: the prod default.
    """

    PUBLIC = "public"
    ENDPOINTS = "endpoints"


DEFAULT_NETWORK: dict[str, NetworkMode] = {"dev": NetworkMode.PUBLIC, "prod": NetworkMode.ENDPOINTS}

# Tag keys applied to every resource of a stage (cost allocation and the placeholder flag).
TAG_PROJECT = "ccc:project"
TAG_STAGE = "ccc:stage"
TAG_MEASUREMENTS = "ccc:enclave-measurements"


class StageConfigError(CdkAppError, ValueError):
    """A stage or context value the app cannot deploy."""


@dataclass(frozen=True)
class StageConfig:
    """Everything the constructs need to know about one deployable stage."""

    stage: str
    settings: StageSettings
    names: ResourceNames
    removal_policy: RemovalPolicy
    auto_delete_objects: bool
    inbox_expiry_days: int
    results_expiry_days: int
    noncurrent_expiry_days: int
    access_log_expiry_days: int
    log_retention: logs.RetentionDays
    use_spot: bool
    instance_types: tuple[str, ...]
    max_azs: int
    enclave_cpu_count: int
    enclave_memory_mib: int
    root_volume_gib: int
    alarm_topic: bool
    api_rate_limit: int
    api_burst_limit: int
    oldest_message_slo_s: int
    lambda_memory_mb: int
    network: NetworkMode
    warm_pool_size: int  # stopped, pre-installed instances kept for scale-out from zero; 0 = no warm pool

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_PROJECT: PROJECT, TAG_STAGE: self.stage}

    @property
    def lifecycle_heartbeat_s(self) -> int:
        """The drain hook must outlast one job's visibility timeout, or a job is cut mid-way."""
        return self.settings.queue.visibility_timeout_s + 60


def network_mode(value: object, stage: str) -> NetworkMode:
    if value is None or value == "":
        return DEFAULT_NETWORK[stage]
    try:
        return NetworkMode(str(value))
    except ValueError:
        raise StageConfigError(f"network {value!r} is not one of {[m.value for m in NetworkMode]}") from None


def stage_config(stage: str, *, network: object = None, warm_pool_size: int = 1) -> StageConfig:
    """The one function that sets the AWS-only knobs of a stage (names come from ccc_common).

    ``warm_pool_size`` > 0 trades spot (dev) for a warm pool: Auto Scaling refuses a warm pool on a
    group with spot or a mixed instances policy, and a resumed stopped instance is what makes
    scale-from-zero fast (docs/deploy.md, "What it costs").
    """
    if stage not in DEPLOYABLE_STAGES:
        raise StageConfigError(f"stage {stage!r} cannot be deployed to AWS; use one of {DEPLOYABLE_STAGES}")
    if warm_pool_size < 0:
        raise StageConfigError(f"warm_pool must be >= 0, got {warm_pool_size}")
    mode = network_mode(network, stage)
    settings = stage_settings(stage)
    # Environment-agnostic stack: account and region are CloudFormation pseudo parameters.
    names = resource_names(stage, Aws.ACCOUNT_ID, Aws.REGION)
    prod = stage == "prod"
    # The job buckets' retention is shared with the local stack (ccc_common.domain.bucket_lifecycle).
    lifecycles = job_bucket_lifecycles(settings)
    return StageConfig(
        stage=stage,
        settings=settings,
        names=names,
        removal_policy=RemovalPolicy.RETAIN if prod else RemovalPolicy.DESTROY,
        auto_delete_objects=not prod,
        inbox_expiry_days=lifecycles.inbox.expire_days,
        results_expiry_days=lifecycles.results.expire_days,
        noncurrent_expiry_days=lifecycles.inbox.noncurrent_expire_days,
        access_log_expiry_days=365 if prod else 30,
        log_retention=logs.RetentionDays.ONE_YEAR if prod else logs.RetentionDays.TWO_WEEKS,
        use_spot=not prod and warm_pool_size == 0,
        instance_types=(WARM_POOL_INSTANCE_TYPE,) if warm_pool_size else ENCLAVE_INSTANCE_TYPES,
        max_azs=2 if prod else 1,
        enclave_cpu_count=2,
        enclave_memory_mib=4096,
        root_volume_gib=30,
        alarm_topic=prod,
        api_rate_limit=100 if prod else 20,
        api_burst_limit=200 if prod else 40,
        oldest_message_slo_s=900 if prod else 1800,
        lambda_memory_mb=512,
        network=mode,
        warm_pool_size=warm_pool_size,
    )
