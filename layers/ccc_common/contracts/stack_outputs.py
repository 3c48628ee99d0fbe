"""The CloudFormation outputs of the CCC stack: where a client submits and what it must expect.

Writer: the CDK app (`cdk.ccc_stack`, one ``CfnOutput`` per entry of ``encode_stack_outputs``).
Reader: the client (`ccc.client.target`, ``ccc --stack NAME``), from ``DescribeStacks``. Both take
the output names from here, so a renamed output cannot leave the client looking for the old one.

Wire shape: CloudFormation outputs, a flat ``{OutputKey: OutputValue}`` map of strings::

    OutputsFormat=ccc-stack-outputs/1, Stage, ApiUrl, InboxBucket, ResultsBucket, ArtifactsBucket,
    DataKeyArn, TenantRoles (JSON {tenant: role ARN}), ReleasePrefix (s3://<artifacts>/release/<id>/),
    HostLogGroup, Dashboard, and EnclavePcr<n> (96 hex) for each PCR the data key policy pins.

The ``OutputsFormat`` output versions the set. A reader refuses a stack without it or with another
value (a stack deployed by an older or newer CDK app: redeploy, or upgrade the client), and refuses
outputs it does not know, so adding an output means a new format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import ConfigDict, Field, StringConstraints, ValidationError

from ccc_core.versioned import DocumentError, StrictModel, validation_summary

STACK_OUTPUTS_FORMAT: Final = "ccc-stack-outputs/1"

OUTPUT_FORMAT = "OutputsFormat"
OUTPUT_STAGE = "Stage"
OUTPUT_API_URL = "ApiUrl"
OUTPUT_INBOX_BUCKET = "InboxBucket"
OUTPUT_RESULTS_BUCKET = "ResultsBucket"
OUTPUT_ARTIFACTS_BUCKET = "ArtifactsBucket"
OUTPUT_DATA_KEY_ARN = "DataKeyArn"
OUTPUT_TENANT_ROLES = "TenantRoles"  # JSON {tenant: role ARN}
OUTPUT_RELEASE_PREFIX = "ReleasePrefix"  # s3://<artifacts>/release/<id>/ the fleet boots from
OUTPUT_HOST_LOG_GROUP = "HostLogGroup"  # CloudWatch log group of the parent agents and host bootstrap
OUTPUT_DASHBOARD = "Dashboard"
OUTPUT_PCR_PREFIX = "EnclavePcr"  # EnclavePcr0, EnclavePcr1, ...: the PCRs the key policy pins (96 hex)
# What the release prefix holds for clients: the measurements the EIF build published.
MEASUREMENTS_NAME = "measurements.json"

_PCR_KEY = re.compile(rf"^{OUTPUT_PCR_PREFIX}(\d{{1,2}})$")

# CDK tokens (``${Token[...]}``) stand in for most values at synth time, so values are checked
# only for being non-empty text; the PCRs are literal at synth time and checked as such.
OutputText = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
PcrHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{96}$")]


# The DataKeyArn output of a stack without an operator-run key: every tenant encrypts to the key of
# its own CccTenant stack (cdk/tenant_stack.py), which the service stack does not know.
TENANT_OWNED_KEYS = "tenant-owned"


# The tenant stack's sign-in outputs (`CccTenant` with web_url, cdk/tenant_sign_in.py). Not outputs of
# the service stack (StackOutputs): they are the tenant's, and the page's config.json carries them,
# under the field names of SIGN_IN_PAGE_CONFIG (web/src/app/config.ts reads the same names).
OUTPUT_SIGN_IN_USER_POOL_ID = "SignInUserPoolId"
OUTPUT_SIGN_IN_CLIENT_ID = "SignInClientId"
OUTPUT_SIGN_IN_DOMAIN = "SignInDomain"  # <prefix>.auth.<region>.amazoncognito.com (hosted UI, no scheme)
OUTPUT_SIGN_IN_IDENTITY_POOL_ID = "SignInIdentityPoolId"
OUTPUT_WEB_USER_ROLE_ARN = "WebUserRoleArn"  # the operator lists it among the tenant's principals
SIGN_IN_PAGE_CONFIG: Final[dict[str, str]] = {
    OUTPUT_SIGN_IN_USER_POOL_ID: "user_pool_id",
    OUTPUT_SIGN_IN_CLIENT_ID: "client_id",
    OUTPUT_SIGN_IN_DOMAIN: "domain",
    OUTPUT_SIGN_IN_IDENTITY_POOL_ID: "identity_pool_id",
}


class StackOutputs(StrictModel):
    """The outputs, by Python name; ``encode_stack_outputs`` gives the CloudFormation keys.

    Validation and serialisation aliases (not ``alias``) so that type checkers see the Python names
    as the constructor's parameters, which is how CDK builds it."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    outputs_format: Literal["ccc-stack-outputs/1"] = Field(
        default=STACK_OUTPUTS_FORMAT,
        validation_alias=OUTPUT_FORMAT,
        serialization_alias=OUTPUT_FORMAT,
        description="Version of these outputs (ccc_common.contracts)",
    )
    stage: OutputText = Field(
        validation_alias=OUTPUT_STAGE,
        serialization_alias=OUTPUT_STAGE,
        description="Stage of this stack",
    )
    api_url: OutputText = Field(
        validation_alias=OUTPUT_API_URL,
        serialization_alias=OUTPUT_API_URL,
        description="Jobs API base URL (IAM auth)",
    )
    inbox_bucket: OutputText = Field(
        validation_alias=OUTPUT_INBOX_BUCKET,
        serialization_alias=OUTPUT_INBOX_BUCKET,
        description="Inbox bucket (client ciphertext)",
    )
    results_bucket: OutputText = Field(
        validation_alias=OUTPUT_RESULTS_BUCKET,
        serialization_alias=OUTPUT_RESULTS_BUCKET,
        description="Results bucket (enclave ciphertext)",
    )
    artifacts_bucket: OutputText = Field(
        validation_alias=OUTPUT_ARTIFACTS_BUCKET,
        serialization_alias=OUTPUT_ARTIFACTS_BUCKET,
        description="Artifacts bucket (EIF, agent)",
    )
    data_key_arn: OutputText = Field(
        validation_alias=OUTPUT_DATA_KEY_ARN,
        serialization_alias=OUTPUT_DATA_KEY_ARN,
        description=f"Data key: encrypt inputs with it ({TENANT_OWNED_KEYS!r}: each tenant's own CccTenant key)",
    )
    tenant_roles: OutputText = Field(
        validation_alias=OUTPUT_TENANT_ROLES,
        serialization_alias=OUTPUT_TENANT_ROLES,
        description="JSON {tenant: client role ARN}",
    )
    release_prefix: OutputText = Field(
        validation_alias=OUTPUT_RELEASE_PREFIX,
        serialization_alias=OUTPUT_RELEASE_PREFIX,
        description="Where the fleet fetches the EIF and agent from",
    )
    host_log_group: OutputText = Field(
        validation_alias=OUTPUT_HOST_LOG_GROUP,
        serialization_alias=OUTPUT_HOST_LOG_GROUP,
        description="Logs of the enclave hosts",
    )
    dashboard: OutputText = Field(
        validation_alias=OUTPUT_DASHBOARD,
        serialization_alias=OUTPUT_DASHBOARD,
        description="CloudWatch dashboard",
    )
    # Not one output but one per PCR (EnclavePcr<n>); never taken from an output named "pcrs".
    pcrs: dict[int, PcrHex] = Field(default_factory=dict, exclude=True)


NAMED_OUTPUTS: tuple[str, ...] = tuple(
    str(info.serialization_alias) for name, info in StackOutputs.model_fields.items() if name != "pcrs"
)


def pcr_output(index: int) -> str:
    return f"{OUTPUT_PCR_PREFIX}{index}"


def encode_stack_outputs(outputs: StackOutputs) -> dict[str, str]:
    """``{OutputKey: value}`` for every output of the stack, PCRs last in index order."""
    encoded: dict[str, str] = outputs.model_dump(by_alias=True)
    for index in sorted(outputs.pcrs):
        encoded[pcr_output(index)] = outputs.pcrs[index]
    return encoded


def description(key: str) -> str:
    """The human description of output ``key`` (CloudFormation shows it next to the value)."""
    match = _PCR_KEY.fullmatch(key)
    if match:
        return f"PCR{int(match.group(1))} pinned by the data key policy"
    for info in StackOutputs.model_fields.values():
        if info.serialization_alias == key and info.description:
            return info.description
    raise KeyError(f"{key!r} is not an output of {STACK_OUTPUTS_FORMAT}")


def decode_stack_outputs(outputs: Mapping[str, str]) -> StackOutputs:
    """The outputs of a deployed stack, refused (DocumentError) unless they are exactly this format."""
    tag = outputs.get(OUTPUT_FORMAT)
    if tag != STACK_OUTPUTS_FORMAT:
        found = "no " + OUTPUT_FORMAT + " output" if tag is None else f"{OUTPUT_FORMAT}={str(tag)[:64]!r}"
        raise DocumentError(
            "unknown-format",
            f"the stack has {found}; this client reads {STACK_OUTPUTS_FORMAT!r} (deploy the stack with this "
            "version of the CDK app, or use a client of the stack's version)",
        )
    named: dict[str, object] = {}
    pcrs: dict[int, str] = {}
    unknown: list[str] = []
    for key, value in outputs.items():
        match = _PCR_KEY.fullmatch(key)
        if match:
            pcrs[int(match.group(1))] = value
        elif key in NAMED_OUTPUTS:
            named[key] = value
        else:
            unknown.append(key)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise DocumentError("malformed", f"the stack has outputs this client does not know: {names}")
    try:
        return StackOutputs.model_validate({**named, "pcrs": pcrs})
    except ValidationError as exc:
        raise DocumentError("malformed", f"the stack outputs are malformed: {validation_summary(exc)}") from None


__all__ = [
    "MEASUREMENTS_NAME",
    "NAMED_OUTPUTS",
    "OUTPUT_API_URL",
    "OUTPUT_ARTIFACTS_BUCKET",
    "OUTPUT_DASHBOARD",
    "OUTPUT_DATA_KEY_ARN",
    "OUTPUT_FORMAT",
    "OUTPUT_HOST_LOG_GROUP",
    "OUTPUT_INBOX_BUCKET",
    "OUTPUT_PCR_PREFIX",
    "OUTPUT_RELEASE_PREFIX",
    "OUTPUT_RESULTS_BUCKET",
    "OUTPUT_SIGN_IN_CLIENT_ID",
    "OUTPUT_SIGN_IN_DOMAIN",
    "OUTPUT_SIGN_IN_IDENTITY_POOL_ID",
    "OUTPUT_SIGN_IN_USER_POOL_ID",
    "OUTPUT_STAGE",
    "OUTPUT_TENANT_ROLES",
    "OUTPUT_WEB_USER_ROLE_ARN",
    "SIGN_IN_PAGE_CONFIG",
    "STACK_OUTPUTS_FORMAT",
    "DocumentError",
    "StackOutputs",
    "decode_stack_outputs",
    "description",
    "encode_stack_outputs",
    "pcr_output",
]
