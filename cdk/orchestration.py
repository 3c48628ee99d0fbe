"""Lambdas (scaler, job_events, jobs_api, dead_letters), the shared layer, the jobs table, the
scaler schedule and the IAM-authenticated jobs API.

Least privilege, by design rather than by review: no Lambda has any permission on the *data*
key, so none can ever see a plaintext image or result, and no Lambda holds `kms:Decrypt` (or
`kms:ReEncrypt*`, or `kms:*`) on any key at all. That is why the results bucket is SSE-S3 (see
cdk/storage.py): presigned downloads and failure-record reads need no KMS right. Writing to an
SSE-KMS bucket needs `kms:GenerateDataKey` on the *storage* key (S3 authorises SSE-KMS as the
caller, a presigned URL as its signer); those grants are `kms:ViaService` S3 and scoped to one
bucket by the S3 encryption context:
  jobs_api      GenerateDataKey (inbox: presigned upload)
  dead_letters  GenerateDataKey (artifacts: archive of dead-lettered messages)
  job_events    none
  scaler        none
Through those, a Lambda can only ever write into buckets or read ESDK ciphertext, attestation
documents and metadata.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import AssetHashType, Aws, Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ccc_common.domain.cors import web_client_cors
from ccc_common.domain.iam_policies import lambda_statements
from cdk import contract
from cdk.bundling import copy_tree_bundling, copy_trees_bundling
from cdk.iam_grants import attach, policy_resources
from cdk.identities import s3_via_service
from cdk.stage_config import StageConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
LAYER_PACKAGE_DIR = REPO_ROOT / "layers" / "ccc_common"
# The shared core (job identity, limits, AWS error codes) ships in the enclave distribution; the
# layer carries it beside ccc_common, which imports it.
CORE_PACKAGE_DIR = REPO_ROOT / "enclave_worker" / "enclave" / "ccc_core"

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# AWS Lambda Powertools for Python v3, public layer (account 017000801446), arm64, python3.13.
# It also brings pydantic v2, which ccc_common needs (built with the [all] extra; sources in
# docs/deploy.md, "The Powertools layer brings pydantic"). Override with -c powertools_layer_version=N.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python313-arm64"
POWERTOOLS_LAYER_VERSION = 27


def powertools_layer_arn(version: int) -> str:
    return f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_LAYER_ACCOUNT}:layer:{POWERTOOLS_LAYER_NAME}:{version}"


def fleet_group_arn(group_name: str) -> str:
    """The Auto Scaling group ARN by name (its middle part is a random id, hence the wildcard)."""
    return (
        f"arn:{Aws.PARTITION}:autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:autoScalingGroup:*:"
        f"autoScalingGroupName/{group_name}"
    )


def handler_path(function: str) -> str:
    """The `functions` package ships whole, so handlers can import siblings absolutely."""
    return f"functions.{function}.handler.handler"


class Orchestration(Construct):
    """Everything serverless that tracks jobs and drives the fleet."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        inbox: s3.IBucket,
        results: s3.IBucket,
        storage_key: kms.IKey,
        artifacts: s3.IBucket,
        work_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        tenant_principals_json: str,
        powertools_layer_version: int = POWERTOOLS_LAYER_VERSION,
        functions_dir: Path = FUNCTIONS_DIR,
        web_origins: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        names = config.names
        self.table = dynamodb.Table(
            self,
            "JobsTable",
            table_name=names.jobs_table,
            partition_key=dynamodb.Attribute(name=contract.TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=contract.TABLE_TTL_ATTRIBUTE,
            deletion_protection=config.stage == "prod",
            removal_policy=config.removal_policy,
        )
        self.table.add_global_secondary_index(
            index_name=contract.TENANT_INDEX_NAME,
            partition_key=dynamodb.Attribute(
                name=contract.TENANT_INDEX_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=contract.TENANT_INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        shared_layer = lambda_.LayerVersion(
            self,
            "SharedLayer",
            code=lambda_.Code.from_asset(
                str(LAYER_PACKAGE_DIR),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=copy_trees_bundling(
                    {"python/ccc_common": LAYER_PACKAGE_DIR, "python/ccc_core": CORE_PACKAGE_DIR}
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="ccc_common + ccc_core: names, settings, key policy, job model, scaling policy",
            removal_policy=config.removal_policy,
        )
        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self, "PowertoolsLayer", powertools_layer_arn(powertools_layer_version)
        )
        code = lambda_.Code.from_asset(str(functions_dir), bundling=copy_tree_bundling(functions_dir, "functions"))

        # A value for every variable the stack can fill; each function takes the ones its model reads.
        values = {
            contract.STAGE: config.stage,
            contract.POWERTOOLS_METRICS_NAMESPACE: names.metrics_namespace,
            contract.JOBS_TABLE: self.table.table_name,
            contract.JOBS_TENANT_INDEX: contract.TENANT_INDEX_NAME,
            contract.JOBS_TTL_ATTRIBUTE: contract.TABLE_TTL_ATTRIBUTE,
            contract.ARCHIVE_BUCKET: artifacts.bucket_name,
            contract.INBOX_BUCKET: inbox.bucket_name,
            contract.RESULTS_BUCKET: results.bucket_name,
            contract.WORK_QUEUE_URL: work_queue.queue_url,
            contract.DLQ_URL: dead_letter_queue.queue_url,
            contract.FLEET_GROUP: names.fleet_group,
            contract.SCALER_FUNCTION: names.function_name("scaler"),
            contract.TENANT_PRINCIPALS: tenant_principals_json,
            **({contract.WEB_ORIGINS: ",".join(web_origins)} if web_origins else {}),
        }
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.roles: dict[str, iam.Role] = {}
        for function in contract.FUNCTIONS:
            if not (functions_dir / function).is_dir():
                # Deploy what exists: a missing handler package fails the synth with a clear reason.
                raise FileNotFoundError(f"Lambda package {functions_dir / function} is missing")
            log_group = logs.LogGroup(
                self,
                f"{function}-logs",
                log_group_name=f"/aws/lambda/{names.function_name(function)}",
                retention=config.log_retention,
                removal_policy=config.removal_policy,
            )
            # Own role instead of AWSLambdaBasicExecutionRole: logs only to this function's group.
            role = iam.Role(
                self,
                f"{function}-role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"CCC {config.stage} Lambda {function}",
            )
            log_group.grant_write(role)
            env = contract.lambda_environment(function, {**values, contract.POWERTOOLS_SERVICE_NAME: function})
            env[contract.POWERTOOLS_LOG_LEVEL] = "INFO"
            self.functions[function] = lambda_.Function(
                self,
                function,
                function_name=names.function_name(function),
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=handler_path(function),
                code=code,
                layers=[powertools, shared_layer],
                environment=env,
                memory_size=config.lambda_memory_mb,
                timeout=Duration.seconds(30),
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                role=role,
            )
            self.log_groups[function] = log_group
            self.roles[function] = role

        scaler = self.functions["scaler"]
        jobs_api = self.functions["jobs_api"]
        dead_letters = self.functions["dead_letters"]

        # Each function's data-plane grants are the shared builder's (ccc_common.domain.iam_policies.
        # lambda_statements), which the local stack enforces on its Lambdas as well.
        shared = policy_resources(
            config, inbox_bucket_arn=inbox.bucket_arn, results_bucket_arn=results.bucket_arn,
            artifacts_bucket_arn=artifacts.bucket_arn, work_queue_arn=work_queue.queue_arn,
            dead_letter_queue_arn=dead_letter_queue.queue_arn, jobs_table_arn=self.table.table_arn,
            scaler_function_arn=scaler.function_arn,
        )
        for function in contract.FUNCTIONS:
            attach(self.roles[function], lambda_statements(function, shared))

        # scaler: read the backlog, set the fleet's desired capacity (min 0, max from settings).
        events.Rule(
            self,
            "ScalerSchedule",
            description="Re-evaluate the fleet size even when no event arrives (scale to zero when idle)",
            schedule=events.Schedule.rate(Duration.minutes(config.settings.fleet.scaler_rate_minutes)),
            targets=[targets.LambdaFunction(scaler, retry_attempts=0)],
        )

        # job_events: job status transitions, and an asynchronous wake-up of the scaler. It reads the
        # parent's failure records (metadata; the results bucket is SSE-S3, so no KMS right) for the reason.

        # jobs_api: create and list jobs, presign the inbox upload and the result download. A presigned
        # request is authorised as the signer: the SSE-KMS inbox needs GenerateDataKey on the storage key
        # (via S3 only); the SSE-S3 results bucket needs no KMS right for the download.
        # UpdateItem: a job read after its upload window closed without an upload becomes failed
        # (ccc_common.domain.jobs_api, expiry on read).
        jobs_api.add_to_role_policy(s3_via_service(storage_key, ["kms:GenerateDataKey"], [inbox]))

        # dead_letters: drain the DLQ into `failed` job records.
        dead_letters.add_event_source(
            sources.SqsEventSource(dead_letter_queue, batch_size=10, report_batch_item_failures=True)
        )
        # dead_letters archives each DLQ message (S3 event metadata, no image data) before failing its job.
        dead_letters.add_to_role_policy(s3_via_service(storage_key, ["kms:GenerateDataKey"], [artifacts]))

        self.api = self._jobs_api(config, jobs_api, web_origins)

    def _table_access(self, function: lambda_.Function, actions: list[str]) -> None:
        """Item-level actions on the table itself (CDK's table.grant would add every index too)."""
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[self.table.table_arn]))

    def _jobs_api(
        self, config: StageConfig, handler: lambda_.IFunction, web_origins: tuple[str, ...] = ()
    ) -> apigw.RestApi:
        # The browser client's preflight (ccc_common.domain.cors): answered by API Gateway itself, with
        # no authorisation (browsers send none on OPTIONS); the Lambda adds Allow-Origin to its answers.
        rule = web_client_cors(web_origins).jobs_api if web_origins else None
        preflight = (
            apigw.CorsOptions(
                allow_origins=list(rule.allowed_origins),
                allow_methods=list(rule.allowed_methods),
                allow_headers=list(rule.allowed_headers),
                max_age=Duration.seconds(rule.max_age_seconds),
            )
            if rule
            else None
        )
        access_logs = logs.LogGroup(
            self, "ApiAccessLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        api = apigw.RestApi(
            self,
            "JobsApi",
            rest_api_name=f"{config.names.prefix}-jobs",
            description="CCC jobs API (IAM auth): POST /jobs, GET /jobs, GET /jobs/{id}",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,  # request/response bodies stay out of logs
                metrics_enabled=True,
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            default_cors_preflight_options=preflight,
        )
        validator = api.add_request_validator("Validator", validate_request_body=True, validate_request_parameters=True)
        integration = apigw.LambdaIntegration(handler)
        jobs = api.root.add_resource("jobs")
        jobs.add_method("POST", integration, request_validator=validator)
        jobs.add_method("GET", integration, request_validator=validator)
        job = jobs.add_resource("{id}")
        job.add_method(
            "GET", integration, request_validator=validator, request_parameters={"method.request.path.id": True}
        )
        return api
