"""Telemetry carries metadata only, lands as JSON Lines with service.name, and links processes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc.local.components import worker_resource_attributes
from ccc_core.redaction import UnsafeAttributeError, safe_attributes
from ccc_core.telemetry.propagation import extract, inject
from ccc_core.telemetry.setup import setup_telemetry


@pytest.mark.parametrize(
    "attrs",
    [
        {"body": "x"},
        {"ccc.result": "3 cats"},
        {"plaintext": "abc"},
        {"job.size": b"\x00\x01"},
        {"image": "abc"},
        {"ccc.detections": "[]"},
        {"aws.secret_access_key": "k"},
        {"note": "x" * 1000},
        {"obj": object()},
    ],
)
def test_content_shaped_attributes_are_refused(attrs):
    with pytest.raises(UnsafeAttributeError):
        safe_attributes(attrs)


def test_metadata_attributes_pass():
    attrs = {"ccc.job_id": "ab" * 16, "ccc.image.bytes": 1234, "ccc.result.key": "results/t/j.ccc", "ok": True,
             "ccc.infer_ms": 12.5}
    assert safe_attributes(attrs) == attrs


@given(st.binary(min_size=1, max_size=64))
def test_bytes_are_never_accepted_under_any_key(value):
    with pytest.raises(UnsafeAttributeError):
        safe_attributes({"ccc.job_id": value})


def test_spans_and_metrics_are_written_as_json_lines_with_service_name(tmp_path):
    handle = setup_telemetry("test-svc", state_dir=tmp_path, set_global=False)
    tracer = handle.tracer()
    with tracer.start_as_current_span("parent-op", attributes=safe_attributes({"ccc.job_id": "j1"})):
        carrier = inject()
    ctx = extract(carrier)
    with tracer.start_as_current_span("child-op", context=ctx):
        pass
    handle.meter().create_counter("ccc.jobs").add(2, safe_attributes({"status": "done"}))
    handle.shutdown()
    spans = [json.loads(line) for line in (tmp_path / "telemetry" / "test-svc.spans.jsonl").read_text().splitlines()]
    by_name = {s["name"]: s for s in spans}
    assert by_name["child-op"]["trace_id"] == by_name["parent-op"]["trace_id"]
    assert by_name["child-op"]["parent_span_id"] == by_name["parent-op"]["span_id"]
    assert all(s["service.name"] == "test-svc" for s in spans)
    metrics_file = tmp_path / "telemetry" / "test-svc.metrics.jsonl"
    metrics = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert any(m["name"] == "ccc.jobs" and m["value"] == 2 and m["service.name"] == "test-svc" for m in metrics)


def test_records_carry_the_process_instance_from_the_standard_resource_variable(tmp_path, monkeypatch):
    """Two parents of one fleet write into the same parent.*.jsonl: the instance keeps them apart."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=worker-2")
    handle = setup_telemetry("parent", state_dir=tmp_path, set_global=False)
    with handle.tracer().start_as_current_span("op"):
        pass
    handle.meter().create_counter("ccc.jobs").add(1)
    handle.shutdown()
    for kind in ("spans", "metrics"):
        lines = (tmp_path / "telemetry" / f"parent.{kind}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert records and all(r["service.instance.id"] == "worker-2" for r in records)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    plain = setup_telemetry("solo", state_dir=tmp_path, set_global=False)
    with plain.tracer().start_as_current_span("op"):
        pass
    plain.shutdown()
    solo = json.loads((tmp_path / "telemetry" / "solo.spans.jsonl").read_text().splitlines()[0])
    assert solo["service.instance.id"] not in ("", "worker-2")  # the SDK's own per-process id


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=80), max_size=5))
def test_extract_never_fails_on_garbage_carriers(carrier):
    extract(carrier)


def test_the_local_stack_names_each_workers_processes_and_keeps_the_users_attributes(monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=lab,service.instance.id=mine")
    assert worker_resource_attributes(2) == {
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=lab,service.instance.id=worker-2"
    }
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert worker_resource_attributes(1) == {"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=worker-1"}
