"""The names the deployed code reads: Lambda/agent environment variables, table schema, outputs.

Why one module: the Lambda handlers, the parent agent and the `ccc` CLI are written elsewhere and
read these names at run time; if the stack and the code spell one differently, a job silently goes
nowhere. The Lambda variable names are not defined here but imported from `ccc_common.contracts.lambda_env`, the
module whose pydantic models the handlers validate their environment with; each Lambda gets
exactly the variables its model reads (`lambda_environment`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ccc_common.contracts import jobs_table, stack_outputs
from ccc_common.contracts import lambda_env as function_env
from ccc_common.domain import dead_letters, iam_policies

# --- Lambda environment variables (names owned by ccc_common.contracts.lambda_env) --------------------------------
STAGE = function_env.STAGE  # dev | prod: the code calls ccc_common.domain.settings.stage_settings(stage) itself
POWERTOOLS_SERVICE_NAME = function_env.POWERTOOLS_SERVICE_NAME
POWERTOOLS_METRICS_NAMESPACE = function_env.POWERTOOLS_METRICS_NAMESPACE
POWERTOOLS_LOG_LEVEL = function_env.POWERTOOLS_LOG_LEVEL
JOBS_TABLE = function_env.JOBS_TABLE
JOBS_TENANT_INDEX = function_env.JOBS_TENANT_INDEX
JOBS_TTL_ATTRIBUTE = function_env.JOBS_TTL_ATTRIBUTE
INBOX_BUCKET = function_env.INBOX_BUCKET
RESULTS_BUCKET = function_env.RESULTS_BUCKET
WORK_QUEUE_URL = function_env.WORK_QUEUE_URL
DLQ_URL = function_env.DLQ_URL
ARCHIVE_BUCKET = function_env.ARCHIVE_BUCKET  # dead_letters archives DLQ messages (metadata) here
FLEET_GROUP = function_env.FLEET_GROUP
SCALER_FUNCTION = function_env.SCALER_FUNCTION
WEB_ORIGINS = function_env.WEB_ORIGINS  # the browser client's origins (CORS), comma-separated
TENANT_PRINCIPALS = function_env.TENANT_PRINCIPALS  # JSON {tenant: [IAM role/user ARNs]} for caller -> tenant

FUNCTIONS: tuple[str, ...] = tuple(function_env.FUNCTION_MODELS)


def lambda_environment(function: str, values: Mapping[str, str]) -> dict[str, str]:
    """The environment of one Lambda: every variable its model reads that the stack has a value
    for (`values`, keyed by the names above). A required variable without a value is a synth error,
    so the stack can neither forget a variable nor set one that no handler reads."""
    wanted = function_env.variables(function_env.FUNCTION_MODELS[function])
    missing = sorted(name for name, required in wanted.items() if required and name not in values)
    if missing:
        raise ValueError(f"Lambda {function} needs {', '.join(missing)} but the stack provides no value")
    return {name: values[name] for name in wanted if name in values}


# --- host-only environment variables (/etc/ccc/ccc.env; the systemd units read some of them) ------
HOST_METRICS_NAMESPACE = "CCC_METRICS_NAMESPACE"
LIFECYCLE_HOOK = "CCC_LIFECYCLE_HOOK"
DATA_KEY_ARN = "CCC_DATA_KEY_ARN"
ENCLAVE_CID = "CCC_ENCLAVE_CID"
ENCLAVE_PORT = "CCC_ENCLAVE_PORT"
KMS_PROXY_PORT = "CCC_KMS_PROXY_PORT"
AWS_REGION = "AWS_REGION"

# What the parent agent finds in /etc/ccc/ccc.env (systemd EnvironmentFile) on every instance.
PARENT_ENV: tuple[str, ...] = (
    STAGE,
    AWS_REGION,
    HOST_METRICS_NAMESPACE,
    WORK_QUEUE_URL,
    INBOX_BUCKET,
    RESULTS_BUCKET,
    FLEET_GROUP,
    LIFECYCLE_HOOK,
    DATA_KEY_ARN,
    ENCLAVE_CID,
    ENCLAVE_PORT,
    KMS_PROXY_PORT,
)
PARENT_CONFIG = "CCC_PARENT_CONFIG"  # path of the parent agent's JSON config (/etc/ccc/parent.json)
# Fixed at image build time (the EIF is measured, so these are baked into enclave_worker/Dockerfile):
ENCLAVE_CID_VALUE = 16  # the enclave's vsock CID (nitro-cli run-enclave --enclave-cid)
ENCLAVE_PORT_VALUE = 5005  # the enclave server listens on vsock://any:5005
KMS_PROXY_PORT_VALUE = 8000  # the in-enclave relay targets vsock://3:8000 (parent vsock-proxy)

# --- jobs table (the schema is ccc_common.contracts.jobs_table's, the one the job store queries) ------
TABLE_PARTITION_KEY = jobs_table.PARTITION_KEY  # string, 32 hex (ccc_core.identity.validate_job_id)
TENANT_INDEX_NAME = jobs_table.TENANT_INDEX
TENANT_INDEX_PARTITION_KEY = jobs_table.TENANT_INDEX_PARTITION_KEY  # string
TENANT_INDEX_SORT_KEY = jobs_table.TENANT_INDEX_SORT_KEY  # string, ISO-8601 UTC (sorts by time)
TABLE_TTL_ATTRIBUTE = jobs_table.TTL_ATTRIBUTE  # number, epoch seconds

# --- artifacts bucket layout (what the EIF build publishes and instances fetch) ------------------
RELEASE_PREFIX = iam_policies.RELEASE_PREFIX  # the parent role reads exactly this prefix
DEAD_LETTER_ARCHIVE_PREFIX = dead_letters.ARCHIVE_PREFIX  # in the artifacts bucket
EIF_NAME = "ccc-enclave.eif"
AGENT_BUNDLE_NAME = "ccc-agent.tar.gz"  # a wheelhouse: pip install --no-index --find-links
MEASUREMENTS_NAME = stack_outputs.MEASUREMENTS_NAME  # clients find it through the ReleasePrefix output


# --- stack outputs (the `ccc` CLI reads them with `--stack NAME`; names owned by ccc_common.contracts.stack_outputs)
OUTPUT_FORMAT = stack_outputs.OUTPUT_FORMAT  # the version of the output set: ccc-stack-outputs/1
OUTPUT_API_URL = stack_outputs.OUTPUT_API_URL
OUTPUT_INBOX_BUCKET = stack_outputs.OUTPUT_INBOX_BUCKET
OUTPUT_RESULTS_BUCKET = stack_outputs.OUTPUT_RESULTS_BUCKET
OUTPUT_ARTIFACTS_BUCKET = stack_outputs.OUTPUT_ARTIFACTS_BUCKET
OUTPUT_DATA_KEY_ARN = stack_outputs.OUTPUT_DATA_KEY_ARN
OUTPUT_TENANT_ROLES = stack_outputs.OUTPUT_TENANT_ROLES  # JSON {tenant: role ARN}
OUTPUT_RELEASE_PREFIX = stack_outputs.OUTPUT_RELEASE_PREFIX  # s3://<artifacts>/release/<id>/ the fleet boots from
OUTPUT_STAGE = stack_outputs.OUTPUT_STAGE
OUTPUT_HOST_LOG_GROUP = stack_outputs.OUTPUT_HOST_LOG_GROUP  # log group of the parent agents and host bootstrap
OUTPUT_DASHBOARD = stack_outputs.OUTPUT_DASHBOARD
OUTPUT_PCR_PREFIX = stack_outputs.OUTPUT_PCR_PREFIX  # EnclavePcr0, EnclavePcr1, ...: the pinned PCRs (96 hex)
