"""cdk-nag (AwsSolutions) and cfn-lint on the synthesised templates, and the acknowledgement table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdk.nag_acknowledgements import ACKNOWLEDGEMENTS, expand


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Any) -> None:
    # The synth itself fails on a finding; the report shows the plugin ran and concluded cleanly.
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    assert len(synth.applied_acks) >= 10


def test_cdk_nag_is_live_an_unacknowledged_finding_fails_synthesis(tmp_path: Path) -> None:
    """Drop one acknowledgement: the same app must now refuse to synthesise, naming the finding."""
    from cdk.application import build_app
    from tests.infra.conftest import PLACEHOLDER

    dropped = "AwsSolutions-EC26"
    table = tuple(a for a in ACKNOWLEDGEMENTS if a.finding != dropped)
    app, _ = build_app({"stage": "dev", "measurements": str(PLACEHOLDER)}, outdir=str(tmp_path), acknowledgements=table)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert rules == {dropped}


def test_every_acknowledgement_has_a_real_reason() -> None:
    for ack in ACKNOWLEDGEMENTS:
        assert ack.finding.startswith("AwsSolutions-"), ack
        assert len(ack.reason.split()) >= 8, f"reason too thin for {ack.finding}: {ack.reason!r}"
    keys = [(a.path, a.finding) for a in ACKNOWLEDGEMENTS]
    assert len(keys) == len(set(keys)), "duplicate acknowledgement"


def test_no_acknowledgement_is_stale(dev: Any, prod: Any) -> None:
    """Each table entry must silence a real construct in at least one stage."""
    applied = {(a.path, a.finding) for a in dev.applied_acks + prod.applied_acks}
    for entry in ACKNOWLEDGEMENTS:
        concrete = expand([entry], tenants=["demo", "acme"], stage="dev", fleet_group="x") + expand(
            [entry], tenants=["demo", "acme"], stage="prod", fleet_group="x"
        )
        assert any(
            (c.path, c.finding.replace("autoScalingGroupName/x", f"autoScalingGroupName/ccc-{s}-enclave-fleet"))
            in applied
            for c in concrete
            for s in ("dev", "prod")
        ), f"acknowledgement never applies: {entry.path} {entry.finding}"


def _cfn_lint() -> list[str]:
    exe = Path(sys.executable).with_name("cfn-lint")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cfn-lint")
    if not found:
        pytest.fail("cfn-lint is not installed (requirements-dev.txt pins it)")
    return [found]


def test_cfn_lint_finds_no_errors(synth: Any, tmp_path: Path) -> None:
    template = tmp_path / synth.template_path.name
    shutil.copy(synth.template_path, template)
    result = subprocess.run(
        [*_cfn_lint(), "--format", "parseable", str(template)], capture_output=True, text=True, timeout=120
    )
    # parseable format: file:line:col:end_line:end_col:RULE:message
    errors = [
        line for line in result.stdout.splitlines() if line.split(":", 6)[5:6] and line.split(":", 6)[5].startswith("E")
    ]
    # Exit code 0 = clean, 4 = warnings only; 2 (errors) or anything else fails.
    assert result.returncode in (0, 4), result.stdout + result.stderr
    assert not errors, "\n".join(errors)
