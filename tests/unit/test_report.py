"""`ccc report` renders telemetry into one self-contained HTML page with the promised charts."""

from __future__ import annotations

import json

from ccc.cli import report_cmd
from ccc.report import load_telemetry, render_html
from ccc_core.telemetry import metric_registry as registry
from ccc_core.telemetry import names


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")


def test_report_has_queue_fleet_latency_and_stage_charts(tmp_path):
    tele = tmp_path / "telemetry"
    tele.mkdir()
    spans = [{"kind": "span", "service.name": "parent", "name": names.SPAN_PARENT_JOB, "duration_ms": 100.0 + i}
             for i in range(20)]
    spans.append({"kind": "span", "service.name": "enclave", "name": names.SPAN_ENCLAVE_INFER, "duration_ms": 20.0})
    metrics = [{"kind": "metric", "service.name": "local", "name": registry.METRIC_QUEUE_VISIBLE, "time_ns": i * 10**9,
                "value": 8 - i} for i in range(8)]
    metrics += [{"kind": "metric", "service.name": "local", "name": registry.METRIC_FLEET_DESIRED, "time_ns": i * 10**9,
                 "value": 1} for i in range(8)]
    _write(tele / "a.spans.jsonl", spans)
    _write(tele / "b.metrics.jsonl", metrics)
    data = load_telemetry(tele)
    assert data.skipped_lines == 2
    html = render_html(data)
    assert html.startswith("<!doctype html>")
    for heading in ("Queue depth", "Fleet size", "Job latency histogram", "Per-stage timing"):
        assert heading in html
    assert html.count("<svg") == 4
    assert "job p95 ms" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_cli_without_telemetry_says_what_to_do(tmp_path, capsys):
    args = type("A", (), {"state_dir": tmp_path / "none", "out": tmp_path / "r.html"})()
    assert report_cmd.run(args) == 2
    assert "ccc local up" in capsys.readouterr().err


def test_cli_writes_the_file(tmp_path):
    (tmp_path / "telemetry").mkdir()
    args = type("A", (), {"state_dir": tmp_path, "out": tmp_path / "r.html"})()
    assert report_cmd.run(args) == 0
    assert "no data recorded" in (tmp_path / "r.html").read_text()
