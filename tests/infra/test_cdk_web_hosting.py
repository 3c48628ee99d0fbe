"""Hosting the browser client (`-c web_hosting=true`): a private bucket reachable only through
CloudFront with Origin Access Control, the page's security headers set by CloudFront, nag-clean."""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synth


@pytest.fixture
def hosted(prod_hosted: Synth) -> Synth:
    # Synthesised once per session (tests/infra/conftest.py); cdk-nag ran: an unacknowledged finding fails it.
    return prod_hosted


def test_the_page_bucket_is_private_and_read_only_by_its_distribution(hosted: Synth) -> None:
    bucket_id = hosted.logical_id(hosted.stack.web.bucket)
    bucket = hosted.resources[bucket_id]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    [oac] = hosted.of_type("AWS::CloudFront::OriginAccessControl").values()
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    [policy] = [
        p for p in hosted.of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    readers = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert readers and all(s["Principal"] == {"Service": "cloudfront.amazonaws.com"} for s in readers)
    assert all("AWS:SourceArn" in s["Condition"]["StringEquals"] for s in readers)  # this distribution only


def test_the_distribution_serves_https_with_the_pages_policy(hosted: Synth) -> None:
    [distribution] = hosted.of_type("AWS::CloudFront::Distribution").values()
    behaviour = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    [headers] = hosted.of_type("AWS::CloudFront::ResponseHeadersPolicy").values()
    csp = headers["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert "script-src 'self'" in csp["ContentSecurityPolicy"] and "default-src 'none'" in csp["ContentSecurityPolicy"]


def test_nothing_is_hosted_unless_asked(prod: Synth) -> None:
    assert prod.stack.web is None
    assert not prod.of_type("AWS::CloudFront::Distribution")
