"""`ccc trust init`: propose a trust file from a stack, for the tenant to check and accept.

Why only a proposal: at init the tenant has nothing pinned yet, so the stack is where the values
can come from -- but they are the operator's claims, so each is shown with its source and written
only when the tenant confirms (`--yes` accepts). After that, nothing here is consulted again.

Sources, best first:
* releases: the tenant key's own policy (GetKeyPolicy as the tenant: what KMS will enforce); only
  when that cannot be read, the stack's published PCRs (`stack.json`; the `EnclavePcr<n>` outputs
  or the release's `measurements.json`), flagged as such;
* data key: `--key-arn` (the tenant's own key), else the stack's per-tenant key
  (`tenant_key_arns`), else the stack's shared data key, flagged as operator-run;
* root: the AWS Nitro root shipped with ccc (AWS), or the local stack's CA (captured now).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from ccc.client.errors import TargetError
from ccc.client.target import caller_session_factory, describe_stack_outputs, stack_outputs
from ccc.local.aws_config import botocore_session
from ccc.local.state import StackInfo, StackStateError, read_stack_info
from ccc.release.manifest import pcr_problem
from ccc.trust.document import PinnedRelease, PinnedRoot, TrustFile, aws_nitro_root, root_from_der
from ccc.trust.errors import TrustError, TrustFileError
from ccc.trust.key_policy_reader import KeyPolicyUnreadable, key_releases
from ccc.trust.releases import pinned_release
from ccc_common.contracts.stack_outputs import MEASUREMENTS_NAME, TENANT_OWNED_KEYS
from ccc_core.identity import NamingError, validate_tenant


class ProposalError(TrustError):
    """The stack cannot propose a trust file (no such stack or tenant, nothing to pin)."""


@dataclass(frozen=True)
class Proposal:
    """A trust file not yet accepted, with where each value came from (shown to the tenant)."""

    tenant: str
    data_key_arn: str
    key_source: str
    root: PinnedRoot
    root_source: str
    releases: tuple[PinnedRelease, ...]
    release_source: str
    warnings: tuple[str, ...] = field(default=())

    def trust_file(self) -> TrustFile:
        try:
            return TrustFile(
                format="ccc.trust/v1",
                tenant=self.tenant,
                data_key_arn=self.data_key_arn,
                attestation_root=self.root,
                releases=list(self.releases),
            )
        except ValueError as exc:
            raise TrustFileError(f"the proposed values do not make a valid trust file: {exc}") from None

    def lines(self) -> list[str]:
        """What `ccc trust init` shows before asking."""
        out = [
            f"tenant:       {self.tenant}",
            f"data key:     {self.data_key_arn}",
            f"              ({self.key_source})",
            f"root:         {self.root.kind}, SHA-256 {self.root.sha256}",
            f"              ({self.root_source})",
            f"releases:     ({self.release_source})",
        ]
        for release in self.releases:
            pcrs = ", ".join(f"{name} {value[:16]}…" for name, value in sorted(release.pcrs.items()))
            out.append(f"  {release.id}: {pcrs}")
        out += [f"warning: {warning}" for warning in self.warnings]
        return out


def _tenant(name: str) -> str:
    try:
        return validate_tenant(name)
    except NamingError as exc:
        raise ProposalError(str(exc)) from None


def _releases_from_key(kms: Any, key_arn: str, now: datetime | None) -> tuple[PinnedRelease, ...]:
    return tuple(
        pinned_release(release.release_id, release.pcrs, source="key-policy", now=now)
        for release in key_releases(kms, key_arn)
    )


def _releases_from_pcrs(pcrs: dict[int, str], source: Any, now: datetime | None) -> tuple[PinnedRelease, ...]:
    for index, value in pcrs.items():
        if (problem := pcr_problem(value)) is not None:
            raise ProposalError(f"the stack's PCR{index} {problem}")
    return (pinned_release(None, pcrs, source=source, now=now),)


def propose_from_local_stack(
    state_dir: Path, tenant: str, *, key_arn: str | None = None, now: datetime | None = None
) -> Proposal:
    """Propose from a running local stack's `stack.json`, its CA and the tenant key's policy."""
    tenant = _tenant(tenant)
    try:
        info = read_stack_info(state_dir)
        root_der = info.attestation_root_der()
    except StackStateError as exc:
        raise ProposalError(str(exc)) from None
    if tenant not in info.identities or not tenant.startswith("tenant-"):
        known = ", ".join(sorted(name for name in info.identities if name.startswith("tenant-")))
        raise ProposalError(f"the local stack has no tenant {tenant!r} (tenants: {known})")
    chosen_key, key_source, warnings = _local_key(info, tenant, key_arn)
    kms = boto3.session.Session(botocore_session=botocore_session(info, tenant)).client("kms")
    try:
        releases = _releases_from_key(kms, chosen_key, now)
        release_source = "read from the key's own policy with the tenant's credentials"
    except KeyPolicyUnreadable as exc:
        pcrs = {int(index): value for index, value in info.expected_pcrs.items()}
        releases = _releases_from_pcrs(pcrs, "local-stack", now)
        release_source = "from the stack's stack.json: the key's policy could not be read"
        warnings.append(f"{exc}; the releases shown are the operator's claim, check them")
    if not releases:
        raise ProposalError(f"the policy of {chosen_key} releases to no enclave: nothing to pin")
    return Proposal(
        tenant=tenant,
        data_key_arn=chosen_key,
        key_source=key_source,
        root=root_from_der(root_der, kind="local"),
        root_source=f"the local stack's CA, {info.attestation_root_pem}, captured now",
        releases=releases,
        release_source=release_source,
        warnings=tuple(warnings),
    )


def _local_key(info: StackInfo, tenant: str, key_arn: str | None) -> tuple[str, str, list[str]]:
    if key_arn:
        return key_arn, "given with --key-arn", []
    per_tenant: Any = getattr(info, "tenant_key_arns", None) or {}
    if isinstance(per_tenant, dict) and isinstance(per_tenant.get(tenant), str):
        return per_tenant[tenant], f"the local stack's key for {tenant} (tenant_key_arns)", []
    return (
        info.key_arn,
        "the local stack's shared data key",
        ["this stack has no per-tenant key for this tenant: the shared key is the operator's (demo only)"],
    )


def propose_from_cloudformation(
    stack_name: str,
    tenant: str,
    *,
    region: str | None = None,
    key_arn: str | None = None,
    cloudformation: Any = None,
    kms: Any = None,
    s3: Any = None,
    now: datetime | None = None,
) -> Proposal:
    """Propose from a deployed stack's outputs and the tenant key's policy (caller's credentials)."""
    tenant = _tenant(tenant)
    session = boto3.session.Session(botocore_session=caller_session_factory(region)(tenant))
    try:
        outputs = describe_stack_outputs(stack_name, cloudformation or session.client("cloudformation"))
        stack = stack_outputs(stack_name, outputs)
    except TargetError as exc:
        raise ProposalError(str(exc)) from None
    warnings: list[str] = []
    if key_arn:
        chosen_key, key_source = key_arn, "given with --key-arn (your own key)"
    elif stack.data_key_arn == TENANT_OWNED_KEYS:
        raise ProposalError(
            f"{stack_name}'s tenants own their data keys: pass yours with --key-arn (the TenantDataKeyArn "
            "output of the CccTenant stack you deployed in your account)"
        )
    else:
        chosen_key, key_source = stack.data_key_arn, f"stack output DataKeyArn of {stack_name}"
        warnings.append(
            "DataKeyArn is the operator's key: the operator can change its policy. Deploy the CccTenant "
            "stack in your own account and pass its key with --key-arn"
        )
    try:
        releases = _releases_from_key(kms or session.client("kms"), chosen_key, now)
        release_source = "read from the key's own policy with your credentials"
    except KeyPolicyUnreadable as exc:
        pcrs = dict(stack.pcrs) or _measurements(stack.release_prefix, s3 or session.client("s3"))
        releases = _releases_from_pcrs(pcrs, "stack-outputs", now)
        release_source = f"from {stack_name}'s outputs: the key's policy could not be read"
        warnings.append(f"{exc}; the releases shown are the operator's claim, check them against a release.json")
    if not releases:
        raise ProposalError(f"the policy of {chosen_key} releases to no enclave: nothing to pin")
    return Proposal(
        tenant=tenant,
        data_key_arn=chosen_key,
        key_source=key_source,
        root=aws_nitro_root(),
        root_source="AWS Nitro Enclaves Root-G1, shipped with ccc and fingerprint-checked",
        releases=releases,
        release_source=release_source,
        warnings=tuple(warnings),
    )


def measurements_to_pcrs(document: object) -> dict[int, str]:
    """PCRs (index -> hex) from a `ccc-enclave-measurements/1` document ({"pcrs": {"PCR0": hex, ...}})."""
    if not isinstance(document, dict) or not isinstance(document.get("pcrs"), dict):
        raise ProposalError("the enclave measurements document has no `pcrs` object")
    if document.get("placeholder") is True:
        raise ProposalError("the stack was deployed with placeholder measurements: no enclave can run it")
    pcrs: dict[int, str] = {}
    for name, value in document["pcrs"].items():
        if not (isinstance(name, str) and name.startswith("PCR") and name[3:].isdigit()):
            raise ProposalError(f"unknown measurement {name!r}")
        if not isinstance(value, str) or (problem := pcr_problem(value.lower())) is not None:
            raise ProposalError(f"{name} {problem or 'is not a string'}")
        pcrs[int(name[3:])] = value.lower()
    return pcrs


def _measurements(release_prefix: str, s3: Any) -> dict[int, str]:
    """<ReleasePrefix>measurements.json, what the EIF build published (a proposal only)."""
    if not release_prefix.startswith("s3://"):
        raise ProposalError(f"release prefix {release_prefix!r} is not an s3:// URL")
    bucket, _, prefix = release_prefix[len("s3://") :].partition("/")
    key = f"{prefix.rstrip('/')}/{MEASUREMENTS_NAME}" if prefix else MEASUREMENTS_NAME
    try:
        document = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read(64 * 1024))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ValueError) as exc:
        raise ProposalError(f"cannot read the enclave measurements s3://{bucket}/{key}: {exc}") from None
    return measurements_to_pcrs(document)
