"""The web client's CORS rules (ccc_common.domain.cors): one builder for CDK and the local stack."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc_common.domain.cors import (
    KMS_CORS,
    CorsError,
    cdk_s3_cors_rule,
    origins_from_env,
    s3_cors_configuration,
    web_client_cors,
)

PAGE = "http://127.0.0.1:8123"


def test_only_the_page_origin_may_call_the_api_and_the_buckets():
    rules = web_client_cors([PAGE])
    for rule in (rules.jobs_api, rules.inbox_bucket, rules.results_bucket):
        assert rule.allows_origin(PAGE)
        assert not rule.allows_origin("http://127.0.0.1:9999")
        assert not rule.allows_origin("https://evil.example")
        assert not rule.allows_origin(None)
        assert rule.response_headers("https://evil.example") == {}


def test_each_bucket_allows_only_what_the_page_does_there():
    rules = web_client_cors([PAGE])
    assert rules.inbox_bucket.preflight_headers(PAGE, "PUT", None) is not None
    assert rules.inbox_bucket.preflight_headers(PAGE, "GET", None) is None
    assert rules.inbox_bucket.preflight_headers(PAGE, "DELETE", None) is None
    assert rules.results_bucket.preflight_headers(PAGE, "GET", None) is not None
    assert rules.results_bucket.preflight_headers(PAGE, "PUT", None) is None


def test_the_api_preflight_allows_the_signed_headers_and_nothing_else():
    api = web_client_cors([PAGE]).jobs_api
    answer = api.preflight_headers(PAGE, "POST", "authorization, x-amz-date, content-type, x-amz-content-sha256")
    assert answer is not None
    assert answer["Access-Control-Allow-Origin"] == PAGE
    assert "Access-Control-Allow-Credentials" not in answer  # no cookies, ever
    assert api.preflight_headers(PAGE, "POST", "authorization, x-forwarded-for") is None
    assert api.preflight_headers(PAGE, "DELETE", "authorization") is None


def test_kms_answers_any_origin_like_aws_kms():
    answer = KMS_CORS.preflight_headers("https://anything.example", "POST", "x-amz-target, authorization")
    assert answer is not None and answer["Access-Control-Allow-Origin"] == "*"


def test_s3_and_cdk_forms_carry_the_same_rule():
    rule = web_client_cors([PAGE]).inbox_bucket
    s3 = s3_cors_configuration(rule)["CORSRules"][0]
    cdk = cdk_s3_cors_rule(rule)
    assert s3["AllowedOrigins"] == cdk["allowed_origins"] == [PAGE]
    assert s3["AllowedMethods"] == cdk["allowed_methods"] == ["PUT"]
    assert s3["MaxAgeSeconds"] == cdk["max_age"]


@pytest.mark.parametrize("origin", ["*", "http://*.example", "http://127.0.0.1:8123/", "127.0.0.1:8123", "ftp://x", ""])
def test_wildcards_paths_and_non_origins_are_refused(origin: str):
    with pytest.raises(CorsError):
        web_client_cors([origin])


def test_origins_come_from_the_environment():
    assert origins_from_env({}) == ()
    assert origins_from_env({"CCC_WEB_ORIGINS": f"{PAGE}, https://app.example"}) == (PAGE, "https://app.example")


@given(st.text(max_size=40), st.sampled_from(["GET", "PUT", "POST", "DELETE", None]), st.text(max_size=60))
def test_no_preflight_from_another_origin_is_ever_allowed(origin: str, method: str | None, headers: str):
    rules = web_client_cors([PAGE])
    if origin != PAGE:
        for rule in (rules.jobs_api, rules.inbox_bucket, rules.results_bucket):
            assert rule.preflight_headers(origin, method, headers) is None
