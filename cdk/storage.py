"""S3 buckets: inbox (client ciphertext), results (enclave ciphertext + attestation), artifacts
(EIF + parent agent), and the access-log bucket they all log to.

Every bucket: public access blocked, TLS-only bucket policy, versioning, lifecycle expiry per
stage, EventBridge notifications where a rule listens.

Encryption at rest, per bucket:
* inbox, artifacts: SSE-KMS with the storage key (bucket keys on, to keep KMS request costs flat).
* results: SSE-S3 (AES256). Its objects are ESDK messages under the attested *data* key, attestation
  documents and metadata-only failure records, so a bucket-level KMS key adds no confidentiality.
  What it would add is a cost in privilege: S3 authorises SSE-KMS reads as the caller, so every
  reader (jobs_api signing a presigned download, job_events reading a failure record) would need
  `kms:Decrypt`. With SSE-S3 no Lambda holds `kms:Decrypt` on any key (tests/infra assert it).
* access logs: SSE-S3, because S3 server access logging cannot write to SSE-KMS buckets.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ccc_common.domain.cors import CorsRule, cdk_s3_cors_rule, web_client_cors
from cdk import contract
from cdk.stage_config import StageConfig


def bucket_baseline() -> dict[str, Any]:
    """What every bucket of the stacks has (cdk-nag's S1/S2/S10 and more): no public access, TLS 1.2+
    only, versioned, owner-enforced objects. One place, so a new bucket cannot start without it."""
    return {
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "enforce_ssl": True,
        "minimum_tls_version": 1.2,
        "versioned": True,
        "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    }


def _enable_eventbridge(bucket: s3.Bucket) -> None:
    # Set on the L1 resource: the L2 flag goes through a notifications custom resource (a Lambda).
    cfn = bucket.node.default_child
    assert isinstance(cfn, s3.CfnBucket)
    cfn.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
        event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
    )


def _add_cors(bucket: s3.Bucket, rule: CorsRule) -> None:
    spec = dict(cdk_s3_cors_rule(rule))
    bucket.add_cors_rule(
        allowed_methods=[s3.HttpMethods[method] for method in spec["allowed_methods"]],
        allowed_origins=spec["allowed_origins"],
        allowed_headers=spec["allowed_headers"],
        exposed_headers=spec["exposed_headers"],
        max_age=spec["max_age"],
    )


class Storage(Construct):
    """The four buckets of a stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        storage_key: kms.IKey,
        web_origins: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        names = config.names
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=names.access_logs_bucket,
            encryption=s3.BucketEncryption.S3_MANAGED,
            **bucket_baseline(),
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(config.access_log_expiry_days),
                    noncurrent_version_expiration=Duration.days(config.noncurrent_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
        self.inbox = self._data_bucket(
            "Inbox", names.inbox_bucket, config, storage_key, config.inbox_expiry_days, "inbox/", eventbridge=True
        )
        # SSE-S3 on purpose (see the module docstring): no reader of results needs a KMS permission.
        self.results = self._data_bucket(
            "Results", names.results_bucket, config, None, config.results_expiry_days, "results/", eventbridge=True
        )
        if web_origins:  # the browser client: PUT its ciphertext, GET its result (ccc_common.domain.cors)
            rules = web_client_cors(web_origins)
            _add_cors(self.inbox, rules.inbox_bucket)
            _add_cors(self.results, rules.results_bucket)
        # Artifacts are releases (EIF + agent bundle): they must not expire under a running fleet.
        # Dead-letter archives (metadata) live beside them and expire with the job records.
        self.artifacts = self._data_bucket(
            "Artifacts", names.artifacts_bucket, config, storage_key, None, "artifacts/", eventbridge=False
        )
        self.artifacts.add_lifecycle_rule(
            id="expire-dead-letter-archive",
            prefix=contract.DEAD_LETTER_ARCHIVE_PREFIX,
            expiration=Duration.days(config.settings.job_ttl_days),
            noncurrent_version_expiration=Duration.days(config.noncurrent_expiry_days),
        )

    def _data_bucket(
        self,
        construct_id: str,
        name: str,
        config: StageConfig,
        key: kms.IKey | None,
        expiry_days: int | None,
        log_prefix: str,
        *,
        eventbridge: bool,
    ) -> s3.Bucket:
        rule = s3.LifecycleRule(
            id="expire-objects" if expiry_days else "expire-old-versions",
            expiration=Duration.days(expiry_days) if expiry_days else None,
            noncurrent_version_expiration=Duration.days(config.noncurrent_expiry_days),
            abort_incomplete_multipart_upload_after=Duration.days(1),
        )
        bucket = s3.Bucket(
            self,
            construct_id,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=True if key else None,
            **bucket_baseline(),
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=log_prefix,
            lifecycle_rules=[rule],
            removal_policy=config.removal_policy,
            auto_delete_objects=config.auto_delete_objects,
        )
        if eventbridge:
            _enable_eventbridge(bucket)
        return bucket
