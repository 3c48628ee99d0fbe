"""Build the CDK app for a stage from CDK context: the one entry point for `app.py` and tests.

Context keys (all optional, `cdk synth -c key=value` or cdk.json):
  stage                   dev (default) | prod
  measurements            path to a measurements JSON (default enclave_worker/measurements.json)
  pcr0, pcr1, pcr2, pcr8  PCR values directly (override the file)
  tenants                 JSON list of {name, account, key_arn, principals}: tenants with their OWN key
                          (CccTenant in their account; cdk/tenants.py); the prod way
  demo_tenants            dev only: comma-separated tenant ids that get a convenience client role in
                          the service account, trusting its root, on the operator-run key (default "demo")
  operator_key            true|false: create the operator-run data key (default: dev true, prod false)
  tenant_principals       JSON {tenant: [IAM ARNs]} of external client principals on the operator-run key
  key_admins              comma-separated IAM ARNs that administer (never use) the operator-run key
  powertools_layer_version  version of the public Powertools layer (default in cdk/orchestration.py)
  network                 public (dev default: zero idle cost) | endpoints (prod default: no internet route)
  warm_pool               stopped pre-installed instances kept for scale-out (default 1; 0 = none, spot in dev)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from ccc_common.domain.cors import check_origins
from cdk.ccc_stack import CccStack, StackInputs
from cdk.measurements import resolve_measurements
from cdk.nag_acknowledgements import ACKNOWLEDGEMENTS, MIXED_INSTANCES, Ack, apply_acknowledgements
from cdk.orchestration import POWERTOOLS_LAYER_VERSION
from cdk.stage_config import DEFAULT_STAGE, StageConfigError
from cdk.tenants import parse_tenants


def _csv(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _json_mapping(value: object, key: str) -> dict[str, tuple[str, ...]]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise StageConfigError(f"context {key} is not JSON: {exc}") from None
    if not isinstance(value, Mapping) or not all(isinstance(v, list) for v in value.values()):
        raise StageConfigError(f"context {key} must be a JSON object of tenant -> [ARN, ...]")
    return {str(k): tuple(str(a) for a in v) for k, v in value.items()}


def _bool(value: object, key: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise StageConfigError(f"context {key} must be true or false, got {value!r}")


def inputs_from_context(stage: str, context: Mapping[str, Any]) -> StackInputs:
    demo_tenants = _csv(context.get("demo_tenants", "demo" if stage == "dev" else ""))
    version = context.get("powertools_layer_version", POWERTOOLS_LAYER_VERSION)
    try:
        layer_version = int(version)
    except (TypeError, ValueError):
        raise StageConfigError(f"powertools_layer_version {version!r} is not an integer") from None
    try:
        warm_pool = int(context.get("warm_pool", 1))
    except (TypeError, ValueError):
        raise StageConfigError(f"warm_pool {context.get('warm_pool')!r} is not an integer") from None
    return StackInputs(
        network=None if context.get("network") is None else str(context["network"]),
        warm_pool_size=warm_pool,
        measurements=resolve_measurements(stage, context),
        tenants=parse_tenants(context.get("tenants")),
        demo_tenants=demo_tenants,
        operator_key=_bool(context.get("operator_key"), "operator_key"),
        external_tenant_principals=_json_mapping(context.get("tenant_principals"), "tenant_principals"),
        key_admins=_csv(context.get("key_admins")),
        powertools_layer_version=layer_version,
        web_origins=check_origins(_csv(context.get("web_origins"))),
        web_hosting=bool(_bool(context.get("web_hosting"), "web_hosting")),
    )


def build_app(
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    acknowledgements: tuple[Ack, ...] = ACKNOWLEDGEMENTS,
) -> tuple[App, CccStack]:
    """The app with one stage's stack, cdk-nag AwsSolutions as a validation plugin, and the
    acknowledgement table applied. `context` adds to (and overrides) cdk.json / `-c` context."""
    app = App(outdir=outdir, context={**FEATURE_FLAGS, **(context or {})})
    stage = str(app.node.try_get_context("stage") or DEFAULT_STAGE)
    merged = {key: app.node.try_get_context(key) for key in _CONTEXT_KEYS}
    stack = CccStack(
        app, stage=stage, inputs=inputs_from_context(stage, {k: v for k, v in merged.items() if v is not None})
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack.applied_acknowledgements = apply_acknowledgements(
        stack,
        tenants=stack.inputs.demo_tenants,
        stage=stage,
        fleet_group=stack.config.names.fleet_group,
        table=acknowledgements,
        features=frozenset({MIXED_INSTANCES} if stack.config.warm_pool_size == 0 else ()),
    )
    return app, stack


# CDK feature flags, here rather than in cdk.json so that `python app.py` and tests get them too.
FEATURE_FLAGS: dict[str, Any] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,  # log delivery by bucket policy, no ACLs
    "@aws-cdk/aws-iam:minimizePolicies": True,
    "@aws-cdk/core:target-partitions": ["aws"],
}

_CONTEXT_KEYS = (
    "measurements",
    "pcr0",
    "pcr1",
    "pcr2",
    "pcr8",
    "tenants",
    "demo_tenants",
    "operator_key",
    "tenant_principals",
    "key_admins",
    "powertools_layer_version",
    "network",
    "warm_pool",
    "web_origins",
    "web_hosting",
)
