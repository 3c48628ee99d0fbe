"""Hosting the browser client (web/) on AWS: a private S3 bucket behind CloudFront with Origin Access
Control (the bucket is reachable only through the distribution, never publicly).

Why no BucketDeployment: it adds a Lambda with broad S3 rights to every deploy of the service
stack; the page is published by whoever builds it (`make web`, then `aws s3 sync web/dist
s3://<WebBucket>/dist` and `aws s3 cp web/index.html s3://<WebBucket>/`), and CloudFront serves what
the bucket holds. The distribution adds the page's security headers itself (a Content-Security-Policy
allowing scripts from the page's own origin only and connections to AWS endpoints and the tenant's
Cognito hosted UI (its token endpoint, for sign-in) over HTTPS), so
the page runs no code from anywhere else.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk.stage_config import StageConfig
from cdk.storage import bucket_baseline

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self' https://*.amazonaws.com https://*.amazoncognito.com; worker-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class WebHosting(Construct):
    """The page's bucket and its CloudFront distribution (OAC)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            **bucket_baseline(),
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="web/",
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=PAGE_CSP, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment=f"CCC {config.stage} browser client",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
        )
        if config.removal_policy == RemovalPolicy.DESTROY:
            self.distribution.apply_removal_policy(RemovalPolicy.DESTROY)

    @property
    def origin(self) -> str:
        """The page's origin (a deploy-time token): give it to `web_origins` on the next deploy."""
        return f"https://{self.distribution.distribution_domain_name}"
