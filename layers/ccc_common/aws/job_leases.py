"""DynamoDB adapter of the job lease (``ccc_common.domain.job_leases``) on the jobs table.

One conditional UpdateItem claims (the table's item for the job gains ``lease_owner`` and
``lease_until``; DynamoDB applies the condition and the write atomically), one conditional
UpdateItem releases. A claim for a job with no item yet (its queued event not yet applied) creates
a valid ``queued`` item, as the job-events upsert would, so listings never meet a partial item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ccc_common.contracts.jobs_table import LAST_ERROR, LEASE_OWNER, LEASE_UNTIL, PARTITION_KEY, TTL_ATTRIBUTE
from ccc_common.domain.job_leases import JobLeases, Lease, LeaseHeld
from ccc_common.domain.jobs import JobStatus, clip_error_code, format_timestamp, ttl_for
from ccc_core.aws_errors import client_error_code
from ccc_core.identity import JobRef

_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoJobLeases(JobLeases):
    def __init__(self, client: Any, table_name: str, ttl_days: int, ttl_attribute: str = TTL_ATTRIBUTE) -> None:
        self._client = client
        self._table = table_name
        self._ttl_days = ttl_days
        self._ttl_attribute = ttl_attribute

    def claim(self, job: JobRef, owner: str, *, now: datetime, until: datetime) -> Lease | LeaseHeld:
        at = format_timestamp(now)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": job.job_id}},
                UpdateExpression=(
                    "SET #owner = :owner, #until = :until, tenant = if_not_exists(tenant, :tenant), "
                    "#status = if_not_exists(#status, :queued), status_rank = if_not_exists(status_rank, :rank), "
                    "created_at = if_not_exists(created_at, :at), updated_at = if_not_exists(updated_at, :at), "
                    "#ttl = if_not_exists(#ttl, :ttl)"
                ),
                ConditionExpression=(
                    "(attribute_not_exists(tenant) OR tenant = :tenant) AND "
                    "(attribute_not_exists(#until) OR #until <= :now OR #owner = :owner)"
                ),
                ExpressionAttributeNames={"#owner": LEASE_OWNER, "#until": LEASE_UNTIL, "#status": "status",
                                          "#ttl": self._ttl_attribute},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":until": {"N": str(_epoch_ms(until))},
                    ":now": {"N": str(_epoch_ms(now))},
                    ":tenant": {"S": job.tenant},
                    ":queued": {"S": JobStatus.QUEUED.value},
                    ":rank": {"N": str(JobStatus.QUEUED.rank)},
                    ":at": {"S": at},
                    ":ttl": {"N": str(ttl_for(now, self._ttl_days))},
                },
            )
        except Exception as exc:
            if client_error_code(exc) != _CONDITION_FAILED:
                raise
            return LeaseHeld(job=job, until=self._held_until(job, now))
        return Lease(job=job, owner=owner, until=until)

    def release(self, lease: Lease, *, last_error: str | None = None) -> None:
        names = {"#owner": LEASE_OWNER, "#until": LEASE_UNTIL}
        values = {":owner": {"S": lease.owner}}
        update = "REMOVE #owner, #until"
        if last_error is not None:
            update += " SET #last_error = :last_error"
            names["#last_error"] = LAST_ERROR
            values[":last_error"] = {"S": clip_error_code(last_error)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": lease.job.job_id}},
                UpdateExpression=update,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if client_error_code(exc) != _CONDITION_FAILED:  # someone claimed it after it expired: theirs now
                raise

    def _held_until(self, job: JobRef, now: datetime) -> datetime:
        """When the refusing lease ends (a claim refused for another tenant's item never ends)."""
        item = self._client.get_item(TableName=self._table, Key={PARTITION_KEY: {"S": job.job_id}},
                                     ConsistentRead=True).get("Item") or {}
        cell = item.get(LEASE_UNTIL)
        if cell is None:
            return now
        return datetime.fromtimestamp(int(cell["N"]) / 1000, tz=now.tzinfo)


def _epoch_ms(moment: datetime) -> int:
    """Milliseconds: whole seconds would cut up to a second off a lease (both ends truncated)."""
    return int(moment.timestamp() * 1000)
