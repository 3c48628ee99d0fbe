"""`ccc cost idle|simulate|docs` end to end through the CLI: the JSON shapes the issue fixes, the
HTML page, and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ccc.cli import main
from ccc.cost.doc_tables import BEGIN, END
from tests.support.cost_templates import template


@pytest.fixture
def dev_template(tmp_path: Path) -> Path:
    path = tmp_path / "CccDev.template.json"
    path.write_text(json.dumps(template()))
    return path


def test_idle_json(dev_template: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "idle", str(dev_template), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"monthly_usd", "items"}
    assert document["monthly_usd"] == round(sum(i["monthly_usd"] for i in document["items"]), 2)
    assert {i["kind"] for i in document["items"]} >= {"endpoints", "kms-keys", "warm-pool", "schedules"}


def test_simulate_json_has_exactly_the_agreed_shape(dev_template: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["cost", "simulate", "--template", str(dev_template), "--profile", "sparse", "--days", "3", "--json"]) == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"profile", "scenarios"} and document["profile"] == "sparse"
    assert [s["name"] for s in document["scenarios"]] == ["ccc", "no-warm-pool", "always-on"]
    for scenario in document["scenarios"]:
        # The agreed keys, plus the cost breakdown the issue asks for (idle, compute, requests).
        assert set(scenario) == {"name", "monthly_usd", "p50_s", "p95_s", "p99_s", "jobs"} | {
            "idle_usd",
            "compute_usd",
            "requests_usd",
        }
        assert scenario["monthly_usd"] == pytest.approx(
            scenario["idle_usd"] + scenario["compute_usd"] + scenario["requests_usd"], abs=0.02
        )
        assert scenario["p50_s"] <= scenario["p95_s"] <= scenario["p99_s"]
    ccc, _, always_on = document["scenarios"]
    assert ccc["jobs"] == always_on["jobs"] > 0
    assert ccc["monthly_usd"] < always_on["monthly_usd"]


def test_simulate_trace_and_html(dev_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s\n" + "\n".join(str(60.0 * i) for i in range(0, 600, 7)) + "\n")
    page = tmp_path / "out" / "sim.html"
    assert (
        main(
            [
                "cost",
                "simulate",
                "--template",
                str(dev_template),
                "--trace",
                str(trace),
                "--days",
                "1",
                "--set",
                "resume_median_s=20",
                "--html",
                str(page),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ccc" in out and "always-on" in out
    text = page.read_text()
    assert "<svg" in text and text.count("<circle") == 3 + 6  # scenarios + the idle-timeout sweep
    assert "<script" not in text and not re.search(r"(src|href)=", text)  # self-contained


def test_errors_are_one_line(dev_template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "idle", str(tmp_path / "missing.json")]) == 2
    assert main(["cost", "idle", str(dev_template), "--region", "eu-west-1"]) == 2
    assert main(["cost", "simulate", "--template", str(dev_template), "--set", "warp=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_docs_rewrites_only_the_generated_block(dev_template: Path, tmp_path: Path) -> None:
    doc = tmp_path / "deploy.md"
    doc.write_text(f"before\n{BEGIN}\nstale\n{END}\nafter\n")
    assert main(["cost", "docs", "--column", f"dev, public={dev_template}", "--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "stale" not in text
    assert "| item | dev, public |" in text and "**total per month**" in text
