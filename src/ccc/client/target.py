"""Where a client sends jobs: the buckets, the data key, the trust anchors, and how to sign requests.

Two sources: a running local stack (`stack.json` in its state dir), or a deployed CloudFormation
stack (its outputs). Both become the same `Target`, so the rest of the client has one code path.
For the local tier the tenant is also an identity of the stack (its credentials sign requests and
the KMS gateway maps them to the tenant's principal); on AWS the caller's own credentials are used.
"""

from __future__ import annotations

import json
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
from ccc_common.contracts.stack_outputs import MEASUREMENTS_NAME, DocumentError, StackOutputs, decode_stack_outputs
from ccc_common.domain.settings import stage_settings
from ccc_core.identity import NamingError, validate_tenant
from ccc_core.limits import Limits

SessionFactory = Callable[[str], Any]  # tenant -> botocore.session.Session


@dataclass(frozen=True)
class Target:
    """Everything the client needs to submit to, and verify results of, one stack."""

    description: str
    stage: str
    region: str
    inbox_bucket: str
    results_bucket: str
    key_arn: str
    # None means the pinned AWS Nitro Enclaves root (AWS tiers); the local tier has its own CA.
    attestation_root_der: bytes | None
    expected_pcrs: Mapping[int, bytes]
    session_factory: SessionFactory
    default_tenant: str | None = None
    limits: Limits = field(default_factory=lambda: stage_settings("local").limits)
    s3_endpoint_url: str | None = None
    api_url: str | None = None  # the jobs API (SigV4, execute-api); None: talk to S3 directly

    def __post_init__(self) -> None:
        if 0 not in self.expected_pcrs:
            raise TargetError(f"{self.description}: no expected PCR0, results could not be verified")

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
        root = info.attestation_root_der()
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
        key_arn=info.key_arn,
        attestation_root_der=root,
        expected_pcrs=info.expected_pcr_bytes(),
        session_factory=factory,
        default_tenant=tenants[0] if tenants else None,
        limits=stage_settings(info.stage).limits,
        s3_endpoint_url=info.endpoint_url,
        api_url=info.api_url or None,
    )


def _pcr(name: str, value: object) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 48:
        raise TargetError(f"{name} is not a 48-byte PCR in hex")
    if raw == bytes(48):
        raise TargetError(f"{name} is all zeros (a debug-mode enclave): refusing to trust it")
    return raw


def measurements_to_pcrs(document: object) -> dict[int, bytes]:
    """PCRs from a `ccc-enclave-measurements/1` document ({"pcrs": {"PCR0": hex, ...}})."""
    if not isinstance(document, dict) or not isinstance(document.get("pcrs"), dict):
        raise TargetError("the enclave measurements document has no `pcrs` object")
    pcrs_field = document["pcrs"]
    if document.get("placeholder") is True:
        raise TargetError("the stack was deployed with placeholder measurements: no enclave can run it")
    pcrs: dict[int, bytes] = {}
    for name, value in pcrs_field.items():
        if not (isinstance(name, str) and name.startswith("PCR") and name[3:].isdigit()):
            raise TargetError(f"unknown measurement {name!r}")
        pcrs[int(name[3:])] = _pcr(name, value)
    return pcrs


def outputs_to_target(
    stack_name: str,
    outputs: Mapping[str, str],
    region: str,
    session_factory: SessionFactory,
    measurements: Mapping[int, bytes] | None = None,
) -> Target:
    """Build a Target from CloudFormation outputs (pure: unit-testable without AWS).

    The outputs must be the stack-outputs contract's (`ccc_common.contracts.stack_outputs`, its
    version included). Expected PCRs come from `EnclavePcr<n>` outputs when present, else from
    `measurements` (the release's measurements.json that the caller fetched).
    """
    stack = _stack_outputs(stack_name, outputs)
    pcrs: dict[int, bytes] = dict(measurements or {})
    for index, value in stack.pcrs.items():
        pcrs[index] = _pcr(f"stack output EnclavePcr{index}", value)
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
        key_arn=stack.data_key_arn,
        attestation_root_der=None,
        expected_pcrs=pcrs,
        session_factory=session_factory,
        limits=limits,
        api_url=stack.api_url,
    )


def _stack_outputs(stack_name: str, outputs: Mapping[str, str]) -> StackOutputs:
    try:
        return decode_stack_outputs(outputs)
    except DocumentError as exc:
        raise TargetError(f"stack {stack_name}: {exc}") from None


def cloudformation_target(stack_name: str, *, region: str | None = None, cloudformation: Any = None) -> Target:
    """The target of a deployed stack, from its CloudFormation outputs and the caller's credentials."""
    def factory(_tenant: str) -> Any:
        session = botocore.session.Session()
        if region:
            session.set_config_variable("region", region)
        return session

    if cloudformation is None:
        cloudformation = boto3.session.Session(botocore_session=factory("")).client("cloudformation")
    resolved_region = region or cloudformation.meta.region_name
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        raise TargetError(f"cannot read stack {stack_name}: {exc}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise TargetError(f"cannot reach CloudFormation: {exc}") from None
    if not stacks:
        raise TargetError(f"stack {stack_name} not found")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    stack = _stack_outputs(stack_name, outputs)
    measurements = None
    if not stack.pcrs:
        measurements = _fetch_measurements(stack.release_prefix, factory(""), resolved_region)
    return outputs_to_target(stack_name, outputs, resolved_region, factory, measurements)


def _fetch_measurements(release_prefix: str, session: Any, region: str) -> dict[int, bytes]:
    """Read <ReleasePrefix>measurements.json (what the EIF build published) for the expected PCRs."""
    if not release_prefix.startswith("s3://"):
        raise TargetError(f"release prefix {release_prefix!r} is not an s3:// URL")
    bucket, _, prefix = release_prefix[len("s3://") :].partition("/")
    key = f"{prefix.rstrip('/')}/{MEASUREMENTS_NAME}" if prefix else MEASUREMENTS_NAME
    s3 = boto3.session.Session(botocore_session=session).client("s3", region_name=region)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(64 * 1024)
        document = json.loads(body)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise TargetError(f"cannot read the enclave measurements s3://{bucket}/{key}: {exc}") from None
    return measurements_to_pcrs(document)
