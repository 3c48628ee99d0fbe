"""Shared pieces for the Lambda handler integration tests (moto): context fake, env, resources."""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from ccc_common.contracts import jobs_table

REGION = "eu-west-1"
ACCOUNT = "111122223333"
INBOX = f"ccc-local-inbox-{ACCOUNT}-{REGION}"
RESULTS = f"ccc-local-results-{ACCOUNT}-{REGION}"
ARTIFACTS = f"ccc-local-artifacts-{ACCOUNT}-{REGION}"
TABLE = "ccc-local-jobs"
GROUP = "ccc-local-enclave-fleet"

BASE_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "CCC_STAGE": "local",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "CCC",
    "POWERTOOLS_DEV": "false",
}


@dataclass
class FakeLambdaContext:
    """What Powertools' inject_lambda_context reads from the real context object."""

    function_name: str = "ccc-local-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ccc-local-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/ccc-local-test"
    log_stream_name: str = "2025/03/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler(monkeypatch: pytest.MonkeyPatch, function: str, env: dict[str, str]) -> ModuleType:
    """Import functions.<function>.handler under ``env`` with a fresh cold-start runtime."""
    for name, value in {**BASE_ENV, **env}.items():
        monkeypatch.setenv(name, value)
    module = importlib.import_module(f"functions.{function}.handler")
    module.runtime.cache_clear()
    return module


def create_jobs_table(client: Any) -> None:
    """The table exactly as ccc_common.contracts.jobs_table defines it, TTL enabled."""
    client.create_table(**jobs_table.create_table_request(TABLE))
    client.update_time_to_live(**jobs_table.time_to_live_request(TABLE))


def create_bucket(client: Any, name: str) -> None:
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
