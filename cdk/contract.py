"""The names the deployed code reads: Lambda/agent environment variables, table schema, outputs.

Why one module: the Lambda handlers, the parent agent and the `ccc` CLI are written elsewhere and
read these names at run time; if the stack and the code spell one differently, a job silently goes
nowhere. Everything here is a plain string so it could move into `ccc_common` unchanged.
"""

from __future__ import annotations

from ccc_common import dead_letters, jobs_dal

# --- environment variables -----------------------------------------------------------------------
STAGE = "CCC_STAGE"  # dev | prod: the code calls ccc_common.settings.stage_settings(stage) itself
METRICS_NAMESPACE = "CCC_METRICS_NAMESPACE"
JOBS_TABLE = "CCC_JOBS_TABLE"
JOBS_TENANT_INDEX = "CCC_JOBS_TENANT_INDEX"
INBOX_BUCKET = "CCC_INBOX_BUCKET"
RESULTS_BUCKET = "CCC_RESULTS_BUCKET"
WORK_QUEUE_URL = "CCC_WORK_QUEUE_URL"
DEAD_LETTER_QUEUE_URL = "CCC_DEAD_LETTER_QUEUE_URL"
ARCHIVE_BUCKET = "CCC_ARCHIVE_BUCKET"  # dead_letters archives DLQ messages (metadata) here
JOBS_TTL_ATTRIBUTE = "CCC_JOBS_TTL_ATTRIBUTE"
FLEET_GROUP = "CCC_FLEET_GROUP"
LIFECYCLE_HOOK = "CCC_LIFECYCLE_HOOK"
SCALER_FUNCTION = "CCC_SCALER_FUNCTION"
DATA_KEY_ARN = "CCC_DATA_KEY_ARN"
TENANT_PRINCIPALS = "CCC_TENANT_PRINCIPALS"  # JSON {tenant: [IAM role/user ARNs]} for caller -> tenant
ENCLAVE_CID = "CCC_ENCLAVE_CID"
ENCLAVE_PORT = "CCC_ENCLAVE_PORT"
KMS_PROXY_PORT = "CCC_KMS_PROXY_PORT"
AWS_REGION = "AWS_REGION"

# Which variables each Lambda gets (besides POWERTOOLS_* and the STAGE / namespace pair).
FUNCTION_ENV: dict[str, tuple[str, ...]] = {
    "scaler": (WORK_QUEUE_URL, FLEET_GROUP),
    "job_events": (JOBS_TABLE, JOBS_TENANT_INDEX, JOBS_TTL_ATTRIBUTE, INBOX_BUCKET, RESULTS_BUCKET, SCALER_FUNCTION),
    "jobs_api": (
        JOBS_TABLE,
        JOBS_TENANT_INDEX,
        JOBS_TTL_ATTRIBUTE,
        INBOX_BUCKET,
        RESULTS_BUCKET,
        DATA_KEY_ARN,
        TENANT_PRINCIPALS,
    ),
    "dead_letters": (
        JOBS_TABLE,
        JOBS_TENANT_INDEX,
        JOBS_TTL_ATTRIBUTE,
        INBOX_BUCKET,
        DEAD_LETTER_QUEUE_URL,
        ARCHIVE_BUCKET,
    ),
}
FUNCTIONS: tuple[str, ...] = tuple(FUNCTION_ENV)

# What the parent agent finds in /etc/ccc/ccc.env (systemd EnvironmentFile) on every instance.
PARENT_ENV: tuple[str, ...] = (
    STAGE,
    AWS_REGION,
    METRICS_NAMESPACE,
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

# --- jobs table (the item layout is ccc_common.jobs_dal's; index and TTL names come from it) ------
TABLE_PARTITION_KEY = "job_id"  # string, 32 hex (ccc_common.naming.validate_job_id)
TENANT_INDEX_NAME = jobs_dal.TENANT_INDEX
TENANT_INDEX_PARTITION_KEY = "tenant"  # string
TENANT_INDEX_SORT_KEY = "created_at"  # string, ISO-8601 UTC (sorts by time)
TABLE_TTL_ATTRIBUTE = jobs_dal.TTL_ATTRIBUTE  # number, epoch seconds

# --- artifacts bucket layout (what the EIF build publishes and instances fetch) ------------------
RELEASE_PREFIX = "release/"
DEAD_LETTER_ARCHIVE_PREFIX = dead_letters.ARCHIVE_PREFIX  # in the artifacts bucket
EIF_NAME = "ccc-enclave.eif"
AGENT_BUNDLE_NAME = "ccc-agent.tar.gz"  # a wheelhouse: pip install --no-index --find-links
MEASUREMENTS_NAME = "measurements.json"


def release_key(release_id: str, name: str) -> str:
    return f"{RELEASE_PREFIX}{release_id}/{name}"


# --- stack outputs (the `ccc` CLI reads them with `--stack NAME`) ----------------------------------
OUTPUT_API_URL = "ApiUrl"
OUTPUT_INBOX_BUCKET = "InboxBucket"
OUTPUT_RESULTS_BUCKET = "ResultsBucket"
OUTPUT_ARTIFACTS_BUCKET = "ArtifactsBucket"
OUTPUT_DATA_KEY_ARN = "DataKeyArn"
OUTPUT_TENANT_ROLES = "TenantRoles"  # JSON {tenant: role ARN}
OUTPUT_RELEASE_PREFIX = "ReleasePrefix"  # s3://<artifacts>/release/<id>/ the fleet boots from
OUTPUT_STAGE = "Stage"
OUTPUT_HOST_LOG_GROUP = "HostLogGroup"  # CloudWatch log group of the parent agents and host bootstrap
OUTPUT_DASHBOARD = "Dashboard"
OUTPUT_PCR_PREFIX = "EnclavePcr"  # EnclavePcr0, EnclavePcr1, ...: the PCRs the key policy pins (96 hex)
