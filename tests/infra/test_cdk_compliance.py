"""cdk-nag (AwsSolutions) and cfn-lint on the synthesised templates, and the acknowledgement table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from cdk.nag_acknowledgements import ACKNOWLEDGEMENTS, expand
from tests.infra.cfn_lint import cfn_lint_errors


def test_cdk_nag_reports_no_unacknowledged_finding(any_mode: Any) -> None:
    synth = any_mode
    # The synth itself fails on a finding; the report shows the plugin ran and concluded cleanly.
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert report["pluginReports"] == []
    assert len(synth.applied_acks) >= 10


def _unacknowledged_findings(synth: Any, outdir: Path) -> set[tuple[str, str]]:
    """Synthesise the same stage with an empty acknowledgement table: (construct path, finding)."""
    from cdk.application import build_app

    context = {"stage": synth.stage, "measurements": str(synth.stack.inputs.measurements.source)}
    context["demo_tenants"] = ",".join(synth.stack.inputs.demo_tenants)
    context["tenants"] = json.dumps([dataclasses.asdict(t) for t in synth.stack.inputs.tenants])
    context["network"] = synth.stack.config.network.value
    context["warm_pool"] = synth.stack.config.warm_pool_size
    app, stack = build_app(context, outdir=str(outdir), acknowledgements=())
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    prefix = f"{stack.stack_name}/"
    return {
        (c["constructPath"].removeprefix(prefix), v["ruleName"])
        for p in report["pluginReports"]
        for v in p["violations"]
        for c in v["violatingConstructs"]
    }


@pytest.fixture(params=["dev", "prod", "dev_without_warm_pool"])
def fleet_variant(request: pytest.FixtureRequest) -> Any:
    """The stage defaults and the mixed-instances group (its own finding and acknowledgement)."""
    return request.getfixturevalue(request.param)


def test_cdk_nag_is_live_and_every_acknowledgement_silences_a_real_finding(fleet_variant: Any, tmp_path: Path) -> None:
    """Without the table the same app must refuse to synthesise; with it, each entry must match a
    finding (no stale acknowledgements) and each finding must be matched (else the synth fails)."""
    synth = fleet_variant
    findings = _unacknowledged_findings(synth, tmp_path)
    assert findings
    for ack in synth.applied_acks:
        matched = [f for f in findings if f[1] == ack.finding and (f[0] == ack.path or f[0].startswith(ack.path + "/"))]
        assert matched, f"stale acknowledgement: {ack.path} {ack.finding}"
    for path, rule in findings:
        assert any(rule == a.finding and (path == a.path or path.startswith(a.path + "/")) for a in synth.applied_acks)


def test_every_acknowledgement_has_a_real_reason() -> None:
    for ack in ACKNOWLEDGEMENTS:
        assert ack.finding.startswith("AwsSolutions-"), ack
        assert len(ack.reason.split()) >= 8, f"reason too thin for {ack.finding}: {ack.reason!r}"
    keys = [(a.path, a.finding) for a in ACKNOWLEDGEMENTS]
    assert len(keys) == len(set(keys)), "duplicate acknowledgement"


def test_every_table_entry_applies_in_some_stage(
    dev: Any, prod: Any, dev_without_warm_pool: Any, prod_hosted: Any
) -> None:
    synths = (dev, prod, dev_without_warm_pool, prod_hosted)
    applied = {(a.path, a.finding) for s in synths for a in s.applied_acks}
    for entry in ACKNOWLEDGEMENTS:
        concrete = {
            (c.path, c.finding)
            for s in synths
            for c in expand(
                [entry],
                tenants=s.stack.inputs.demo_tenants,
                stage=s.stage,
                fleet_group=s.stack.config.names.fleet_group,
            )
        }
        assert concrete & applied, f"acknowledgement never applies: {entry.path} {entry.finding}"


def test_cfn_lint_finds_no_errors(any_mode: Any, tmp_path: Path) -> None:
    errors = cfn_lint_errors(any_mode.template_path, tmp_path)
    assert not errors, "\n".join(errors)
