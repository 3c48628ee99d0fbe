"""Observability of a real local run: one trace per job across processes, metrics, and `ccc report`.

One stack of its own. A few jobs go through `ccc submit --wait` (jobs API path); the test waits
until the parent has exported the enclave's health metrics, stops the stack (every process
flushes its telemetry on SIGTERM), then checks:

* every telemetry record carries `service.name`; every job is one trace: client submit/result,
  parent job, enclave job (child of the parent's span) with its four stages (children of it), and
  the job_events spans of the Lambdas, all with the job id;
* the enclave health metrics the parent exported (CPU, memory, attestations) and the stack's
  queue/fleet gauges are there;
* `ccc report --state-dir` renders an HTML page whose queue, fleet, latency, stage, end-to-end and
  enclave charts all have data (no "no data recorded" placeholder).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict

import pytest

from ccc.local.stack import LocalStack
from ccc_core.telemetry import metric_registry as registry
from ccc_core.telemetry import names
from ccc_core.telemetry.propagation import job_trace_id

from .conftest import make_trust_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, samples, model_present):
    """(state dir, job ids): a stack that ran jobs, exported enclave health metrics, and was stopped."""
    stack = LocalStack.start(tmp_path_factory.mktemp("report"), workers=1)
    try:
        client_dir = tmp_path_factory.mktemp("report-client")
        trust = make_trust_file(stack.state_dir, client_dir / "trust.json")
        piped = subprocess.run(
            [sys.executable, "-m", "ccc", "submit", "--wait", "--json", "--state-dir", str(stack.state_dir),
             "--trust", str(trust), *map(str, samples)], capture_output=True, text=True, timeout=240, check=False,
            env={**os.environ, "XDG_STATE_HOME": str(client_dir / "state")},
        )
        assert piped.returncode == 0, piped.stdout + piped.stderr
        jobs = [json.loads(line)["job_id"] for line in piped.stdout.splitlines()]
        parent_metrics = stack.state_dir / "telemetry" / "parent.metrics.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = parent_metrics.read_text() if parent_metrics.exists() else ""
            if registry.METRIC_ENCLAVE_CPU in text:
                break
            time.sleep(0.5)
    finally:
        stack.stop()
    return stack.state_dir, jobs


def _records(state_dir) -> list[dict]:
    return [json.loads(line) for path in sorted((state_dir / "telemetry").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_every_record_names_its_service_and_every_process_reported(finished_run):
    state_dir, _ = finished_run
    records = _records(state_dir)
    assert records and all(isinstance(r.get("service.name"), str) for r in records)
    services = {r["service.name"] for r in records}
    assert {"client", "parent", "enclave", "lambdas"} <= services


def test_each_job_is_one_trace_from_client_through_enclave_stages_and_job_events(finished_run):
    state_dir, jobs = finished_run
    spans = [r for r in _records(state_dir) if r.get("kind") == "span"]
    by_trace: dict[str, list[dict]] = defaultdict(list)
    for span in spans:
        by_trace[span["trace_id"]].append(span)
    for job in jobs:
        trace = by_trace[job_trace_id(job)]
        named = defaultdict(list)
        for span in trace:
            named[span["name"]].append(span)
        for name in (names.SPAN_CLIENT_SUBMIT, names.SPAN_CLIENT_RESULT, names.SPAN_PARENT_JOB, names.SPAN_ENCLAVE_JOB,
                     *names.ENCLAVE_STEP_SPANS):
            assert len(named[name]) == 1, (job, name, [s["name"] for s in trace])
        assert len(named[names.SPAN_FN_JOB_EVENTS]) >= 2  # the inbox object and the result object
        for name in (names.SPAN_CLIENT_SUBMIT, names.SPAN_PARENT_JOB, names.SPAN_ENCLAVE_JOB, names.SPAN_FN_JOB_EVENTS):
            assert all(s["attributes"][names.ATTR_JOB_ID] == job for s in named[name])
        parent, enclave = named[names.SPAN_PARENT_JOB][0], named[names.SPAN_ENCLAVE_JOB][0]
        assert enclave["parent_span_id"] == parent["span_id"]  # carried in the vsock job frame
        assert all(named[stage][0]["parent_span_id"] == enclave["span_id"] for stage in names.ENCLAVE_STEP_SPANS)
        assert {parent["service.name"], enclave["service.name"]} == {"parent", "enclave"}
        assert parent["attributes"]["ccc.outcome"] == "done"
    assert len({s["trace_id"] for s in spans if s["name"] == names.SPAN_PARENT_JOB}) == len(jobs)


def test_enclave_health_and_stack_gauges_were_exported(finished_run):
    state_dir, jobs = finished_run
    metrics = [r for r in _records(state_dir) if r.get("kind") == "metric"]
    latest = {m["name"]: m for m in sorted(metrics, key=lambda m: m["time_ns"])}
    for name in (registry.METRIC_ENCLAVE_UP, registry.METRIC_ENCLAVE_MEMORY, registry.METRIC_ENCLAVE_CPU,
                 registry.METRIC_ENCLAVE_IN_FLIGHT, registry.METRIC_QUEUE_VISIBLE, registry.METRIC_QUEUE_IN_FLIGHT,
                 registry.METRIC_FLEET_DESIRED, registry.METRIC_FLEET_RUNNING, registry.METRIC_JOBS):
        assert name in latest, name
    assert latest[registry.METRIC_ENCLAVE_MEMORY]["value"] > 10 * 2**20
    assert latest[registry.METRIC_ATTESTATIONS]["value"] == len(jobs)
    assert latest[registry.METRIC_ATTESTATION_FAILURES]["value"] == 0
    assert latest[registry.METRIC_JOB_LATENCY_MS]["count"] == len(jobs)
    assert max(m["value"] for m in metrics if m["name"] == registry.METRIC_FLEET_RUNNING) == 1


def test_report_renders_every_chart_with_data(finished_run, tmp_path):
    state_dir, jobs = finished_run
    out = tmp_path / "report.html"
    shown = subprocess.run([sys.executable, "-m", "ccc", "report", "--state-dir", str(state_dir), "--out", str(out)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    html = out.read_text()
    sections = re.findall(r"<h3>([^<]*)</h3>(<p class='empty'>no data recorded</p>)?", html)
    assert len(sections) == 6
    empty = [title for title, placeholder in sections if placeholder]
    assert empty == [], f"charts without data: {empty}"
    assert html.count("<svg") == 6 and "tenant-a" not in html  # nothing in the report is per tenant
    assert re.search(r"<th>traces client -&gt; parent -&gt; enclave stages</th><td>(\d+)</td>", html).group(1) == str(
        len(jobs))
    assert "<script" not in html and "http://" not in html
