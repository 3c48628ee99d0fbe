"""Where a client sends jobs: the buckets, the jobs API, and how to sign requests. Never what to trust.

Two sources: a running local stack (`stack.json` in its state dir), or a deployed CloudFormation
stack (its outputs). Both become the same `Target`, so the rest of the client has one code path.
For the local tier the tenant is also an identity of the stack (its credentials sign requests and
the KMS gateway maps them to the tenant's principal); on AWS the caller's own credentials are used.

A Target carries no trust anchor: the data key, the attestation root and the releases a result may
come from are the tenant's, pinned in its trust file (`ccc.trust`), because everything a stack
publishes is the operator's to change. `ccc trust init` may *propose* them from a stack
(`ccc.trust.proposal`); at verification time nothing here is consulted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
from botocore.config import Config

from ccc.client.errors import TargetError
from ccc.local.aws_config import botocore_session
from ccc.local.state import StackStateError, read_stack_info
from ccc_common.contracts.stack_outputs import DocumentError, StackOutputs, decode_stack_outputs
from ccc_common.domain.settings import stage_settings
from ccc_core.identity import NamingError, validate_tenant
from ccc_core.limits import Limits

SessionFactory = Callable[[str], Any]  # tenant -> botocore.session.Session


@dataclass(frozen=True)
class Target:
    """Everything the client needs to submit to one stack and fetch what it returns (no trust anchors)."""

    description: str
    stage: str
    region: str
    inbox_bucket: str
    results_bucket: str
    session_factory: SessionFactory
    default_tenant: str | None = None
    limits: Limits = field(default_factory=lambda: stage_settings("local").limits)
    s3_endpoint_url: str | None = None
    api_url: str | None = None  # the jobs API (SigV4, execute-api); None: talk to S3 directly

    def tenant(self, requested: str | None) -> str:
        tenant = requested or self.default_tenant
        if tenant is None:
            raise TargetError("no tenant given: use --tenant")
        try:
            return validate_tenant(tenant)
        except NamingError as exc:
            raise TargetError(str(exc)) from None

    def botocore_session(self, tenant: str) -> Any:
        return self.session_factory(tenant)

    def s3_client(self, tenant: str) -> Any:
        session = boto3.session.Session(botocore_session=self.botocore_session(tenant))
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, signature_version="s3v4")
        return session.client("s3", region_name=self.region, endpoint_url=self.s3_endpoint_url, config=config)


def local_target(state_dir: Path) -> Target:
    """The target of a running local stack (raises TargetError if none runs there)."""
    try:
        info = read_stack_info(state_dir)
    except StackStateError as exc:
        raise TargetError(str(exc)) from None
    tenants = sorted(name for name in info.identities if name.startswith("tenant-"))

    def factory(tenant: str) -> Any:
        if tenant not in info.identities or not tenant.startswith("tenant-"):
            raise TargetError(f"the local stack has no tenant {tenant!r} (tenants: {', '.join(tenants)})")
        return botocore_session(info, tenant)

    return Target(
        description=f"local stack in {info.state_dir}",
        stage=info.stage,
        region=info.region,
        inbox_bucket=info.inbox_bucket,
        results_bucket=info.results_bucket,
        session_factory=factory,
        default_tenant=tenants[0] if tenants else None,
        limits=stage_settings(info.stage).limits,
        s3_endpoint_url=info.endpoint_url,
        api_url=info.api_url or None,
    )


def outputs_to_target(
    stack_name: str,
    outputs: Mapping[str, str],
    region: str,
    session_factory: SessionFactory,
) -> Target:
    """Build a Target from CloudFormation outputs (pure: unit-testable without AWS).

    The outputs must be the stack-outputs contract's (`ccc_common.contracts.stack_outputs`, its
    version included). Its `DataKeyArn` and `EnclavePcr<n>` are not used here: they are the
    operator's claims, which only `ccc trust init` may show the tenant as proposals.
    """
    stack = stack_outputs(stack_name, outputs)
    try:
        limits = stage_settings(stack.stage).limits
    except ValueError:
        raise TargetError(f"stack {stack_name} reports unknown stage {stack.stage!r}") from None
    return Target(
        description=f"stack {stack_name} ({region})",
        stage=stack.stage,
        region=region,
        inbox_bucket=stack.inbox_bucket,
        results_bucket=stack.results_bucket,
        session_factory=session_factory,
        limits=limits,
        api_url=stack.api_url,
    )


def stack_outputs(stack_name: str, outputs: Mapping[str, str]) -> StackOutputs:
    try:
        return decode_stack_outputs(outputs)
    except DocumentError as exc:
        raise TargetError(f"stack {stack_name}: {exc}") from None


def describe_stack_outputs(stack_name: str, cloudformation: Any) -> dict[str, str]:
    """The stack's outputs as `{OutputKey: OutputValue}` (TargetError when it cannot be read)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        raise TargetError(f"cannot read stack {stack_name}: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise TargetError(f"cannot reach CloudFormation: {exc}") from None
    if not stacks:
        raise TargetError(f"stack {stack_name} not found")
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def caller_session_factory(region: str | None) -> SessionFactory:
    """On AWS every tenant is the caller's own credentials (its profile or role)."""

    def factory(_tenant: str) -> Any:
        session = botocore.session.Session()
        if region:
            session.set_config_variable("region", region)
        return session

    return factory


def cloudformation_target(stack_name: str, *, region: str | None = None, cloudformation: Any = None) -> Target:
    """The target of a deployed stack, from its CloudFormation outputs and the caller's credentials."""
    factory = caller_session_factory(region)
    if cloudformation is None:
        cloudformation = boto3.session.Session(botocore_session=factory("")).client("cloudformation")
    resolved_region = region or cloudformation.meta.region_name
    outputs = describe_stack_outputs(stack_name, cloudformation)
    return outputs_to_target(stack_name, outputs, resolved_region, factory)
