"""Environment of each Lambda, validated once at cold start.

Why pydantic models: a missing queue URL or a malformed tenant map must fail the first invocation
with one clear message naming the variable, not a KeyError deep in a request.

This module is the ONE source of the variable names: the constants below are what the models
read and what ``cdk/contract.py`` and the local stack import, and the stack gives each function
exactly the variables its model reads (``variables(FUNCTION_MODELS[name])``), so the stack and the
handlers cannot drift. One scheme, one spelling per variable: every variable this project owns is
``CCC_<NAME>`` (like the host's ``CCC_DATA_KEY_ARN``...); variables another tool owns keep its
spelling (``POWERTOOLS_*``, read by Powertools itself). No other spelling is accepted.

| variable                     | scaler | job_events | jobs_api | dead_letters |
|------------------------------|--------|------------|----------|--------------|
| CCC_STAGE                    | yes    | yes        | yes      | yes          |
| POWERTOOLS_SERVICE_NAME      | opt    | opt        | opt      | opt          |
| POWERTOOLS_METRICS_NAMESPACE | opt    | opt        | opt      | opt          |
| CCC_WORK_QUEUE_URL           | yes    |            |          |              |
| CCC_FLEET_GROUP              | yes    |            |          |              |
| CCC_IDLE_TIMEOUT_S           | opt    |            |          |              |
| CCC_JOBS_TABLE               |        | yes        | yes      | yes          |
| CCC_JOBS_TENANT_INDEX        |        | opt        | opt      | opt          |  (default by-tenant)
| CCC_JOBS_TTL_ATTRIBUTE       |        | opt        | opt      | opt          |  (default ttl)
| CCC_INBOX_BUCKET             |        | yes        | yes      | opt          |
| CCC_RESULTS_BUCKET           |        | yes        | yes      |              |
| CCC_SCALER_FUNCTION          |        | opt        |          |              |
| CCC_TENANT_PRINCIPALS        |        |            | yes      |              |
| CCC_URL_EXPIRY_S             |        |            | opt      |              |  (default 900)
| CCC_WEB_ORIGINS              |        |            | opt      |              |  (browser origins, CORS)
| CCC_ARCHIVE_BUCKET           |        |            |          | yes          |
| CCC_DLQ_URL                  |        |            |          | opt          |

CCC_TENANT_PRINCIPALS is a JSON object in either shape:
``{"arn:aws:iam::111122223333:role/cat-lovers-client": "cat-lovers"}`` (principal -> tenant) or
``{"cat-lovers": ["arn:aws:iam::111122223333:role/cat-lovers-client"]}`` (tenant -> principals).
Role ARNs (without path) also match the STS assumed-role sessions of that role; see
``jobs_api.TenantDirectory``. A principal mapped to two tenants is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from ccc_common.contracts.jobs_table import TENANT_INDEX, TTL_ATTRIBUTE
from ccc_common.domain.naming import METRICS_NAMESPACE
from ccc_common.domain.settings import StageSettings, stage_settings
from ccc_common.errors import CommonError
from ccc_core.identity import validate_tenant

# --- the variable names (the only spelling; cdk/contract.py and the local stack import these) -------
STAGE = "CCC_STAGE"
POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
POWERTOOLS_LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"  # read by Powertools itself, not by a model below
WORK_QUEUE_URL = "CCC_WORK_QUEUE_URL"
FLEET_GROUP = "CCC_FLEET_GROUP"
IDLE_TIMEOUT_S = "CCC_IDLE_TIMEOUT_S"
JOBS_TABLE = "CCC_JOBS_TABLE"
JOBS_TENANT_INDEX = "CCC_JOBS_TENANT_INDEX"
JOBS_TTL_ATTRIBUTE = "CCC_JOBS_TTL_ATTRIBUTE"
INBOX_BUCKET = "CCC_INBOX_BUCKET"
RESULTS_BUCKET = "CCC_RESULTS_BUCKET"
SCALER_FUNCTION = "CCC_SCALER_FUNCTION"
TENANT_PRINCIPALS = "CCC_TENANT_PRINCIPALS"
URL_EXPIRY_S = "CCC_URL_EXPIRY_S"
WEB_ORIGINS = "CCC_WEB_ORIGINS"  # the browser client's origins: CORS (ccc_common.domain.cors)
ARCHIVE_BUCKET = "CCC_ARCHIVE_BUCKET"
DLQ_URL = "CCC_DLQ_URL"

Stage = Literal["local", "dev", "prod"]  # = naming.STAGES (a unit test keeps them equal)

_NAME_RE = r"^[A-Za-z0-9._:/@+=,-]{1,256}$"
_BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class EnvError(CommonError, RuntimeError):
    """The function's environment is incomplete or invalid (names the variables, never values)."""


class FunctionEnv(BaseModel):
    # Fields are read by their variable name only (no field-name population): one spelling each.
    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: Stage = Field(validation_alias=STAGE)
    service_name: str | None = Field(default=None, validation_alias=POWERTOOLS_SERVICE_NAME)
    metrics_namespace: str = Field(default=METRICS_NAMESPACE, validation_alias=POWERTOOLS_METRICS_NAMESPACE)

    @property
    def settings(self) -> StageSettings:
        return stage_settings(self.stage)


class ScalerEnv(FunctionEnv):
    work_queue_url: str = Field(validation_alias=WORK_QUEUE_URL, min_length=1, max_length=1024)
    fleet_group: str = Field(validation_alias=FLEET_GROUP, pattern=_NAME_RE)
    idle_timeout_s: float | None = Field(default=None, validation_alias=IDLE_TIMEOUT_S, ge=0, le=7 * 24 * 3600)


class JobsTableEnv(FunctionEnv):
    jobs_table: str = Field(validation_alias=JOBS_TABLE, pattern=_NAME_RE)
    jobs_tenant_index: str = Field(default=TENANT_INDEX, validation_alias=JOBS_TENANT_INDEX, pattern=_NAME_RE)
    jobs_ttl_attribute: str = Field(
        default=TTL_ATTRIBUTE, validation_alias=JOBS_TTL_ATTRIBUTE, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
    )


class JobEventsEnv(JobsTableEnv):
    inbox_bucket: str = Field(validation_alias=INBOX_BUCKET, pattern=_BUCKET_RE)
    results_bucket: str = Field(validation_alias=RESULTS_BUCKET, pattern=_BUCKET_RE)
    scaler_function: str | None = Field(default=None, validation_alias=SCALER_FUNCTION)

    @field_validator("scaler_function")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


def tenant_map(value: Any) -> dict[str, str]:
    """Principal ARN -> tenant, from either accepted JSON shape:
    ``{"<principal arn>": "<tenant>"}`` or ``{"<tenant>": ["<principal arn>", ...]}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError("must be a JSON object (principal ARN -> tenant, or tenant -> [ARNs])") from exc
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object (principal ARN -> tenant, or tenant -> [ARNs])")
    mapping: dict[str, str] = {}
    for key, item in value.items():
        pairs = [(arn, key) for arn in item] if isinstance(item, list) else [(key, item)]
        for arn, tenant in pairs:
            if not isinstance(arn, str) or not arn.startswith("arn:"):
                raise ValueError("principals must be IAM principal ARNs")
            if not isinstance(tenant, str):
                raise ValueError("tenants must be strings")
            validate_tenant(tenant)
            if mapping.get(arn, tenant) != tenant:
                raise ValueError("a principal is mapped to two tenants")
            mapping[arn] = tenant
    return mapping


class JobsApiEnv(JobsTableEnv):
    inbox_bucket: str = Field(validation_alias=INBOX_BUCKET, pattern=_BUCKET_RE)
    results_bucket: str = Field(validation_alias=RESULTS_BUCKET, pattern=_BUCKET_RE)
    tenant_principals: dict[str, str] = Field(validation_alias=TENANT_PRINCIPALS)
    url_expiry_s: int = Field(default=900, validation_alias=URL_EXPIRY_S, ge=60, le=12 * 3600)
    web_origins: str = Field(default="", validation_alias=WEB_ORIGINS, max_length=4096)

    @field_validator("tenant_principals", mode="before")
    @classmethod
    def _tenants(cls, value: Any) -> dict[str, str]:
        return tenant_map(value)


class DeadLettersEnv(JobsTableEnv):
    archive_bucket: str = Field(validation_alias=ARCHIVE_BUCKET, pattern=_BUCKET_RE)
    # Optional: when set, a dead letter naming an object in another bucket is not attributed to a job.
    inbox_bucket: str | None = Field(default=None, validation_alias=INBOX_BUCKET, pattern=_BUCKET_RE)
    dlq_url: str | None = Field(default=None, validation_alias=DLQ_URL)


# Each Lambda (functions/<name>/handler.py) and the model it validates its environment with.
FUNCTION_MODELS: dict[str, type[FunctionEnv]] = {
    "scaler": ScalerEnv,
    "job_events": JobEventsEnv,
    "jobs_api": JobsApiEnv,
    "dead_letters": DeadLettersEnv,
}


def _variable_name(field: FieldInfo) -> str:
    alias = field.validation_alias
    if not isinstance(alias, str):
        raise TypeError(f"environment field without exactly one variable name: {alias!r}")
    return alias


def variables(model: type[FunctionEnv]) -> dict[str, bool]:
    """Every variable ``model`` reads -> whether it is required.
    The CDK stack sets a function's environment from this, so it never sets a name nobody reads."""
    return {_variable_name(field): field.is_required() for field in model.model_fields.values()}


EnvT = TypeVar("EnvT", bound=FunctionEnv)


def load_env(model: type[EnvT], environ: Mapping[str, str] | None = None) -> EnvT:
    """Validate the environment for one function; EnvError lists every bad variable by name."""
    source = dict(os.environ if environ is None else environ)
    try:
        return model.model_validate(source)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in error["loc"]) or "?"
            problems.append(f"{name}: {error['msg']}")
        raise EnvError(f"invalid environment for {model.__name__}: " + "; ".join(problems)) from None
