"""Where jobs are stored: a Port (ABC), the DynamoDB adapter and an in-memory fake.

The DynamoDB adapter implements ``jobs.apply_event`` as one conditional UpdateItem: the write only
happens if the item does not exist or its ``status_rank`` is lower than the event's (and the tenant
matches). Concurrent writers therefore cannot move a job backwards even without any locking, and a
duplicate delivery is a cheap ConditionalCheckFailed.

Table layout (CDK must create exactly this):
  * partition key ``job_id`` (S); TTL attribute ``ttl`` (N, epoch seconds)
  * GSI ``by-tenant``: partition ``tenant`` (S), sort ``created_at`` (S), projection ALL
  (index and TTL attribute names are constructor arguments, set from the environment by ``env``,
  so a stack that names them differently only has to say so.)
Items also carry ``status`` (S) and ``status_rank`` (N), ``updated_at`` (S), ``attempts`` (N) and,
when known, ``result_key``, ``attestation_key``, ``error`` (S).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from ccc_common.domain.jobs import (
    Job,
    JobEvent,
    JobModelError,
    JobStatus,
    TenantMismatch,
    Transition,
    apply_event,
    format_timestamp,
    parse_timestamp,
    ttl_for,
)
from ccc_core.aws_errors import client_error_code
from ccc_core.identity import NamingError, validate_job_id, validate_tenant

TENANT_INDEX = "by-tenant"
TTL_ATTRIBUTE = "ttl"
MAX_PAGE = 100


def create_table_request(table_name: str) -> dict[str, Any]:
    """The DynamoDB CreateTable request for the jobs table: the one definition of its schema.

    The local stack and the tests create the table from this; the CDK table is asserted against it,
    so the key, the tenant index and the attribute types cannot drift from what this adapter queries.
    """
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "tenant", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": TENANT_INDEX,
                "KeySchema": [
                    {"AttributeName": "tenant", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def create_jobs_table(dynamodb: Any, table_name: str) -> str:
    """Create the jobs table (schema above) with TTL on `ttl`; returns its name."""
    dynamodb.create_table(**create_table_request(table_name))
    dynamodb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    return table_name


class JobStoreError(RuntimeError):
    """The store could not complete an operation (not a stale event: those are not errors)."""


class JobAlreadyExists(JobStoreError):
    """A create for a job id that is already recorded (a uuid4 collision or a replayed request)."""


class InvalidCursor(ValueError):
    """A pagination cursor that was not issued for this tenant's listing."""


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


class JobStore(ABC):
    """Port for the jobs table; every writer goes through ``apply`` so the rank rule holds."""

    @abstractmethod
    def create(self, job: Job) -> None:
        """Record a new job; raises JobAlreadyExists if the id is taken."""

    @abstractmethod
    def get(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def apply(self, event: JobEvent) -> Transition:
        """Apply one event with the rank rule; raises TenantMismatch for a foreign tenant."""

    @abstractmethod
    def list_for_tenant(self, tenant: str, limit: int = 50, cursor: str | None = None) -> JobPage:
        """The tenant's jobs, newest first."""


def encode_cursor(job: Job) -> str:
    raw = json.dumps({"j": job.job_id, "c": format_timestamp(job.created_at)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """-> (job_id, created_at text). The tenant is never taken from the cursor: it is the caller's."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 256:
        raise InvalidCursor("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        job_id, created = data["j"], data["c"]
        validate_job_id(job_id)
        parse_timestamp(created)
    except (binascii.Error, ValueError, KeyError, TypeError, NamingError, JobModelError) as exc:
        raise InvalidCursor("invalid cursor") from exc
    return job_id, created


def _check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be an integer between 1 and {MAX_PAGE}")
    return limit


class InMemoryJobStore(JobStore):
    """The fake: same semantics as the DynamoDB adapter, for unit tests and the local stack."""

    def __init__(self, ttl_days: int = 30) -> None:
        self._ttl_days = ttl_days
        self._items: dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self, job: Job) -> None:
        with self._lock:
            if job.job_id in self._items:
                raise JobAlreadyExists(f"job {job.job_id} already exists")
            self._items[job.job_id] = job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._items.get(job_id)

    def apply(self, event: JobEvent) -> Transition:
        with self._lock:
            transition = apply_event(self._items.get(event.job_id), event, self._ttl_days)
            if transition.applied:
                self._items[event.job_id] = transition.job
            return transition

    def list_for_tenant(self, tenant: str, limit: int = 50, cursor: str | None = None) -> JobPage:
        validate_tenant(tenant)
        _check_limit(limit)
        with self._lock:
            mine = [job for job in self._items.values() if job.tenant == tenant]
        mine.sort(key=lambda job: (format_timestamp(job.created_at), job.job_id), reverse=True)
        if cursor is not None:
            job_id, created = decode_cursor(cursor)
            mine = [job for job in mine if (format_timestamp(job.created_at), job.job_id) < (created, job_id)]
        page = mine[:limit]
        next_cursor = encode_cursor(page[-1]) if len(mine) > limit else None
        return JobPage(jobs=page, next_cursor=next_cursor)


# --- DynamoDB -------------------------------------------------------------------------------


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
    for name in ("result_key", "attestation_key", "error"):
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
            attestation_key=text("attestation_key"),
            error=text("error"),
            ttl=number(ttl_attribute, 0),
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
        "attestation_key",
        "error",
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
            sets += ["result_key = :result_key", "attestation_key = :attestation_key"]
            values[":result_key"] = _s(ref.result_key)
            values[":attestation_key"] = _s(ref.attestation_key)
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
        _check_limit(limit)
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
