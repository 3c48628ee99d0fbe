"""The jobs table schema: key, tenant index and TTL attribute, defined once.

Why a contract: the table is created by CDK (deployed), by the local stack (moto) and by the tests,
and queried by the DynamoDB adapter (``ccc_common.aws.jobs_dal``); if any of them spelled the key,
the index or an attribute type differently, listings would silently come back empty. All of them
build from ``create_table_request`` and the names below.

Layout:
  * partition key ``job_id`` (S, 32 hex); TTL attribute ``ttl`` (N, epoch seconds)
  * GSI ``by-tenant``: partition ``tenant`` (S), sort ``created_at`` (S, ISO-8601 UTC), projection ALL
Items also carry ``status`` (S) and ``status_rank`` (N), ``updated_at`` (S), ``attempts`` (N) and,
when known, ``result_key`` and ``error`` (S). The attestation's key depends on the result's digest
(``ccc_common.contracts.result_objects``), so it is read from the result object, not stored here.
While a worker runs the job, ``lease_owner`` (S) and ``lease_until`` (N, epoch ms) hold its lease;
``last_error`` (S) is the error code of its last retried attempt.
"""

from __future__ import annotations

from typing import Any

PARTITION_KEY = "job_id"
TENANT_INDEX = "by-tenant"
TENANT_INDEX_PARTITION_KEY = "tenant"
TENANT_INDEX_SORT_KEY = "created_at"
TTL_ATTRIBUTE = "ttl"
# The job lease (``ccc_common.domain.job_leases``): who is running the job and until when (N, epoch ms).
LEASE_OWNER = "lease_owner"
LEASE_UNTIL = "lease_until"
# The error code of the job's last attempt that will be retried (S), for the dead-letter reason.
LAST_ERROR = "last_error"


def create_table_request(table_name: str) -> dict[str, Any]:
    """The DynamoDB CreateTable request for the jobs table: the one definition of its schema.

    The local stack and the tests create the table from this; the CDK table is asserted against it,
    so the key, the tenant index and the attribute types cannot drift from what the adapter queries.
    """
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": TENANT_INDEX_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": TENANT_INDEX_SORT_KEY, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": TENANT_INDEX,
                "KeySchema": [
                    {"AttributeName": TENANT_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": TENANT_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def time_to_live_request(table_name: str) -> dict[str, Any]:
    """The UpdateTimeToLive request that makes DynamoDB expire items by ``TTL_ATTRIBUTE``."""
    return {"TableName": table_name, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTRIBUTE}}
