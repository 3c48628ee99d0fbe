"""The parent agent's configuration: one JSON document (file, env var, or built by the local stack).

Why a validated model: the agent runs unattended on a host; a typo in a queue URL or a missing
bucket name must stop it at start with a message naming the field, not fail every job later.
Secrets (local static credentials) may appear in the file but never in errors or logs: the
credential fields are `SecretStr`.

Format (every key except the four resource names and `enclave.uri` is optional):

    {
      "stage": "local",                       # selects queue/limit defaults (ccc_common.domain.settings)
      "region": "us-east-1",
      "queue_url": "http://127.0.0.1:5000/123456789012/ccc-local-work",
      "inbox_bucket": "ccc-local-inbox-123456789012-us-east-1",
      "results_bucket": "ccc-local-results-123456789012-us-east-1",
      "jobs_table": "ccc-local-jobs", "lease_s": null,          # job leases (null table: no leases)
      "enclave": {"uri": "tcp://127.0.0.1:5005", "timeout_s": 150, "connect_timeout_s": 5},
      "aws": {"endpoint_url": "http://127.0.0.1:5000",          # S3 + SQS (moto locally; omit on AWS)
              "credentials": {"access_key_id": "...", "secret_access_key": "...", "session_token": null}},
      "kms": {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:5001"},   # what the enclave uses
      "workers": 2, "max_jobs": null,
      "wait_time_s": null, "visibility_timeout_s": null,        # default: stage settings
      "backoff": {"base_s": 5, "max_s": 300},
      "imds": {"url": "http://169.254.169.254", "token_ttl_s": 21600},
      "lifecycle": {"group_name": "ccc-dev-enclave-fleet", "hook_name": "ccc-dev-drain",
                    "poll_s": 5, "heartbeat_s": 60, "max_drain_s": 900},
      "telemetry": {"health_interval_s": 10,                   # enclave health/metrics polls
                    "emf": "tcp://127.0.0.1:25888", "namespace": "CCC"},   # CloudWatch agent (AWS); null = off
      "ready_file": null, "state_dir": null, "log_level": "INFO"
    }

`aws.credentials` present -> those static credentials are used for S3/SQS and passed to the
enclave for KMS (local tier). Absent -> IMDSv2 role credentials for the enclave, and boto3's
default chain (the same instance role) for the agent's own S3/SQS clients (AWS).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ccc_common.domain.settings import StageSettings, stage_settings
from ccc_enclave.transport import EndpointError, parse_endpoint
from enclave_worker.parent.errors import ParentError

CONFIG_ENV = "CCC_PARENT_CONFIG"  # path of the JSON file
CONFIG_JSON_ENV = "CCC_PARENT_CONFIG_JSON"  # or the JSON itself
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_URL = r"^https?://[^\s]+$"


class AgentConfigError(ParentError, ValueError):
    """The configuration is missing or invalid (names fields, never secret values)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StaticCredentials(_Model):
    access_key_id: str = Field(min_length=1, max_length=128)
    secret_access_key: SecretStr
    session_token: SecretStr | None = None


class AwsSection(_Model):
    endpoint_url: str | None = Field(default=None, pattern=_URL, max_length=2048)
    credentials: StaticCredentials | None = None


class KmsSection(_Model):
    region: str | None = Field(default=None, pattern=_REGION)
    endpoint_url: str | None = Field(default=None, pattern=_URL, max_length=2048)


class EnclaveSection(_Model):
    uri: str
    timeout_s: float | None = Field(default=None, gt=0, le=3600)  # default: job_timeout_s + margin
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    health_interval_s: float = Field(default=15.0, gt=0, le=3600)

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        try:
            parse_endpoint(value)
        except EndpointError as exc:
            raise ValueError(str(exc)) from None
        return value


class BackoffSection(_Model):
    base_s: int = Field(default=5, ge=0, le=43200)
    max_s: int = Field(default=300, ge=0, le=43200)  # SQS caps a visibility timeout at 12 h


class ImdsSection(_Model):
    url: str = Field(default="http://169.254.169.254", pattern=_URL)
    token_ttl_s: int = Field(default=21600, ge=1, le=21600)
    timeout_s: float = Field(default=2.0, gt=0, le=60)


class LifecycleSection(_Model):
    group_name: str = Field(min_length=1, max_length=255)
    hook_name: str = Field(min_length=1, max_length=255)
    poll_s: float = Field(default=5.0, gt=0, le=300)
    heartbeat_s: float = Field(default=60.0, gt=0, le=3600)
    max_drain_s: float = Field(default=900.0, gt=0, le=7 * 24 * 3600)


class TelemetrySection(_Model):
    """How often the parent polls the enclave's health channel for metrics, and where metrics go on
    AWS: CloudWatch embedded metric format to the CloudWatch agent. (There are no privacy releases
    to poll any more: nothing content-derived leaves the enclave unencrypted.)"""

    health_interval_s: float | None = Field(default=None, gt=0, le=3600)  # default: 2 s local, 10 s AWS
    emf: str | None = Field(default=None, pattern=r"^((tcp|udp)://[A-Za-z0-9.-]+:\d{1,5}|file:///\S+|stdout)$")
    namespace: str = Field(default="CCC", pattern=r"^[A-Za-z0-9_./#:-]{1,255}$")

    def effective_health_interval_s(self, stage: str) -> float:
        return self.health_interval_s or (2.0 if stage == "local" else 10.0)


class ParentConfig(_Model):
    stage: Literal["local", "dev", "prod"] = "local"
    region: str = Field(pattern=_REGION)
    queue_url: str = Field(pattern=_URL, max_length=2048)
    inbox_bucket: str = Field(pattern=_BUCKET)
    results_bucket: str = Field(pattern=_BUCKET)
    # The jobs table where a worker claims a job before running it (ccc_common.domain.job_leases), so
    # duplicate deliveries do not run the enclave twice. None: no leases (the results are still
    # written exactly once, by conditional writes; duplicates then cost enclave runs).
    jobs_table: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{3,255}$")
    lease_s: float | None = Field(default=None, gt=0, le=43200)
    enclave: EnclaveSection
    aws: AwsSection = AwsSection()
    kms: KmsSection = KmsSection()
    workers: int = Field(default=2, ge=1, le=64)
    max_jobs: int | None = Field(default=None, ge=1)
    wait_time_s: int | None = Field(default=None, ge=0, le=20)
    visibility_timeout_s: int | None = Field(default=None, ge=1, le=43200)
    backoff: BackoffSection = BackoffSection()
    imds: ImdsSection = ImdsSection()
    lifecycle: LifecycleSection | None = None
    telemetry: TelemetrySection = TelemetrySection()
    ready_file: Path | None = None
    state_dir: Path | None = None  # local stack: telemetry JSON Lines under <state_dir>/telemetry
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    @property
    def settings(self) -> StageSettings:
        return stage_settings(self.stage)

    @property
    def kms_region(self) -> str:
        return self.kms.region or self.region

    @property
    def effective_wait_time_s(self) -> int:
        return self.wait_time_s if self.wait_time_s is not None else self.settings.queue.receive_wait_s

    @property
    def effective_visibility_timeout_s(self) -> int:
        if self.visibility_timeout_s is not None:
            return self.visibility_timeout_s
        return self.settings.queue.visibility_timeout_s

    @property
    def enclave_timeout_s(self) -> float:
        """How long to wait for a job reply: the job timeout plus margin for KMS round trips."""
        return self.enclave.timeout_s or float(self.settings.limits.job_timeout_s) + 30.0


def parse_config(data: Any, *, origin: str = "configuration") -> ParentConfig:
    try:
        return ParentConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise AgentConfigError(f"invalid parent configuration in {origin}: {problems}") from None


def load_config(path: Path | None = None, *, overrides: dict[str, Any] | None = None) -> ParentConfig:
    """From `path`, else $CCC_PARENT_CONFIG (a path), else $CCC_PARENT_CONFIG_JSON; then top-level overrides."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is not None:
        origin = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AgentConfigError(f"cannot read parent configuration {path}: {exc.strerror or exc}") from None
    elif os.environ.get(CONFIG_JSON_ENV):
        origin, text = f"${CONFIG_JSON_ENV}", os.environ[CONFIG_JSON_ENV]
    else:
        raise AgentConfigError(f"no parent configuration: pass --config FILE or set ${CONFIG_ENV} / ${CONFIG_JSON_ENV}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AgentConfigError(f"parent configuration in {origin} is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise AgentConfigError(f"parent configuration in {origin} must be a JSON object")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "enclave_uri":
            data["enclave"] = {**(data.get("enclave") or {}), "uri": value}
        else:
            data[key] = value
    return parse_config(data, origin=origin)
