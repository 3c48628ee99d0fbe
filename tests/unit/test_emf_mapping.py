"""The parent's OTel -> CloudWatch mapping publishes exactly the registry's parent metrics, under
the registry's names, units and dimensions."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from ccc.telemetry.emf import CLOUDWATCH_NAMES, EmfMetricExporter
from ccc_core.telemetry import metric_registry as m


def test_mapping_covers_exactly_the_parent_metrics_of_the_registry() -> None:
    assert set(CLOUDWATCH_NAMES.values()) == m.emitted_by(m.Emitter.PARENT)
    assert len(set(CLOUDWATCH_NAMES.values())) == len(CLOUDWATCH_NAMES)  # one OTel name per CloudWatch name
    assert all(key.startswith("ccc.") for key in CLOUDWATCH_NAMES)


def test_kms_counter_is_published_as_kms_unavailable_and_jobs_failed_is_not() -> None:
    assert CLOUDWATCH_NAMES[m.METRIC_KMS_UNAVAILABLE] == m.KMS_UNAVAILABLE == "KmsUnavailable"
    assert m.METRIC_JOBS_FAILED not in CLOUDWATCH_NAMES  # the jobs table counts JobsFailed once per job
    assert m.Emitter.PARENT not in m.spec(m.JOBS_FAILED).emitters


def _export(record: Any) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    exporter = EmfMetricExporter(lambda lines: documents.extend(json.loads(line) for line in lines), stage="prod")
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    record(provider.get_meter("test"))
    provider.force_flush()
    provider.shutdown()
    return documents


def test_exported_documents_follow_the_registry() -> None:
    def record(meter: Any) -> None:
        meter.create_counter(m.METRIC_KMS_UNAVAILABLE, unit="1").add(3, {"ccc.code": "kms_unavailable"})
        meter.create_histogram(m.METRIC_JOB_LATENCY_MS, unit="ms").record(120.0, {"ccc.outcome": "done"})
        meter.create_counter(m.METRIC_JOBS_FAILED, unit="1").add(1, {"ccc.code": "bad_image"})
        meter.create_counter("ccc.something.else", unit="1").add(1)

    documents = _export(record)
    by_name = {doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]: doc for doc in documents}
    assert set(by_name) == {m.KMS_UNAVAILABLE, m.JOB_LATENCY_MS}
    for name, doc in by_name.items():
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == m.NAMESPACE
        assert directive["Dimensions"] == [list(m.spec(name).dimensions)] == [[m.STAGE_DIMENSION]]
        assert directive["Metrics"][0]["Unit"] == m.spec(name).unit.value
        assert doc[m.STAGE_DIMENSION] == "prod"
        assert "ccc.code" not in doc and "ccc.outcome" not in doc  # attributes never become dimensions
    assert by_name[m.KMS_UNAVAILABLE][m.KMS_UNAVAILABLE] == 3.0


def test_no_document_carries_a_tenant_even_when_a_point_names_one() -> None:
    def record(meter: Any) -> None:
        gauge = meter.create_gauge(m.METRIC_ENCLAVE_UP, unit="1")
        gauge.set(1, {"ccc.tenant": "acme", "ccc.day": "2026-01-02"})

    documents = _export(record)
    assert documents
    for document in documents:
        assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[m.STAGE_DIMENSION]]
        assert "acme" not in json.dumps(document) and "Tenant" not in document


def test_units_and_dimensions_come_from_the_registry_not_the_instrument() -> None:
    def record(meter: Any) -> None:
        meter.create_gauge(m.METRIC_ENCLAVE_UP, unit="1").set(1)  # "1" would read as Count

    (document, *_) = _export(record)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Metrics"] == [{"Name": m.ENCLAVE_UP, "Unit": m.spec(m.ENCLAVE_UP).unit.value}]
    assert m.spec(m.ENCLAVE_UP).unit is m.Unit.NONE
