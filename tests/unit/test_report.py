"""`ccc report` renders a run's telemetry into one self-contained HTML page a person can read."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ccc.cli import report_cmd
from ccc.report import load_telemetry, render_html
from ccc.report.render import ReportData, _latest_total, instance_gauge_series
from ccc_core.telemetry import metric_registry as registry

from .report_fixtures import gauge, job_trace, run_metrics

DONE_1, DONE_2, FAILED = "a" * 32, "b" * 32, "f" * 32


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")


def _run_data() -> ReportData:
    spans = (
        job_trace(DONE_1, "trace-a")
        + job_trace(DONE_2, "trace-b", shift_ms=2000, retried=False)
        + job_trace(
            FAILED,
            "trace-f",
            shift_ms=4000,
            outcome="failed",
            code="bad_image",
            retried=False,
            client_status="failed",
            verified=None,
        )
    )
    return ReportData(spans=spans, metrics=run_metrics())


def _headings(html: str) -> list[str]:
    return re.findall(r"<h3>([^<]*)</h3>", html)


def test_load_counts_malformed_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    data = _run_data()
    _write(tmp_path / "client.spans.jsonl", data.spans)
    _write(tmp_path / "lambdas.metrics.jsonl", data.metrics)
    loaded = load_telemetry(tmp_path)
    assert (len(loaded.spans), len(loaded.metrics), loaded.skipped_lines) == (len(data.spans), len(data.metrics), 2)


def test_report_is_one_self_contained_page() -> None:
    html = render_html(_run_data())
    assert html.startswith("<!doctype html>")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "<img" not in html and "<link" not in html


def test_failed_jobs_show_with_their_code_in_the_failures_and_the_job_table() -> None:
    html = render_html(_run_data())
    failures = html[html.index("<h2>Failures</h2>") : html.index("<h2>Latency")]
    assert "<td>bad_image</td><td class='num'>1</td>" in failures  # one job failed with that code
    assert "<td>kms_unavailable</td><td class='num'>0</td><td class='num'>1</td>" in failures  # one retried attempt
    assert FAILED in failures
    table = html[html.index("<h2>Jobs</h2>") :]
    assert re.search(rf"<tr class='failed'><td>{FAILED}</td><td>failed \(bad_image\)</td>", table)
    assert "Waterfall of a failed job" in html


def test_the_dlq_is_charted_and_summarised() -> None:
    html = render_html(_run_data())
    assert "Dead-letter queue depth" in _headings(html)
    assert "<th>dead-letter queue: highest / last depth</th><td>1 / 1</td>" in html


def test_each_chart_plots_one_quantity() -> None:
    headings = _headings(render_html(_run_data()))
    # CPU % and jobs in flight used to share one axis: now two charts, each with its own unit.
    assert "Enclave CPU (per worker)" in headings
    assert "Enclave jobs in flight (per worker)" in headings
    html = render_html(_run_data())
    cpu = html[html.index("Enclave CPU") : html.index("Enclave jobs in flight")]
    assert ">%</text>" in cpu and ">100</text>" in cpu and ">jobs</text>" not in cpu


def test_time_charts_have_wall_clock_ticks_and_counts_are_integers() -> None:
    html = render_html(_run_data())
    queue = html[html.index("Work queue depth") : html.index("Fleet size")]
    assert ">12:00:00</text>" in queue and ">12:00:10</text>" in queue
    assert ">time (UTC)</text>" in queue
    assert re.findall(r">(\d+\.0)</text>", html) == []  # no "1.0 jobs"


def test_the_job_table_has_id_status_latency_stages_and_trace() -> None:
    html = render_html(_run_data())
    table = html[html.index("<h2>Jobs</h2>") :]
    for header in ("job id", "status", "end-to-end ms", "parent ms", "decrypt ms", "infer ms", "trace id"):
        assert f"<th>{header}</th>" in table
    row = re.search(rf"<tr><td>{DONE_1}</td>(.*?)</tr>", table)
    assert row is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
    assert cells == ["done", "2", "1,500", "300", "300", "20.0", "150", "20.0", "10.0", "trace-a"]


def test_the_gap_between_client_and_parent_latency_is_explained() -> None:
    html = render_html(_run_data())
    section = html[html.index("<h2>Where a job") : html.index("<h2>Failures")]
    assert "<b>1,500 ms</b>" in section and "<b>300 ms</b>" in section and "<b>1,200 ms</b>" in section
    # The median job's own steps outside the parent add up to the gap: 20 + 80 + 30 + 270 + 600 + 200 = 1,200.
    assert (
        "were: client: create job 20.0 ms, client: encrypt + upload 80.0 ms, Lambda job_events (inbox) 30.0 ms, "
        "SQS queue wait 270 ms, earlier attempts (1) 600 ms, client: notice, fetch + verify 200 ms."
    ) in section
    assert "Waterfall of the median job" in section


def test_an_empty_run_renders_placeholders_not_errors() -> None:
    html = render_html(ReportData())
    assert "no data recorded" in html and "cannot be compared" in html


def _args(state_dir: Path, out: Path, run: str | None = None, list_runs: bool = False) -> argparse.Namespace:
    return argparse.Namespace(state_dir=state_dir, out=out, run=run, list_runs=list_runs)


def test_cli_without_telemetry_says_what_to_do(tmp_path: Path, capsys) -> None:
    assert report_cmd.run(_args(tmp_path / "none", tmp_path / "r.html")) == 2
    assert "ccc local up" in capsys.readouterr().err


def test_cli_renders_the_latest_run_or_the_one_named(tmp_path: Path, capsys) -> None:
    old = tmp_path / "runs" / "20260101T120000Z" / "telemetry"
    old.mkdir(parents=True)
    _write(old / "parent.spans.jsonl", job_trace(FAILED, "trace-f", outcome="failed", code="bad_image"))
    (tmp_path / "telemetry").mkdir()
    _write(tmp_path / "telemetry" / "parent.spans.jsonl", job_trace(DONE_1, "trace-a"))
    out = tmp_path / "r.html"
    assert report_cmd.run(_args(tmp_path, out)) == 0
    assert DONE_1 in out.read_text() and FAILED not in out.read_text()
    assert report_cmd.run(_args(tmp_path, out, run="20260101T120000Z")) == 0
    assert FAILED in out.read_text() and DONE_1 not in out.read_text()
    assert report_cmd.run(_args(tmp_path, out, run="nope")) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert report_cmd.run(_args(tmp_path, out, list_runs=True)) == 0
    listed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["20260101T120000Z", "current"]


def test_two_workers_get_a_line_each_and_their_counters_add_up() -> None:
    """Both parents of a two-worker fleet write into parent.metrics.jsonl with the same attributes;
    before `service.instance.id`, their CPU readings interleaved on one line and the attestation
    total kept only the latest parent's count."""
    metrics = []
    for second in range(6):
        for worker, cpu in (("worker-1", 90.0), ("worker-2", 10.0)):
            metrics.append({**gauge(registry.METRIC_ENCLAVE_CPU, second, cpu, "parent"), "service.instance.id": worker})
    for worker, count in (("worker-1", 7), ("worker-2", 5)):
        metrics.append({**gauge(registry.METRIC_ATTESTATIONS, 5, count, "parent"), "service.instance.id": worker})
    data = ReportData(metrics=metrics)
    series = instance_gauge_series(data, registry.METRIC_ENCLAVE_CPU, label="CPU")
    assert set(series) == {"CPU (worker-1)", "CPU (worker-2)"}
    assert {v for _, v in series["CPU (worker-1)"]} == {90.0} and {v for _, v in series["CPU (worker-2)"]} == {10.0}
    assert _latest_total(data, registry.METRIC_ATTESTATIONS) == 12
    html = render_html(data)
    assert "CPU (worker-1)" in html and "CPU (worker-2)" in html
