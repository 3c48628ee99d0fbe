"""Jobs API Lambda (API Gateway REST, IAM auth): adapts the proxy event to ``ccc_common.domain.jobs_api``.

The caller's tenant comes from ``requestContext.identity.userArn`` (set by API Gateway after SigV4
verification) mapped through TENANT_PRINCIPALS; nothing in the request can choose a tenant.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.aws.s3_adapters import S3Presigner, S3ResultDigests
from ccc_common.contracts import lambda_env
from ccc_common.contracts.lambda_env import JobsApiEnv, load_env
from ccc_common.domain.cors import CorsRule, origins_from_env, web_client_cors
from ccc_common.domain.jobs_api import ApiRequest, JobsApi, jobs_api_for
from ccc_common.lambda_observability import telemetry_for
from ccc_core.telemetry import metric_registry as m
from functions.aws_clients import CLIENT_CONFIG as LAMBDA_CLIENT_CONFIG

telemetry = telemetry_for("jobs_api")
logger, metrics, tracer = telemetry.logger, telemetry.metrics, telemetry.tracer
# The same client policy, plus: presigned S3 URLs are signed with SigV4 (s3v4).
CLIENT_CONFIG = LAMBDA_CLIENT_CONFIG.merge(Config(signature_version="s3v4"))
RESPONSE_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


@functools.cache
def runtime() -> JobsApi:
    env = load_env(JobsApiEnv)
    telemetry.bind_stage(env.stage)
    return jobs_api_for(
        DynamoJobStore.for_env(boto3.client("dynamodb", config=CLIENT_CONFIG), env),
        S3Presigner(s3 := boto3.client("s3", config=CLIENT_CONFIG)),
        S3ResultDigests(s3),
        stage=env.stage,
        inbox_bucket=env.inbox_bucket,
        results_bucket=env.results_bucket,
        principals=env.tenant_principals,
        url_expiry_s=env.url_expiry_s,
    )


@functools.cache
def cors() -> CorsRule:
    """The browser client's rule (ccc_common.domain.cors): API Gateway answers the preflight, a proxy
    integration must add Allow-Origin to its own answers."""
    origins = load_env(JobsApiEnv).web_origins
    return web_client_cors(origins_from_env({lambda_env.WEB_ORIGINS: origins})).jobs_api


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=APIGatewayProxyEvent)
def handler(event: APIGatewayProxyEvent, context: LambdaContext) -> dict[str, Any]:
    body = event.decoded_body if event.is_base64_encoded else event.body
    request = ApiRequest(
        method=event.http_method,
        path=event.path,
        principal_arn=event.request_context.identity.user_arn,
        query=dict(event.query_string_parameters or {}),
        body=body,
    )
    response = runtime().handle(request)
    if response.status == 201:
        telemetry.count(m.JOBS_CREATED)
        logger.set_correlation_id(str(response.body.get("job_id")))
    elif response.status == 403:
        telemetry.count(m.API_FORBIDDEN)
    logger.info(
        "api request",
        extra={"method": request.method, "route": event.resource, "status": response.status},
    )
    origin = (event.headers or {}).get("origin") or (event.headers or {}).get("Origin")
    headers = {**RESPONSE_HEADERS, **cors().response_headers(origin)}
    return {"statusCode": response.status, "headers": headers, "body": response.json()}
