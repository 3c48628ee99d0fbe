"""Environment of each Lambda, validated once at cold start.

Why pydantic models: a missing queue URL or a malformed tenant map must fail the first invocation
with one clear message naming the variable, not a KeyError deep in a request. The CDK stack sets
these variables from ``naming.ResourceNames`` (the variable names below are the contract).

| variable                     | scaler | job_events | jobs_api | dead_letters |
|------------------------------|--------|------------|----------|--------------|
| CCC_STAGE                    | yes    | yes        | yes      | yes          |
| POWERTOOLS_SERVICE_NAME      | opt    | opt        | opt      | opt          |
| POWERTOOLS_METRICS_NAMESPACE | opt    | opt        | opt      | opt          |
| WORK_QUEUE_URL               | yes    |            |          |              |
| FLEET_GROUP                  | yes    |            |          |              |
| CCC_IDLE_TIMEOUT_S           | opt    |            |          |              |
| JOBS_TABLE                   |        | yes        | yes      | yes          |
| INBOX_BUCKET                 |        | yes        | yes      | yes          |
| RESULTS_BUCKET               |        | yes        | yes      |              |
| SCALER_FUNCTION              |        | opt        |          |              |
| TENANT_PRINCIPALS            |        |            | yes      |              |
| CCC_URL_EXPIRY_S             |        |            | opt      |              |
| ARCHIVE_BUCKET               |        |            |          | yes          |
| DLQ_URL                      |        |            |          | opt          |

TENANT_PRINCIPALS is a JSON object mapping IAM principal ARNs to tenant ids, e.g.
``{"arn:aws:iam::111122223333:role/cat-lovers-client": "cat-lovers"}``. Role ARNs (without path)
also match the STS assumed-role sessions of that role; see ``jobs_api.TenantDirectory``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ccc_common.naming import METRICS_NAMESPACE, validate_tenant
from ccc_common.settings import StageSettings, stage_settings

Stage = Literal["local", "dev", "prod"]  # = naming.STAGES (a unit test keeps them equal)

_NAME_RE = r"^[A-Za-z0-9._:/@+=,-]{1,256}$"
_BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class EnvError(RuntimeError):
    """The function's environment is incomplete or invalid (names the variables, never values)."""


class FunctionEnv(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    stage: Stage = Field(alias="CCC_STAGE")
    service_name: str | None = Field(default=None, alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default=METRICS_NAMESPACE, alias="POWERTOOLS_METRICS_NAMESPACE")

    @property
    def settings(self) -> StageSettings:
        return stage_settings(self.stage)


class ScalerEnv(FunctionEnv):
    work_queue_url: str = Field(alias="WORK_QUEUE_URL", min_length=1, max_length=1024)
    fleet_group: str = Field(alias="FLEET_GROUP", pattern=_NAME_RE)
    idle_timeout_s: float | None = Field(default=None, alias="CCC_IDLE_TIMEOUT_S", ge=0, le=7 * 24 * 3600)


class JobEventsEnv(FunctionEnv):
    jobs_table: str = Field(alias="JOBS_TABLE", pattern=_NAME_RE)
    inbox_bucket: str = Field(alias="INBOX_BUCKET", pattern=_BUCKET_RE)
    results_bucket: str = Field(alias="RESULTS_BUCKET", pattern=_BUCKET_RE)
    scaler_function: str | None = Field(default=None, alias="SCALER_FUNCTION")

    @field_validator("scaler_function")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class JobsApiEnv(FunctionEnv):
    jobs_table: str = Field(alias="JOBS_TABLE", pattern=_NAME_RE)
    inbox_bucket: str = Field(alias="INBOX_BUCKET", pattern=_BUCKET_RE)
    results_bucket: str = Field(alias="RESULTS_BUCKET", pattern=_BUCKET_RE)
    tenant_principals: dict[str, str] = Field(alias="TENANT_PRINCIPALS")
    url_expiry_s: int = Field(default=900, alias="CCC_URL_EXPIRY_S", ge=60, le=12 * 3600)

    @field_validator("tenant_principals", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError("must be a JSON object of principal ARN -> tenant id") from exc
        return value

    @field_validator("tenant_principals")
    @classmethod
    def _valid(cls, value: dict[str, str]) -> dict[str, str]:
        for arn, tenant in value.items():
            if not arn.startswith("arn:"):
                raise ValueError("keys must be IAM principal ARNs")
            validate_tenant(tenant)
        return value


class DeadLettersEnv(FunctionEnv):
    jobs_table: str = Field(alias="JOBS_TABLE", pattern=_NAME_RE)
    inbox_bucket: str = Field(alias="INBOX_BUCKET", pattern=_BUCKET_RE)
    archive_bucket: str = Field(alias="ARCHIVE_BUCKET", pattern=_BUCKET_RE)
    dlq_url: str | None = Field(default=None, alias="DLQ_URL")


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
