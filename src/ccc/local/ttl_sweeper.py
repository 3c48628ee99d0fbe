"""DynamoDB Time to Live on the local tier: moto stores a table's TTL setting and never deletes.

On AWS, once a table's TTL is on, an item whose TTL attribute (epoch seconds) lies in the past is
deleted by DynamoDB, in the background, typically within a few days; until then it can still be
read. moto 5.2.5 keeps such items for ever, so a local job record would outlive the retention the
jobs table promises (``ccc_common.contracts.jobs_table``, ``ttl_for``). The supervisor therefore
sweeps the jobs table every ``SWEEP_INTERVAL_S`` with ``expire_items``: a Scan for items whose
TTL attribute is past, then a conditional DeleteItem each (the condition re-checks the TTL, so an
item whose TTL was extended since the Scan stays, as on AWS). Items without the attribute, or with
a non-number in it, never expire, as on AWS.

A sweep reads the whole table (moto's Scan is linear in the items), which is why it runs once a
minute and not per request: ~1,000 jobs cost moto a few ms per sweep.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ccc_core.aws_errors import client_error_code

log = logging.getLogger("ccc.local.ttl")

SWEEP_INTERVAL_S = 60.0
# A number in the past; a missing attribute or one of another type never expires (as on AWS).
_EXPIRED = "attribute_type(#ttl, :number) AND #ttl < :now"


def ttl_attribute(dynamodb: Any, table: str) -> str | None:
    """The table's TTL attribute if its TTL is on (the setting provisioning made from the contract)."""
    description = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if description.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        return None
    name = description.get("AttributeName")
    return str(name) if name else None


def expire_items(dynamodb: Any, table: str, *, now: float | None = None) -> int:
    """Delete the items whose TTL has passed at ``now`` (epoch seconds); returns how many went."""
    attribute = ttl_attribute(dynamodb, table)
    if attribute is None:
        return 0
    at = int(time.time() if now is None else now)
    names = {"#ttl": attribute}
    values = {":now": {"N": str(at)}, ":number": {"S": "N"}}
    key_names = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
    deleted = 0
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": _EXPIRED,
        "ExpressionAttributeNames": {**names, **{f"#k{i}": name for i, name in enumerate(key_names)}},
        "ExpressionAttributeValues": values,
        "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(key_names))),
    }
    while True:
        page = dynamodb.scan(**request)
        for item in page.get("Items", []):
            try:
                dynamodb.delete_item(
                    TableName=table,
                    Key={name: item[name] for name in key_names},
                    ConditionExpression=_EXPIRED,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except Exception as exc:
                if client_error_code(exc) != "ConditionalCheckFailedException":
                    raise
                continue  # extended since the scan
            deleted += 1
        last = page.get("LastEvaluatedKey")
        if not last:
            return deleted
        request["ExclusiveStartKey"] = last


class TtlSweeper:
    """Runs ``expire_items`` at most once per interval, from the supervisor's monitoring loop."""

    def __init__(self, dynamodb: Any, table: str, *, interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._interval_s = interval_s
        self._next = time.monotonic() + interval_s

    def tick(self) -> int:
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + self._interval_s
        try:
            deleted = expire_items(self._dynamodb, self._table)
        except Exception as exc:  # moto busy or stopping: the next sweep tries again
            log.warning("TTL sweep of %s failed: %s", self._table, client_error_code(exc) or type(exc).__name__)
            return 0
        if deleted:
            log.info("TTL: %d expired item(s) deleted from %s", deleted, self._table)
        return deleted
