"""The job buckets' retention: one builder for the CDK stack and the local stack."""

from __future__ import annotations

import pytest

from ccc_common.domain.bucket_lifecycle import job_bucket_lifecycles, s3_lifecycle_configuration
from ccc_common.domain.settings import stage_settings
from cdk.stage_config import stage_config


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_cdk_stage_deploys_the_builders_retention(stage: str) -> None:
    config = stage_config(stage)
    lifecycles = job_bucket_lifecycles(stage_settings(stage))
    assert config.inbox_expiry_days == lifecycles.inbox.expire_days
    assert config.results_expiry_days == lifecycles.results.expire_days
    assert (
        config.noncurrent_expiry_days
        == lifecycles.inbox.noncurrent_expire_days
        == lifecycles.results.noncurrent_expire_days
    )


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_an_input_outlives_every_redrive_of_its_message(stage: str) -> None:
    settings = stage_settings(stage)
    lifecycles = job_bucket_lifecycles(settings)
    assert lifecycles.inbox.expire_days * 86400 > settings.queue.dlq_retention_s
    assert lifecycles.results.expire_days == settings.job_ttl_days  # as long as the job's record


def test_old_versions_go_after_a_day_and_after_a_week_in_prod() -> None:
    assert job_bucket_lifecycles(stage_settings("local")).inbox.noncurrent_expire_days == 1
    assert job_bucket_lifecycles(stage_settings("dev")).results.noncurrent_expire_days == 1
    assert job_bucket_lifecycles(stage_settings("prod")).inbox.noncurrent_expire_days == 7


def test_the_s3_form_is_one_enabled_rule_over_the_whole_bucket() -> None:
    rule = job_bucket_lifecycles(stage_settings("local")).inbox
    assert s3_lifecycle_configuration(rule) == {
        "Rules": [
            {
                "ID": "expire-objects",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Expiration": {"Days": 15},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        ]
    }
