"""Logs never carry payloads; job id is the correlation id; env models fail clearly."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.contracts.lambda_env import (
    DeadLettersEnv,
    EnvError,
    JobEventsEnv,
    JobsApiEnv,
    ScalerEnv,
    Stage,
    load_env,
    tenant_map,
)
from ccc_common.domain.naming import METRICS_NAMESPACE, STAGES
from ccc_common.lambda_observability import RedactingFormatter, job_context, telemetry_for
from ccc_core.identity import JobRef
from ccc_core.redaction import REDACTED, redact

REF = JobRef(tenant="tenant-a", job_id="0123456789abcdef0123456789abcdef")


def test_redact_payload_keys_at_any_depth_and_all_bytes() -> None:
    record = {
        "job_id": REF.job_id,
        "result_key": REF.result_key,
        "Body": "secret",
        "nested": {"plaintext": "cat", "list": [{"Ciphertext": "xx"}, b"\x00\x01"]},
        "image": {"w": 1},
        "size": 123,
    }
    clean = redact(record)
    assert clean["job_id"] == REF.job_id and clean["result_key"] == REF.result_key and clean["size"] == 123
    assert clean["Body"] == clean["image"] == clean["nested"]["plaintext"] == REDACTED
    assert clean["nested"]["list"][0]["Ciphertext"] == REDACTED
    assert clean["nested"]["list"][1] == f"{REDACTED} 2 bytes"


@given(
    st.recursive(
        st.text(max_size=5) | st.binary(max_size=5),
        lambda c: (
            st.dictionaries(st.sampled_from(["body", "x", "image", "y"]), c, max_size=3) | st.lists(c, max_size=3)
        ),
    )
)
def test_redacted_output_has_no_bytes_and_no_payload_keys(value) -> None:
    def walk(v):
        assert not isinstance(v, bytes)
        if isinstance(v, dict):
            for key, item in v.items():
                if key in ("body", "image"):
                    assert item == REDACTED
                else:
                    walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(redact(value))


def test_logger_output_is_redacted_and_correlated(monkeypatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ccc-test-redaction")
    telemetry = telemetry_for("unit")
    stream = io.StringIO()
    telemetry.logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    with job_context(telemetry.logger, REF):
        telemetry.logger.info("processed", extra={"body": "IMAGEBYTES", "size": 3, "ciphertext": b"abc"})
    telemetry.logger.info({"plaintext": "3 cats", "job": "x"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["correlation_id"] == REF.job_id and lines[0]["job_id"] == REF.job_id
    assert lines[0]["tenant"] == "tenant-a" and lines[0]["body"] == REDACTED and lines[0]["ciphertext"] == REDACTED
    assert "job_id" not in lines[1] and lines[1]["message"]["plaintext"] == REDACTED
    assert "IMAGEBYTES" not in stream.getvalue() and "3 cats" not in stream.getvalue()
    assert isinstance(telemetry.logger.registered_formatter, RedactingFormatter)


def test_telemetry_defaults(monkeypatch) -> None:
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    telemetry = telemetry_for("job_events")
    assert telemetry.service == "ccc-job-events" and telemetry.metrics.namespace == METRICS_NAMESPACE


BASE = {"CCC_STAGE": "local"}


def test_env_models_accept_complete_environments() -> None:
    scaler = load_env(
        ScalerEnv,
        {
            **BASE,
            "CCC_WORK_QUEUE_URL": "http://127.0.0.1:5000/1/ccc-local-work",
            "CCC_FLEET_GROUP": "ccc-local-enclave-fleet",
            "CCC_IDLE_TIMEOUT_S": "12",
        },
    )
    assert scaler.idle_timeout_s == 12 and scaler.settings.stage == "local"
    events = load_env(
        JobEventsEnv,
        {
            **BASE,
            "CCC_JOBS_TABLE": "ccc-local-jobs",
            "CCC_INBOX_BUCKET": "ccc-local-inbox-1-r",
            "CCC_RESULTS_BUCKET": "ccc-local-results-1-r",
            "CCC_SCALER_FUNCTION": "",
        },
    )
    assert events.scaler_function is None and events.metrics_namespace == METRICS_NAMESPACE
    api = load_env(
        JobsApiEnv,
        {
            **BASE,
            "CCC_JOBS_TABLE": "t",
            "CCC_INBOX_BUCKET": "inb",
            "CCC_RESULTS_BUCKET": "res",
            "CCC_TENANT_PRINCIPALS": json.dumps({"arn:aws:iam::1:user/a": "tenant-a"}),
        },
    )
    assert api.tenant_principals == {"arn:aws:iam::1:user/a": "tenant-a"} and api.url_expiry_s == 900
    dead = load_env(
        DeadLettersEnv, {**BASE, "CCC_JOBS_TABLE": "t", "CCC_INBOX_BUCKET": "inb", "CCC_ARCHIVE_BUCKET": "arc"}
    )
    assert dead.settings.queue.max_receive_count >= 1


@pytest.mark.parametrize(
    ("model", "environ", "named"),
    [
        (ScalerEnv, {}, "CCC_STAGE"),
        (ScalerEnv, {"CCC_STAGE": "staging"}, "CCC_STAGE"),
        (ScalerEnv, {**BASE, "CCC_WORK_QUEUE_URL": "u"}, "CCC_FLEET_GROUP"),
        (
            JobsApiEnv,
            {
                **BASE,
                "CCC_JOBS_TABLE": "t",
                "CCC_INBOX_BUCKET": "inb",
                "CCC_RESULTS_BUCKET": "res",
                "CCC_TENANT_PRINCIPALS": "{not json",
            },
            "CCC_TENANT_PRINCIPALS",
        ),
        (
            JobsApiEnv,
            {
                **BASE,
                "CCC_JOBS_TABLE": "t",
                "CCC_INBOX_BUCKET": "inb",
                "CCC_RESULTS_BUCKET": "res",
                "CCC_TENANT_PRINCIPALS": '{"alice": "tenant-a"}',
            },
            "CCC_TENANT_PRINCIPALS",
        ),
        (
            JobsApiEnv,
            {
                **BASE,
                "CCC_JOBS_TABLE": "t",
                "CCC_INBOX_BUCKET": "inb",
                "CCC_RESULTS_BUCKET": "res",
                "CCC_TENANT_PRINCIPALS": '{"arn:aws:iam::1:user/a": "BAD TENANT"}',
            },
            "CCC_TENANT_PRINCIPALS",
        ),
        (
            DeadLettersEnv,
            {**BASE, "CCC_JOBS_TABLE": "t", "CCC_INBOX_BUCKET": "Bad_Bucket", "CCC_ARCHIVE_BUCKET": "arc"},
            "CCC_INBOX_BUCKET",
        ),
    ],
)
def test_env_errors_name_the_variable(model, environ, named) -> None:
    with pytest.raises(EnvError) as info:
        load_env(model, environ)
    assert named in str(info.value)


def test_stage_literal_matches_naming() -> None:
    assert set(Stage.__args__) == set(STAGES)  # type: ignore[attr-defined]


def test_env_reads_one_spelling_per_variable() -> None:
    """Every variable has one name (``CCC_*``, or its owner's ``POWERTOOLS_*``): the former aliases
    (unprefixed names, field names, ``CCC_METRICS_NAMESPACE``, ``CCC_DEAD_LETTER_QUEUE_URL``) are not read."""
    environ = {
        "CCC_STAGE": "dev",
        "POWERTOOLS_METRICS_NAMESPACE": "CCC",
        "CCC_JOBS_TABLE": "ccc-dev-jobs",
        "CCC_JOBS_TENANT_INDEX": "by_tenant",
        "CCC_JOBS_TTL_ATTRIBUTE": "expires_at",
        "CCC_INBOX_BUCKET": "ccc-dev-inbox-1-r",
        "CCC_RESULTS_BUCKET": "ccc-dev-results-1-r",
        "CCC_TENANT_PRINCIPALS": json.dumps({"tenant-a": ["arn:aws:iam::1:role/a", "arn:aws:iam::1:user/b"]}),
    }
    api = load_env(JobsApiEnv, environ)
    assert api.jobs_table == "ccc-dev-jobs" and api.jobs_tenant_index == "by_tenant"
    assert api.jobs_ttl_attribute == "expires_at"
    assert api.tenant_principals == {"arn:aws:iam::1:role/a": "tenant-a", "arn:aws:iam::1:user/b": "tenant-a"}
    other = load_env(JobsApiEnv, {**environ, "JOBS_TABLE": "unprefixed", "CCC_METRICS_NAMESPACE": "HostOnly"})
    assert other.jobs_table == "ccc-dev-jobs" and other.metrics_namespace == "CCC"
    without = {k: v for k, v in environ.items() if k != "CCC_JOBS_TABLE"}
    with pytest.raises(EnvError, match="CCC_JOBS_TABLE"):
        load_env(JobsApiEnv, {**without, "JOBS_TABLE": "ccc-dev-jobs", "jobs_table": "ccc-dev-jobs"})
    dead = load_env(
        DeadLettersEnv,
        {**BASE, "CCC_JOBS_TABLE": "t", "CCC_ARCHIVE_BUCKET": "arc", "CCC_DEAD_LETTER_QUEUE_URL": "https://q"},
    )
    assert dead.dlq_url is None


def test_tenant_map_rejects_ambiguity() -> None:
    with pytest.raises(ValueError, match="two tenants"):
        tenant_map({"tenant-a": ["arn:aws:iam::1:user/x"], "tenant-b": ["arn:aws:iam::1:user/x"]})
    with pytest.raises(ValueError):
        tenant_map({"tenant-a": [7]})
    with pytest.raises(ValueError):
        tenant_map("[]")
    assert tenant_map({}) == {}
