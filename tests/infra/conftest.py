"""Synthesise each stage ONCE per test session (synthesis takes seconds) and share the result."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "infra"
MEASUREMENTS_FIXTURE = FIXTURES / "measurements.json"
PLACEHOLDER = REPO_ROOT / "enclave_worker" / "measurements.placeholder.json"
# prod serves tenants with their own keys (CccTenant in their accounts; cdk/tenants.py), no demo roles.
PROD_TENANTS: list[dict[str, Any]] = [
    {
        "name": "acme",
        "account": "111111111111",
        "key_arn": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "principals": ["arn:aws:iam::111111111111:role/acme-client"],
    },
    {
        "name": "globex",
        "account": "333333333333",
        "key_arn": "arn:aws:kms:us-east-1:333333333333:key/abcd1234-12ab-34cd-56ef-1234567890ab",
        "principals": ["arn:aws:iam::333333333333:role/globex-client", "arn:aws:iam::333333333333:user/ops"],
    },
]


@dataclass
class Synth:
    """One synthesised stage: the stack object, its template and the cloud assembly directory."""

    stage: str
    stack: Any
    template: dict[str, Any]
    outdir: Path
    applied_acks: list[Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)


def synthesise(stage: str, context: dict[str, Any], outdir: Path) -> Synth:
    from cdk.application import build_app

    app, stack = build_app({"stage": stage, **context}, outdir=str(outdir))
    app.synth()  # raises if cdk-nag reports an unacknowledged finding
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return Synth(
        stage=stage, stack=stack, template=template, outdir=outdir, applied_acks=stack.applied_acknowledgements
    )


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # The placeholder explicitly, so a locally built enclave_worker/measurements.json cannot change the test.
    return synthesise("dev", {"measurements": str(PLACEHOLDER)}, tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesise(
        "prod",
        {"measurements": str(MEASUREMENTS_FIXTURE), "tenants": json.dumps(PROD_TENANTS)},
        tmp_path_factory.mktemp("cdk-prod"),
    )


@pytest.fixture(scope="session", params=["dev", "prod"])
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


# The other network mode of each stage (dev defaults to `public`, prod to `endpoints`): synthesised
# once per session for the network-mode, cdk-nag/cfn-lint and cost-table tests, not for every test.
@pytest.fixture(scope="session")
def dev_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesise(
        "dev", {"measurements": str(PLACEHOLDER), "network": "endpoints"}, tmp_path_factory.mktemp("cdk-dev-endpoints")
    )


@pytest.fixture(scope="session")
def prod_public(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesise(
        "prod",
        {"measurements": str(MEASUREMENTS_FIXTURE), "tenants": json.dumps(PROD_TENANTS), "network": "public"},
        tmp_path_factory.mktemp("cdk-prod-public"),
    )


@pytest.fixture(scope="session")
def dev_without_warm_pool(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """warm_pool=0: the mixed-instances, spot-in-dev group a warm pool rules out."""
    return synthesise(
        "dev", {"measurements": str(PLACEHOLDER), "warm_pool": 0}, tmp_path_factory.mktemp("cdk-dev-no-warm-pool")
    )


@pytest.fixture(scope="session")
def prod_hosted(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """web_hosting=true: the browser client's bucket and CloudFront distribution (cdk/web_hosting.py)."""
    return synthesise(
        "prod",
        {"measurements": str(MEASUREMENTS_FIXTURE), "tenants": json.dumps(PROD_TENANTS), "web_hosting": "true"},
        tmp_path_factory.mktemp("cdk-prod-hosted"),
    )


# Every (stage, network mode): the stage defaults plus the other mode of each.
ALL_MODES = ("dev", "prod", "dev_endpoints", "prod_public")


@pytest.fixture(scope="session", params=ALL_MODES)
def any_mode(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session", params=["prod", "dev_endpoints"])
def endpoints_mode(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session", params=["dev", "prod_public"])
def public_mode(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def fixture_measurements() -> dict[str, Any]:
    return json.loads(MEASUREMENTS_FIXTURE.read_text())
