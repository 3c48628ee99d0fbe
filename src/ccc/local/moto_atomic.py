"""Conditional writes in moto made atomic, as they are on AWS.

Why: DynamoDB applies a ``ConditionExpression`` and its write atomically, and S3 does the same for
``If-None-Match``/``If-Match`` on PutObject; the job lease (``ccc_common.aws.job_leases``) and the
exactly-once result write (``ccc_common.contracts.result_objects``) rely on that. moto 5.2.5
evaluates the condition and then writes, with no lock between the two, and its server handles
requests on threads, so two concurrent conditional writes can both succeed: in the duplicate
storm of ``tests/unit/test_parent_agent.py`` two workers both won the lease of one job in 5 of 6
runs without this module, and in none with it. The local stack and the tests would show double
runs that AWS never would. This module serialises exactly the moto
entry points that evaluate such conditions, under one lock; everything else stays concurrent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.s3.responses import S3Response

_LOCK = threading.RLock()
_PATCHED = "_ccc_atomic_conditions"
_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return call


def _serialised_if_conditional(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        headers = self.headers or {}
        if headers.get("If-None-Match") is None and headers.get("If-Match") is None:
            return method(self, *args, **kwargs)
        with _LOCK:
            return method(self, *args, **kwargs)

    return call


def make_conditional_writes_atomic() -> None:
    """Patch moto (in this process) once; idempotent."""
    if getattr(DynamoDBBackend, _PATCHED, False):
        return
    for name in _DYNAMODB_WRITES:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    S3Response.put_object = _serialised_if_conditional(S3Response.put_object)  # type: ignore[method-assign]
    setattr(DynamoDBBackend, _PATCHED, True)
