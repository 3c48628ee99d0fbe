"""moto's SQS without its per-message cost that grows with the queue's backlog (same semantics).

Why: in a 1,000-job run of the local stack the work queue holds hundreds of messages (the client
submits faster than one enclave counts), and moto 5.2.5 then spends most of its CPU in SQS
bookkeeping that is linear in that backlog, for every message it delivers:

* ``SQSBackend.receive_message`` checks each delivered message against the queue's retention period
  by calling ``get_queue_attributes(queue, ["MessageRetentionPeriod"])``, which builds the queue's
  *whole* attribute map three times over, and each build counts the visible, in-flight and delayed
  messages by scanning every message of the queue (py-spy, 800 queued: 45 % of moto's samples);
* ``GetQueueAttributes`` (the stack sampler's queue gauges, the scaler's backlog) builds that map
  once per requested name, plus once;
* every visibility check (``Message.visible`` / ``delayed``, evaluated per message in each scan)
  builds two ``datetime`` objects to read the clock.

Measured with a fixed per-job request mix straight against moto (a backlog of 800 jobs, then
processed one by one): moto CPU per job 81 ms at the start of the backlog, 45 ms once it was
drained; the same mix with an empty queue: 45-49 ms flat. The patches below read the retention
period from the queue itself, build the attribute map once per request, and read the clock with
``time.time()`` (the same UTC epoch milliseconds moto's ``unix_time_millis`` computes). What moto
answers does not change: retention, visibility, delays and attributes are evaluated as before
(tests/integration/test_local_moto_sqs.py).
"""

from __future__ import annotations

import time
from typing import Any

from moto.sqs import models
from moto.sqs.exceptions import InvalidAttributeName

_PATCHED = "_ccc_backlog_constant"


def _now_ms() -> float:
    return time.time() * 1000.0


def _visible(self: models.Message) -> bool:
    return bool(_now_ms() > self.visible_at)


def _delayed(self: models.Message) -> bool:
    return bool(_now_ms() < self.delayed_until)


def _had_receipt_handle(self: models.Message, receipt_handle: str) -> bool:
    # moto builds a new list of every handle the message ever had, per message, per call.
    return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles


def _is_message_valid_based_on_retention_period(
    self: models.SQSBackend, queue_name: str, message: models.Message
) -> bool:
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000  # type: ignore[attr-defined,operator]
    return bool(retain_until > time.time())


def _get_queue_attributes(self: models.SQSBackend, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
    queue = self.get_queue(queue_name)
    if not attribute_names:
        return {}
    valid_names = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
    invalid_name = next((name for name in attribute_names if name not in valid_names), None)
    if invalid_name or invalid_name == "":
        raise InvalidAttributeName(invalid_name)
    current = queue.attributes  # built once (moto builds it up to three times per requested name)
    if "All" in attribute_names:
        return current
    return {name: current[name] for name in attribute_names if current.get(name) is not None}


def make_sqs_backlog_constant() -> None:
    """Patch moto's SQS (in this process) once; idempotent."""
    if getattr(models.SQSBackend, _PATCHED, False):
        return
    models.Message.visible = property(_visible)  # type: ignore[method-assign,assignment]
    models.Message.delayed = property(_delayed)  # type: ignore[method-assign,assignment]
    models.Message.had_receipt_handle = _had_receipt_handle  # type: ignore[method-assign]
    models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        _is_message_valid_based_on_retention_period
    )
    models.SQSBackend.get_queue_attributes = _get_queue_attributes  # type: ignore[method-assign]
    setattr(models.SQSBackend, _PATCHED, True)
