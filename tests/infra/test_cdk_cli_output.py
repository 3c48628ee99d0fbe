"""`cdk synth` prints only what we mean it to print.

Why: every construct records the JavaScript stack trace of its creation; under jsii that trace
points into the jsii runtime's `program.js`, and the CDK CLI prints it as a stray
`…/program.js:1:5591` line above each annotation. cdk.json turns trace capture off
(`aws:cdk:disable-stack-trace`), so annotations carry no location and the CLI prints none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdk.application import build_app

REPO = Path(__file__).resolve().parents[2]


def _cdk_json_context() -> dict[str, Any]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert isinstance(context, dict)
    return context


def test_cdk_json_disables_construct_stack_traces() -> None:
    assert _cdk_json_context().get("aws:cdk:disable-stack-trace") is True


def test_annotations_synthesised_with_cdk_json_context_carry_no_trace(tmp_path: Path) -> None:
    placeholder = REPO / "enclave_worker" / "measurements.placeholder.json"
    context = {**_cdk_json_context(), "stage": "dev", "measurements": str(placeholder)}
    app, stack = build_app(context, outdir=str(tmp_path))
    app.synth()
    metadata = json.loads((tmp_path / f"{stack.stack_name}.metadata.json").read_text())
    printed = [
        entry
        for entries in metadata.values()
        for entry in entries
        if entry["type"] in {"aws:cdk:info", "aws:cdk:warning", "aws:cdk:error"}
    ]
    assert printed, "expected at least the placeholder-measurements warning"
    assert [entry for entry in printed if "trace" in entry] == []
