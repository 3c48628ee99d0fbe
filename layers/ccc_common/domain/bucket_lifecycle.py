"""How long the job buckets keep objects: one definition for the CDK stack and the local stack.

Why here: the inbox must keep a job's input as long as its work message can still come back (the
dead-letter queue's retention, plus a day), the results bucket keeps results as long as the jobs
table keeps the job (``job_ttl_days``), and old object versions go after a day (a week in prod).
CDK deployed those numbers while the local stack wrote its own rule (30 days for the inbox, no
rule for old versions): the two tiers disagreed on a fact the exactly-once redrive depends on.
Both now build from ``job_bucket_lifecycles``; ``s3_lifecycle_configuration`` is the
PutBucketLifecycleConfiguration form the local stack applies (CDK turns the same values into its
``LifecycleRule``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ccc_common.domain.settings import StageSettings

SECONDS_PER_DAY = 86400
ABORT_INCOMPLETE_UPLOADS_DAYS = 1


@dataclass(frozen=True)
class BucketLifecycle:
    """The lifecycle rule of one job bucket: current objects expire after ``expire_days``, noncurrent
    versions after ``noncurrent_expire_days``, unfinished multipart uploads after a day."""

    rule_id: str
    expire_days: int
    noncurrent_expire_days: int
    abort_incomplete_upload_days: int = ABORT_INCOMPLETE_UPLOADS_DAYS


@dataclass(frozen=True)
class JobBucketLifecycles:
    inbox: BucketLifecycle
    results: BucketLifecycle


def noncurrent_expiry_days(settings: StageSettings) -> int:
    return 7 if settings.stage == "prod" else 1


def inbox_expiry_days(settings: StageSettings) -> int:
    """A message can be redriven from the DLQ until the DLQ drops it, so its input outlives that."""
    return math.ceil(settings.queue.dlq_retention_s / SECONDS_PER_DAY) + 1


def job_bucket_lifecycles(settings: StageSettings) -> JobBucketLifecycles:
    noncurrent = noncurrent_expiry_days(settings)
    return JobBucketLifecycles(
        inbox=BucketLifecycle("expire-objects", inbox_expiry_days(settings), noncurrent),
        results=BucketLifecycle("expire-objects", settings.job_ttl_days, noncurrent),
    )


def s3_lifecycle_configuration(rule: BucketLifecycle) -> dict[str, Any]:
    """The ``LifecycleConfiguration`` of S3's PutBucketLifecycleConfiguration for ``rule``."""
    body: dict[str, Any] = {
        "ID": rule.rule_id,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": rule.expire_days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": rule.noncurrent_expire_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": rule.abort_incomplete_upload_days},
    }
    return {"Rules": [body]}
