#!/usr/bin/env python3
"""Tenant CDK app: `cdk --app "python3 tenant_app.py" deploy -c tenant=... ...` in the TENANT's account.

Creates the tenant's own data key and, with `-c web_url=https://<page>/ -c api_url=<service ApiUrl>`,
the browser client's sign-in (Cognito user pool, hosted UI, identity pool, web user role;
cdk/tenant_sign_in.py). cdk/tenant_stack.py says which context it takes. The service itself is the
other app, app.py, deployed by the operator.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdk.errors import CdkAppError
from cdk.tenant_stack import build_tenant_app


def main() -> int:
    try:
        app, _stack = build_tenant_app(outdir=os.environ.get("CDK_OUTDIR") or "cdk.out")
    except CdkAppError as exc:  # bad context: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
