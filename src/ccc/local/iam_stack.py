"""The local stack's IAM: which policy documents each local identity carries, and the gateway process.

Why here: the documents come from `ccc_common.domain.iam_policies`, the builder the CDK stack uses
for the matching roles (tenant roles, the parent instance role, the Lambda roles), applied to
the concrete ARNs of the local stage. This module only maps a local identity to its role:

    admin    -> admin_policy()               (the operator's AdministratorAccess)
    parent   -> parent_policy(...)           (the enclave hosts' instance role)
    tenant-* -> tenant_policy(tenant, ...)   (one tenant role each)
    lambdas  -> every Lambda role's policy, plus the local plumbing that stands in for
                Lambda's own event delivery (see `LOCAL_LAMBDA_PLUMBING`)

and builds the `ccc.local.iam_gateway` process that enforces them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ccc.local.errors import LocalStackError
from ccc.local.iam_gateway import GatewayConfig, UpstreamCredentials
from ccc.local.iam_users import ADMIN, LAMBDAS, PARENT, LocalIdentity
from ccc.local.processes import ManagedProcess, clean_environment, python_command
from ccc.local.state import StatePaths
from ccc_common.domain import iam_policies
from ccc_common.domain.iam_policies import PolicyDocument, PolicyResources
from ccc_common.domain.naming import ResourceNames


class IamSetupError(LocalStackError, ValueError):
    """A local identity has no role to take its IAM policies from."""


def job_events_queue_arn(names: ResourceNames, partition: str = "aws") -> str:
    """The local stand-in for the job_events Lambda's EventBridge target (`provision.job_events_queue_name`)."""
    return f"arn:{partition}:sqs:{names.region}:{names.account}:{names.prefix}-job-events"


def local_lambda_plumbing(r: PolicyResources, names: ResourceNames) -> PolicyDocument:
    """What AWS's Lambda service does for the functions and the local Lambdas process does itself:
    receive and delete the job-events queue's messages (EventBridge invokes job_events on AWS) and
    read queue depths and the fleet for the local telemetry sampler (CloudWatch's job on AWS)."""
    return iam_policies.document(
        [
            iam_policies.statement(
                "LocalJobEventsDelivery",
                iam_policies.QUEUE_CONSUMER_ACTIONS,
                [job_events_queue_arn(names, r.partition)],
            ),
            iam_policies.statement(
                "LocalTelemetryQueues", ["sqs:GetQueueAttributes"], [r.work_queue_arn, r.dead_letter_queue_arn]
            ),
            iam_policies.statement("LocalTelemetryFleet", ["autoscaling:DescribeAutoScalingGroups"], ["*"]),
        ]
    )


def identity_policies(name: str, names: ResourceNames, *, partition: str = "aws") -> list[PolicyDocument]:
    """The policy documents of the local identity `name` (see the module docstring)."""
    r = iam_policies.resources_for_names(names, partition=partition)
    if name == ADMIN:
        return [iam_policies.admin_policy()]
    if name == PARENT:
        return [iam_policies.parent_policy(r)]
    if name.startswith("tenant-"):
        return [iam_policies.tenant_policy(name, r)]
    if name == LAMBDAS:
        return [iam_policies.lambda_policy(f, r) for f in iam_policies.LAMBDA_FUNCTIONS] + [
            local_lambda_plumbing(r, names)
        ]
    raise IamSetupError(f"local identity {name!r} has no IAM role")


def gateway_config(
    *,
    upstream_url: str,
    upstream: Mapping[str, str],
    identities: Iterable[LocalIdentity],
    names: ResourceNames,
    port: int = 0,
) -> GatewayConfig:
    identity_map = {i.name: i for i in identities}
    return GatewayConfig(
        upstream_url=upstream_url,
        upstream=UpstreamCredentials(upstream["access_key_id"], upstream["secret_access_key"]),
        identities=identity_map,
        policies={name: identity_policies(name, names) for name in identity_map},
        region=names.region,
        account_id=names.account,
        port=port,
    )


def _config_path(paths: StatePaths) -> Path:
    return paths.run / "iam-gateway.json"


def _ready_path(paths: StatePaths) -> Path:
    return paths.run / "iam-gateway.ready.json"


def iam_gateway_process(paths: StatePaths, config: GatewayConfig) -> tuple[ManagedProcess, Path]:
    """The gateway process and its ready file. The config (0600) holds secrets; none go on the command line."""
    config.write(_config_path(paths))
    ready = _ready_path(paths)
    ready.unlink(missing_ok=True)
    process = ManagedProcess(
        name="iam-gateway",
        command=python_command(
            "ccc.local.iam_gateway", "--config", str(_config_path(paths)), "--ready-file", str(ready)
        ),
        log_path=paths.log("iam-gateway"),
        env=clean_environment(),
    )
    return process, ready


def pin_iam_gateway_port(paths: StatePaths) -> str:
    """Fix the bound port in the config, so a restarted gateway comes back at the URL clients know."""
    ready: dict[str, Any] = json.loads(_ready_path(paths).read_text())
    config = GatewayConfig.load(_config_path(paths))
    GatewayConfig(**{**config.__dict__, "port": int(ready["port"])}).write(_config_path(paths))
    return str(ready["url"])


__all__ = [
    "IamSetupError",
    "gateway_config",
    "iam_gateway_process",
    "identity_policies",
    "job_events_queue_arn",
    "local_lambda_plumbing",
    "pin_iam_gateway_port",
]
