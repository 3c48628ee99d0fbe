"""The Lambdas' Powertools EMF output (stdout) carries exactly the dimension the dashboard reads
(``Stage``), no ``service`` dimension, and only names from ``ccc_core.telemetry.metric_registry``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from ccc_common.lambda_observability import telemetry_for
from ccc_core.telemetry import metric_registry as m
from tests.conftest import load_event
from tests.integration.fn_helpers import FakeLambdaContext, load_handler

STAGE = "dev"
TABLE_ENV = {
    "CCC_STAGE": STAGE,
    "CCC_JOBS_TABLE": "ccc-dev-jobs",
    "CCC_INBOX_BUCKET": "ccc-dev-inbox-1-eu-west-1",
    "CCC_RESULTS_BUCKET": "ccc-dev-results-1-eu-west-1",
    "POWERTOOLS_SERVICE_NAME": "job_events",
}


def _emf_documents(out: str) -> list[dict[str, Any]]:
    return [doc for line in out.splitlines() if line.startswith("{") and "_aws" in (doc := json.loads(line))]


def _assert_contract(document: dict[str, Any], emitter: m.Emitter) -> list[str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == m.NAMESPACE
    assert directive["Dimensions"] == [[m.STAGE_DIMENSION]]
    assert document[m.STAGE_DIMENSION] == STAGE and "service" not in document
    names = [metric["Name"] for metric in directive["Metrics"]]
    for name in names:
        assert name in m.emitted_by(emitter), name
        assert next(x["Unit"] for x in directive["Metrics"] if x["Name"] == name) == m.spec(name).unit.value
    return names


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Any:
    telemetry = telemetry_for("job_events")
    telemetry.metrics.clear_metrics()
    telemetry.metrics.clear_default_dimensions()
    yield
    telemetry.metrics.clear_metrics()
    telemetry.metrics.clear_default_dimensions()


def test_job_events_handler_output_has_stage_and_registered_names(monkeypatch, capsys) -> None:
    module = load_handler(monkeypatch, "job_events", TABLE_ENV)
    event = copy.deepcopy(load_event("s3_object_created_inbox.json"))
    event["detail"]["object"]["key"] = "not-a-job-key"  # parses as an event, not as a job: no AWS call
    event["detail"]["bucket"]["name"] = TABLE_ENV["CCC_INBOX_BUCKET"]
    module.handler(event, FakeLambdaContext())
    documents = _emf_documents(capsys.readouterr().out)
    assert len(documents) == 1
    names = _assert_contract(documents[0], m.Emitter.JOB_EVENTS)
    assert names and set(names) <= {m.MALFORMED_JOB_EVENTS, m.IGNORED_JOB_EVENTS}


def test_jobs_api_forbidden_is_counted_per_stage(monkeypatch, capsys) -> None:
    env = {
        **TABLE_ENV,
        "POWERTOOLS_SERVICE_NAME": "jobs_api",
        "CCC_TENANT_PRINCIPALS": json.dumps({"demo": ["arn:aws:iam::111122223333:role/demo-client"]}),
    }
    module = load_handler(monkeypatch, "jobs_api", env)
    event = copy.deepcopy(load_event("apigw_list_jobs.json"))
    event["requestContext"]["identity"]["userArn"] = "arn:aws:iam::111122223333:role/stranger"
    response = module.handler(event, FakeLambdaContext())
    assert response["statusCode"] == 403
    (document,) = _emf_documents(capsys.readouterr().out)
    assert _assert_contract(document, m.Emitter.JOBS_API) == [m.API_FORBIDDEN]


def test_jobs_failed_from_a_lambda_is_the_series_the_dashboard_reads(monkeypatch, capsys) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ccc-dead-letters")  # would add `service` if honoured
    telemetry = telemetry_for("dead_letters")
    telemetry.bind_stage(STAGE)
    telemetry.count(m.JOBS_FAILED, 2)
    telemetry.metrics.flush_metrics()
    (document,) = _emf_documents(capsys.readouterr().out)
    assert _assert_contract(document, m.Emitter.DEAD_LETTERS) == [m.JOBS_FAILED]
    assert document[m.JOBS_FAILED] == [2.0] or document[m.JOBS_FAILED] == 2.0


def test_count_refuses_unregistered_names_and_foreign_emitters() -> None:
    scaler = telemetry_for("scaler")
    with pytest.raises(KeyError, match="NotAMetric"):
        scaler.count("NotAMetric")
    with pytest.raises(ValueError, match="not a registered emitter of JobsFailed"):
        scaler.count(m.JOBS_FAILED)
    with pytest.raises(ValueError):
        telemetry_for("unit").count(m.BACKLOG)  # not a deployed function: may not publish


def test_registry_is_consistent() -> None:
    assert m.NAMESPACE == "CCC" and m.STAGE_DIMENSION == "Stage"
    for name, spec in m.REGISTRY.items():
        assert spec.name == name and spec.emitters and spec.dimensions[0] == m.STAGE_DIMENSION
    assert m.emitted_by(m.Emitter.JOB_EVENTS) & m.emitted_by(m.Emitter.DEAD_LETTERS) == {
        m.JOBS_FAILED,
        m.REFUSED_JOB_EVENTS,
    }
