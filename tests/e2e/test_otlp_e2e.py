"""One job, one trace, in a real OTLP backend (issue 15 §1).

A local stack started with `--otlp-endpoint` (and a client with the standard
`OTEL_EXPORTER_OTLP_ENDPOINT`) sends its telemetry to a small OTLP/HTTP receiver that decodes the
protobuf with `opentelemetry-proto`, as Jaeger or an ADOT collector would. For every job: one
trace, exactly one root span, every other span's parent present in the trace, at least four
services (client, Lambdas, parent, enclave); a job that fails is ERROR on the parent's span and
the client's too; no request body carries image bytes or a result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccc.local.stack import LocalStack
from ccc.telemetry.leakscan import LeakScanner
from ccc_core.telemetry import names
from ccc_core.telemetry.propagation import job_trace_id
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

from .conftest import make_trust_file

pytestmark = pytest.mark.slow

ERROR = 2


def _broken_image(sample: Path, out: Path) -> Path:
    """Passes any header check (a real image's first bytes) but cannot be decoded: fails in the enclave."""
    data = sample.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture(scope="module")
def traced_run(
    tmp_path_factory: pytest.TempPathFactory, samples: list[Path], model_present: None
) -> Iterator[tuple[OtlpReceiver, list[dict], list[Path]]]:
    receiver = OtlpReceiver().start()
    stack = LocalStack.start(tmp_path_factory.mktemp("otlp"), workers=1, otlp_endpoint=receiver.endpoint)
    broken = _broken_image(samples[0], tmp_path_factory.mktemp("broken") / "broken.png")
    images = [*samples[:2], broken]
    try:
        client_dir = tmp_path_factory.mktemp("otlp-client")
        trust = make_trust_file(stack.state_dir, client_dir / "trust.json")  # the tenant's pins (ccc trust init)
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "XDG_STATE_HOME": str(client_dir)}
        piped = subprocess.run(
            [sys.executable, "-m", "ccc", "submit", "--wait", "--json", "--state-dir", str(stack.state_dir),
             "--trust", str(trust), *map(str, images)],
            capture_output=True, text=True, timeout=240, check=False, env=env,
        )
        jobs = [json.loads(line) for line in piped.stdout.splitlines() if line.startswith("{")]
        assert len(jobs) == len(images), piped.stdout + piped.stderr
    finally:
        stack.stop()  # every process flushes its exporters on SIGTERM
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _complete(receiver, jobs):
        time.sleep(0.5)
    yield receiver, jobs, images
    receiver.stop()


def _by_trace(receiver: OtlpReceiver) -> dict[str, list[ReceivedSpan]]:
    grouped: dict[str, list[ReceivedSpan]] = defaultdict(list)
    for span in receiver.snapshot():
        grouped[span.trace_id].append(span)
    return grouped


def _complete(receiver: OtlpReceiver, jobs: list[dict]) -> bool:
    grouped = _by_trace(receiver)
    return all(
        {s.name for s in grouped[job_trace_id(job["job_id"])]} >= {names.SPAN_PARENT_JOB, names.SPAN_JOB_ROOT}
        for job in jobs
    )


def test_each_job_is_one_trace_with_one_root_and_no_dangling_parent(traced_run) -> None:
    receiver, jobs, _ = traced_run
    assert receiver.bad_requests == 0
    grouped = _by_trace(receiver)
    for job in jobs:
        trace = grouped[job_trace_id(job["job_id"])]
        roots = [span for span in trace if not span.parent_span_id]
        assert [span.name for span in roots] == [names.SPAN_JOB_ROOT], [(s.service, s.name) for s in trace]
        ids = {span.span_id for span in trace}
        dangling = [(s.service, s.name) for s in trace if s.parent_span_id and s.parent_span_id not in ids]
        assert dangling == []
        assert {"client", "lambdas", "parent", "enclave"} <= {span.service for span in trace}


def test_the_enclave_stages_sit_under_the_parents_job_span(traced_run) -> None:
    receiver, jobs, _ = traced_run
    grouped = _by_trace(receiver)
    done = [job for job in jobs if job.get("status") == "done"]
    assert len(done) == 2
    for job in done:
        trace = {span.name: span for span in grouped[job_trace_id(job["job_id"])]}
        enclave_job = trace[names.SPAN_ENCLAVE_JOB]
        assert enclave_job.service == "enclave"
        assert enclave_job.parent_span_id == trace[names.SPAN_PARENT_JOB].span_id
        for stage in names.ENCLAVE_STEP_SPANS:
            assert trace[stage].parent_span_id == enclave_job.span_id


def test_a_failed_job_is_an_error_on_the_parent_and_client_spans(traced_run) -> None:
    receiver, jobs, _ = traced_run
    failed = [job for job in jobs if job.get("status") == "failed"]
    assert len(failed) == 1, jobs
    trace = _by_trace(receiver)[job_trace_id(failed[0]["job_id"])]
    status = {(span.service, span.name): span.status_code for span in trace}
    assert status[("parent", names.SPAN_PARENT_JOB)] == ERROR
    assert status[("client", names.SPAN_CLIENT_RESULT)] == ERROR
    done_trace = _by_trace(receiver)[job_trace_id(next(j for j in jobs if j["status"] == "done")["job_id"])]
    assert all(span.status_code != ERROR for span in done_trace)


def test_no_request_body_carries_an_image_or_a_result(traced_run) -> None:
    receiver, _, images = traced_run
    scanner = LeakScanner()
    for image in images:
        scanner.add_blob(image.name, image.read_bytes())
    report = scanner.scan_objects((f"otlp request {i}", body) for i, body in enumerate(receiver.bodies))
    assert report.clean, report.summary()
    for span in receiver.snapshot():
        assert all(isinstance(v, str | int | float | bool) for v in span.attributes.values())
        assert not {"cats", "count", "detections"} & {key.rsplit(".", 1)[-1] for key in span.attributes}
