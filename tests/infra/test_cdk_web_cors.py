"""The browser client on AWS: the CORS rules CDK sets are the builder's (ccc_common.domain.cors), the
same ones the local stack answers with; without `web_origins` nothing is opened to any origin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccc_common.contracts.lambda_env import WEB_ORIGINS
from ccc_common.domain.cors import CorsError, web_client_cors
from tests.infra.conftest import MEASUREMENTS_FIXTURE, PROD_TENANTS, Synth, synthesise

PAGE = "https://cats.example.com"


@pytest.fixture(scope="module")
def prod_with_page(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    # synthesise() runs cdk-nag: an unacknowledged finding fails here.
    return synthesise(
        "prod",
        {"measurements": str(MEASUREMENTS_FIXTURE), "tenants": json.dumps(PROD_TENANTS), "web_origins": PAGE},
        Path(tmp_path_factory.mktemp("cdk-prod-web")),
    )


def _bucket(synth: Synth, name: str) -> dict[str, Any]:
    """The bucket's properties, by the construct (its physical name is a token in the template)."""
    properties: dict[str, Any] = synth.resources[synth.logical_id(getattr(synth.stack.storage, name))]["Properties"]
    return properties


def test_the_buckets_carry_exactly_the_builders_rules(prod_with_page: Synth) -> None:
    rules = web_client_cors([PAGE])
    for bucket, rule in (("inbox", rules.inbox_bucket), ("results", rules.results_bucket)):
        [cors] = _bucket(prod_with_page, bucket)["CorsConfiguration"]["CorsRules"]
        assert cors["AllowedOrigins"] == [PAGE]
        assert cors["AllowedMethods"] == list(rule.allowed_methods)
        assert cors["AllowedHeaders"] == list(rule.allowed_headers)
        assert cors["MaxAge"] == rule.max_age_seconds
    assert "CorsConfiguration" not in _bucket(prod_with_page, "artifacts")


def test_the_api_answers_the_preflight_and_the_lambda_knows_the_origins(prod_with_page: Synth) -> None:
    options = [
        r
        for r in prod_with_page.of_type("AWS::ApiGateway::Method").values()
        if r["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert options and all(r["Properties"]["AuthorizationType"] == "NONE" for r in options)
    allowed = {
        header["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"]
        for r in options
        for header in r["Properties"]["Integration"]["IntegrationResponses"]
    }
    assert allowed == {f"'{PAGE}'"}
    functions = prod_with_page.of_type("AWS::Lambda::Function").values()
    env = [f["Properties"].get("Environment", {}).get("Variables", {}) for f in functions]
    assert [e[WEB_ORIGINS] for e in env if WEB_ORIGINS in e] == [PAGE]  # the jobs API only


def test_without_web_origins_nothing_is_opened(prod: Synth) -> None:
    for bucket in ("inbox", "results"):
        assert "CorsConfiguration" not in _bucket(prod, bucket)
    assert not [
        r for r in prod.of_type("AWS::ApiGateway::Method").values() if r["Properties"]["HttpMethod"] == "OPTIONS"
    ]


def test_a_wildcard_origin_is_refused_at_synth(tmp_path: Path) -> None:
    with pytest.raises(CorsError):
        synthesise(
            "prod",
            {"measurements": str(MEASUREMENTS_FIXTURE), "tenants": json.dumps(PROD_TENANTS), "web_origins": "*"},
            tmp_path,
        )
