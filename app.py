#!/usr/bin/env python3
"""CDK app entry point: `cdk synth -c stage=dev|prod` or `make synth` (python app.py, offline)."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdk.application import build_app
from cdk.errors import CdkAppError


def main() -> int:
    try:
        app, stack = build_app(outdir=os.environ.get("CDK_OUTDIR") or "cdk.out")
    except CdkAppError as exc:  # bad stage configuration or measurements: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if stack.inputs.measurements.placeholder:
        print(
            f"WARNING: {stack.stack_name} uses PLACEHOLDER enclave measurements: no enclave can decrypt "
            "until enclave_worker/build_eif.sh writes enclave_worker/measurements.json",
            file=sys.stderr,
        )
    if stack.inputs.demo_tenants:
        print(
            f"WARNING: {stack.stack_name} creates DEMO tenant roles ({', '.join(sorted(stack.inputs.demo_tenants))}) "
            "that trust the account root, on the operator-run key: the operator can act as these tenants. "
            "Dev only; real tenants deploy their own key (tenant_app.py) and are listed in context tenants.",
            file=sys.stderr,
        )
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
