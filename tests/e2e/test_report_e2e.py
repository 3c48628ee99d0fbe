"""Observability of a real local run: one trace per job across processes, metrics, and `ccc report`.

One stack of its own. A few jobs go through `ccc submit --wait` (jobs API path); the test waits
until the parent has exported the enclave's health metrics, stops the stack (every process
flushes its telemetry on SIGTERM), then checks:

* every telemetry record carries `service.name`; every job is one trace: client submit/result,
  parent job, enclave job (child of the parent's span) with its four stages (children of it), and
  the job_events spans of the Lambdas, all with the job id;
* the enclave health metrics the parent exported (CPU, memory, attestations) and the stack's
  queue/fleet gauges are there;
* `ccc report --state-dir` renders an HTML page whose queue, DLQ, fleet, latency, stage, end-to-end,
  enclave and waterfall charts all have data (no "no data recorded" placeholder), with wall-clock
  ticks, one row per job (status, trace id) and the failed job with its code;
* a second `ccc local up` on the same state dir keeps this run under `runs/<id>/` and `ccc report
  --run <id>` still renders it.

One job fails on purpose (a ciphertext of bytes that are not an image, uploaded S3-direct), so the
report's failure views are checked against a failure the enclave really recorded.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ccc.client.crypto import encrypt_stream
from ccc.client.job_runner import CccClient, JobTicket
from ccc.client.target import local_target
from ccc.local.stack import LocalStack
from ccc_core.identity import JobRef, new_job_id
from ccc_core.telemetry import metric_registry as registry
from ccc_core.telemetry import names
from ccc_core.telemetry.propagation import job_trace_id

from .conftest import make_trust_file, trusting

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
        failed = _submit_a_job_that_fails(stack.state_dir, trust, client_dir / "state")
        parent_metrics = stack.state_dir / "telemetry" / "parent.metrics.jsonl"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = parent_metrics.read_text() if parent_metrics.exists() else ""
            if registry.METRIC_ENCLAVE_CPU in text:
                break
            time.sleep(0.5)
    finally:
        stack.stop()
    return stack.state_dir, jobs, failed


def _submit_a_job_that_fails(state_dir: Path, trust: Path, client_state: Path) -> str:
    """A job whose plaintext is not an image: the client's own check is bypassed (sealed and uploaded
    S3-direct), so the enclave refuses it and the parent records the failure."""
    with trusting(trust, client_state):
        direct = CccClient(dataclasses.replace(local_target(state_dir), api_url=None), "tenant-a", show_progress=False)
        job = JobRef("tenant-a", new_job_id())
        sealed = io.BytesIO()
        encrypt_stream(io.BytesIO(random.Random(3).randbytes(4096)), sealed, provider=direct.provider,
                       context=job.input_context())
        direct.upload(JobTicket(job=job, upload=None), io.BytesIO(sealed.getvalue()), len(sealed.getvalue()))
        report = direct.wait(job, timeout=120)
    assert report.status == "failed", report
    return job.job_id


def _records(state_dir) -> list[dict]:
    return [json.loads(line) for path in sorted((state_dir / "telemetry").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_every_record_names_its_service_and_every_process_reported(finished_run):
    state_dir, _, _ = finished_run
    records = _records(state_dir)
    assert records and all(isinstance(r.get("service.name"), str) for r in records)
    services = {r["service.name"] for r in records}
    assert {"client", "parent", "enclave", "lambdas"} <= services


def test_each_job_is_one_trace_from_client_through_enclave_stages_and_job_events(finished_run):
    state_dir, jobs, _ = finished_run
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
        submit, result = named[names.SPAN_CLIENT_SUBMIT][0], named[names.SPAN_CLIENT_RESULT][0]
        for step, under in ((names.SPAN_CLIENT_ENCRYPT, submit), (names.SPAN_CLIENT_UPLOAD, submit),
                            (names.SPAN_CLIENT_FETCH, result), (names.SPAN_CLIENT_VERIFY, result)):
            assert [s["parent_span_id"] for s in named[step]] == [under["span_id"]], (job, step)
    assert len({s["trace_id"] for s in spans if s["name"] == names.SPAN_PARENT_JOB}) == len(jobs) + 1  # + the failure


def test_enclave_health_and_stack_gauges_were_exported(finished_run):
    state_dir, jobs, _ = finished_run
    metrics = [r for r in _records(state_dir) if r.get("kind") == "metric"]
    latest = {m["name"]: m for m in sorted(metrics, key=lambda m: m["time_ns"])}
    for name in (registry.METRIC_ENCLAVE_UP, registry.METRIC_ENCLAVE_MEMORY, registry.METRIC_ENCLAVE_CPU,
                 registry.METRIC_ENCLAVE_IN_FLIGHT, registry.METRIC_QUEUE_VISIBLE, registry.METRIC_QUEUE_IN_FLIGHT,
                 registry.METRIC_FLEET_DESIRED, registry.METRIC_FLEET_RUNNING, registry.METRIC_JOBS):
        assert name in latest, name
    assert latest[registry.METRIC_ENCLAVE_MEMORY]["value"] > 10 * 2**20
    assert latest[registry.METRIC_ATTESTATIONS]["value"] == len(jobs)
    assert latest[registry.METRIC_ATTESTATION_FAILURES]["value"] == 0
    done_latency = [m for m in metrics if m["name"] == registry.METRIC_JOB_LATENCY_MS
                    and m["attributes"].get("ccc.outcome") == "done"]
    assert max(m["count"] for m in done_latency) == len(jobs)
    assert max(m["value"] for m in metrics if m["name"] == registry.METRIC_FLEET_RUNNING) == 1


def _report(state_dir: Path, out: Path, *extra: str) -> str:
    shown = subprocess.run([sys.executable, "-m", "ccc", "report", "--state-dir", str(state_dir), "--out", str(out),
                            *extra], capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    return out.read_text()


CHARTS_WITH_DATA = ("Work queue depth", "Dead-letter queue depth", "Fleet size", "Enclave CPU",
                    "Enclave jobs in flight", "Enclave memory", "Jobs finished", "Parent job latency",
                    "Client end-to-end latency", "Median time per stage", "Waterfall of the median job",
                    "Waterfall of a failed job")


def test_report_renders_every_chart_with_data(finished_run, tmp_path):
    state_dir, jobs, _ = finished_run
    html = _report(state_dir, tmp_path / "report.html")
    sections = re.findall(r"<h3>([^<]*)</h3>(<p class='empty'>[^<]*</p>)?", html)
    for chart in CHARTS_WITH_DATA:
        found = [(title, placeholder) for title, placeholder in sections if title.startswith(chart)]
        assert len(found) == 1, (chart, [t for t, _ in sections])
        assert found[0][1] == "", f"chart without data: {chart}"
    assert html.count("<svg") == len(sections) == len(CHARTS_WITH_DATA)
    assert re.search(r">\d\d:\d\d:\d\d</text>", html)  # wall-clock ticks
    assert re.findall(r">(\d+\.0)</text>", html) == []  # counts print as integers
    assert "tenant-a" not in html  # nothing in the report is per tenant
    complete = re.search(r"<th>traces client -&gt; parent -&gt; enclave stages</th><td>(\d+)</td>", html)
    assert complete is not None and complete.group(1) == str(len(jobs))
    assert "In the median job below, the client waited <b>" in html  # the client/parent gap is explained
    for step in ("client: encrypt", "client: upload", "SQS queue wait", "enclave: infer", "client: verify + decrypt"):
        assert f">{step}</text>" in html, step
    assert "<script" not in html and "http://" not in html


def test_report_lists_every_job_and_the_failure_with_its_code(finished_run, tmp_path):
    state_dir, jobs, failed = finished_run
    html = _report(state_dir, tmp_path / "report.html")
    table = html[html.index("<h2>Jobs</h2>"):]
    for job in jobs:
        row = re.search(rf"<tr><td>{job}</td><td>done</td>.*?</tr>", table)
        assert row and job_trace_id(job) in row.group(0), job
    assert re.search(rf"<tr class='failed'><td>{failed}</td><td>failed \(bad_image\)</td>", table)
    failures = html[html.index("<h2>Failures</h2>"):html.index("<h2>Latency")]
    assert "<td>bad_image</td><td class='num'>1</td>" in failures


def test_the_next_stack_keeps_this_run_and_report_can_still_render_it(finished_run, tmp_path):
    state_dir, jobs, _ = finished_run
    before = sorted(p.name for p in (state_dir / "telemetry").glob("*.jsonl"))
    LocalStack.start(state_dir, workers=1).stop()
    runs = subprocess.run([sys.executable, "-m", "ccc", "report", "--state-dir", str(state_dir), "--list-runs"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert runs.returncode == 0, runs.stderr
    ids = [line.split("\t")[0] for line in runs.stdout.splitlines()]
    assert len(ids) == 2 and ids[-1] == "current", ids
    archived = state_dir / "runs" / ids[0] / "telemetry"
    assert sorted(p.name for p in archived.glob("*.jsonl")) == before
    html = _report(state_dir, tmp_path / "old.html", "--run", ids[0])
    assert all(job in html for job in jobs)
    assert jobs[0] not in _report(state_dir, tmp_path / "new.html")  # the default is the new (empty) run
