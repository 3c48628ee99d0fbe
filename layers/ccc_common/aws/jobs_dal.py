"""The DynamoDB adapter of the job store port (``ccc_common.domain.job_store.JobStore``).

It implements ``jobs.apply_event`` as one conditional UpdateItem: the write only happens if the item
does not exist or its ``status_rank`` is lower than the event's (and the tenant matches). Concurrent
writers therefore cannot move a job backwards even without any locking, and a duplicate delivery is
a cheap ConditionalCheckFailed. The table layout is ``ccc_common.contracts.jobs_table``; the index and
TTL attribute names are constructor arguments, set from the function's environment by ``for_env``.
"""

from __future__ import annotations

from typing import Any

from ccc_common.contracts.jobs_table import LEASE_UNTIL, TENANT_INDEX, TTL_ATTRIBUTE
from ccc_common.contracts.lambda_env import JobsTableEnv
from ccc_common.domain.job_store import (
    JobAlreadyExists,
    JobPage,
    JobStore,
    JobStoreError,
    check_limit,
    decode_cursor,
    encode_cursor,
)
from ccc_common.domain.jobs import (
    Job,
    JobEvent,
    JobStatus,
    TenantMismatch,
    Transition,
    format_timestamp,
    parse_timestamp,
    ttl_for,
)
from ccc_core.aws_errors import client_error_code
from ccc_core.identity import validate_job_id, validate_tenant


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def job_to_item(job: Job, ttl_attribute: str = TTL_ATTRIBUTE) -> dict[str, dict[str, str]]:
    item = {
        "job_id": _s(job.job_id),
        "tenant": _s(job.tenant),
        "status": _s(job.status.value),
        "status_rank": _n(job.status.rank),
        "created_at": _s(format_timestamp(job.created_at)),
        "updated_at": _s(format_timestamp(job.updated_at)),
        "attempts": _n(job.attempts),
        ttl_attribute: _n(job.ttl),
    }
    for name in ("result_key", "error", "last_error"):
        value = getattr(job, name)
        if value is not None:
            item[name] = _s(value)
    return item


def item_to_job(item: dict[str, Any], ttl_attribute: str = TTL_ATTRIBUTE) -> Job:
    """Strict: an item that does not describe a valid job is an error, not a guess."""
    try:

        def text(name: str) -> str | None:
            cell = item.get(name)
            return None if cell is None else str(cell["S"])

        def number(name: str, default: int) -> int:
            cell = item.get(name)
            return default if cell is None else int(cell["N"])

        created = parse_timestamp(text("created_at") or "")
        updated_text = text("updated_at")
        return Job(
            job_id=text("job_id") or "",
            tenant=text("tenant") or "",
            status=JobStatus(text("status") or ""),
            created_at=created,
            updated_at=parse_timestamp(updated_text) if updated_text else created,
            attempts=number("attempts", 0),
            result_key=text("result_key"),
            error=text("error"),
            last_error=text("last_error"),
            ttl=number(ttl_attribute, 0),
            lease_until_ms=number(LEASE_UNTIL, 0) or None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JobStoreError(f"stored job item is malformed: {exc}") from exc


_JOB_ATTRIBUTES = frozenset(
    {
        "job_id",
        "tenant",
        "status",
        "status_rank",
        "created_at",
        "updated_at",
        "attempts",
        "result_key",
        "error",
        "last_error",
    }
)


class DynamoJobStore(JobStore):
    """Adapter over a boto3 DynamoDB *client* (injected; no boto3 import here)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        ttl_days: int,
        index_name: str = TENANT_INDEX,
        ttl_attribute: str = TTL_ATTRIBUTE,
    ) -> None:
        self._client = client
        self._table = table_name
        self._ttl_days = ttl_days
        self._index = index_name
        if ttl_attribute in _JOB_ATTRIBUTES:
            raise ValueError(f"TTL attribute {ttl_attribute!r} collides with a job attribute")
        self._ttl_attribute = ttl_attribute

    @classmethod
    def for_env(cls, client: Any, env: JobsTableEnv) -> DynamoJobStore:
        """The store a Lambda's validated environment describes (table, index and TTL names, stage TTL)."""
        return cls(
            client,
            env.jobs_table,
            env.settings.job_ttl_days,
            index_name=env.jobs_tenant_index,
            ttl_attribute=env.jobs_ttl_attribute,
        )

    def create(self, job: Job) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=job_to_item(job, self._ttl_attribute),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except Exception as exc:
            if client_error_code(exc) == "ConditionalCheckFailedException":
                raise JobAlreadyExists(f"job {job.job_id} already exists") from exc
            raise

    def get(self, job_id: str) -> Job | None:
        validate_job_id(job_id)
        response = self._client.get_item(TableName=self._table, Key={"job_id": _s(job_id)}, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else item_to_job(item, self._ttl_attribute)

    def apply(self, event: JobEvent) -> Transition:
        at = format_timestamp(event.at)
        names = {"#status": "status", "#ttl": self._ttl_attribute}
        values: dict[str, dict[str, str]] = {
            ":status": _s(event.status.value),
            ":rank": _n(event.status.rank),
            ":tenant": _s(event.tenant),
            ":at": _s(at),
            ":ttl": _n(ttl_for(event.at, self._ttl_days)),
        }
        sets = [
            "#status = :status",
            "status_rank = :rank",
            "tenant = if_not_exists(tenant, :tenant)",
            "created_at = if_not_exists(created_at, :at)",
            "#ttl = if_not_exists(#ttl, :ttl)",
        ]
        removes: list[str] = []
        if event.status is JobStatus.DONE:
            ref = event.ref
            sets.append("result_key = :result_key")
            values[":result_key"] = _s(ref.result_key)
            removes.append("#error")
            names["#error"] = "error"
        elif event.status is JobStatus.FAILED:
            sets.append("#error = :error")
            names["#error"] = "error"
            values[":error"] = _s(event.error or "failed (no reason recorded)")
            if event.attempts is not None:
                sets.append("attempts = :attempts")
                values[":attempts"] = _n(event.attempts)
        if event.status is not JobStatus.FAILED or event.attempts is None:
            sets.append("attempts = if_not_exists(attempts, :zero)")
            values[":zero"] = _n(0)
        expression = "SET " + ", ".join([*sets, "updated_at = :at"])
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"job_id": _s(event.job_id)},
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(job_id) OR (status_rank < :rank AND tenant = :tenant)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if client_error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = self.get(event.job_id)
            if current is None:  # deleted (TTL) between the write and the read: nothing to do
                raise JobStoreError(f"job {event.job_id} vanished during a conditional update") from exc
            if current.tenant != event.tenant:
                raise TenantMismatch(
                    f"job {event.job_id} belongs to another tenant; event from tenant {event.tenant!r} refused"
                ) from exc
            return Transition(job=current, applied=False)
        return Transition(job=item_to_job(response["Attributes"], self._ttl_attribute), applied=True)

    def list_for_tenant(self, tenant: str, limit: int = 50, cursor: str | None = None) -> JobPage:
        validate_tenant(tenant)
        check_limit(limit)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": self._index,
            "KeyConditionExpression": "tenant = :tenant",
            "ExpressionAttributeValues": {":tenant": _s(tenant)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            job_id, created = decode_cursor(cursor)
            request["ExclusiveStartKey"] = {"job_id": _s(job_id), "tenant": _s(tenant), "created_at": _s(created)}
        response = self._client.query(**request)
        jobs = [item_to_job(item, self._ttl_attribute) for item in response.get("Items", [])]
        jobs = [job for job in jobs if job.tenant == tenant]  # belt and braces: never another tenant's row
        last = response.get("LastEvaluatedKey")
        next_cursor = encode_cursor(jobs[-1]) if last and jobs else None
        return JobPage(jobs=jobs, next_cursor=next_cursor)
