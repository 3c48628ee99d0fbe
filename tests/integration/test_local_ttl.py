"""DynamoDB TTL on the local tier (moto in-process): the supervisor's sweep deletes what AWS would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ccc.local.ttl_sweeper import TtlSweeper, expire_items
from ccc_common.aws.jobs_dal import DynamoJobStore
from ccc_common.contracts import jobs_table
from ccc_common.domain.jobs import new_job
from ccc_core.identity import JobRef

REGION = "us-east-1"
TABLE = "ccc-local-jobs"
NOW = 1_900_000_000


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**jobs_table.create_table_request(TABLE))
        client.update_time_to_live(**jobs_table.time_to_live_request(TABLE))
        yield client


def _put(dynamodb: Any, job_id: str, ttl: dict[str, str] | None) -> None:
    item = {"job_id": {"S": job_id}, "tenant": {"S": "tenant-a"}, "created_at": {"S": "2030-01-01T00:00:00Z"}}
    if ttl is not None:
        item[jobs_table.TTL_ATTRIBUTE] = ttl
    dynamodb.put_item(TableName=TABLE, Item=item)


def _ids(dynamodb: Any) -> set[str]:
    return {item["job_id"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]}


def test_items_past_their_ttl_disappear_and_the_rest_stay(dynamodb: Any) -> None:
    _put(dynamodb, "expired", {"N": str(NOW - 1)})
    _put(dynamodb, "due-later", {"N": str(NOW + 3600)})
    _put(dynamodb, "no-ttl", None)
    _put(dynamodb, "not-a-number", {"S": str(NOW - 1)})  # AWS ignores a TTL attribute that is not a number
    assert expire_items(dynamodb, TABLE, now=NOW) == 1
    assert _ids(dynamodb) == {"due-later", "no-ttl", "not-a-number"}
    assert expire_items(dynamodb, TABLE, now=NOW + 3601) == 1
    assert _ids(dynamodb) == {"no-ttl", "not-a-number"}


def test_a_job_record_goes_when_the_jobs_tables_retention_ends(dynamodb: Any) -> None:
    store = DynamoJobStore(dynamodb, TABLE, ttl_days=30)
    created = datetime(2030, 1, 1, tzinfo=UTC)
    store.create(new_job(JobRef("tenant-a", "a" * 32), created, ttl_days=30))
    expire_items(dynamodb, TABLE, now=(created + timedelta(days=29)).timestamp())
    assert store.get("a" * 32) is not None
    expire_items(dynamodb, TABLE, now=(created + timedelta(days=31)).timestamp())
    assert store.get("a" * 32) is None


def test_an_item_whose_ttl_was_extended_after_the_scan_stays(dynamodb: Any) -> None:
    _put(dynamodb, "extended", {"N": str(NOW - 1)})

    class ExtendAfterScan:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def scan(self, **kwargs: Any) -> Any:
            page = dynamodb.scan(**kwargs)
            _put(dynamodb, "extended", {"N": str(NOW + 3600)})
            return page

    assert expire_items(ExtendAfterScan(), TABLE, now=NOW) == 0
    assert _ids(dynamodb) == {"extended"}


def test_nothing_expires_while_the_tables_ttl_is_off(dynamodb: Any) -> None:
    dynamodb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": False, "AttributeName": jobs_table.TTL_ATTRIBUTE}
    )
    _put(dynamodb, "expired", {"N": str(NOW - 1)})
    assert expire_items(dynamodb, TABLE, now=NOW) == 0
    assert _ids(dynamodb) == {"expired"}


def test_the_sweeper_sweeps_at_most_once_per_interval(dynamodb: Any) -> None:
    sweeper = TtlSweeper(dynamodb, TABLE, interval_s=0.2)
    _put(dynamodb, "expired", {"N": str(int(time.time()) - 1)})
    assert sweeper.tick() == 0  # not due yet
    time.sleep(0.25)
    assert sweeper.tick() == 1
    _put(dynamodb, "expired-too", {"N": str(int(time.time()) - 1)})
    assert sweeper.tick() == 0 and _ids(dynamodb) == {"expired-too"}
