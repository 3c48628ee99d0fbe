"""Keeps an SQS message invisible while its job runs (a job may outlast the visibility timeout).

Why: if the visibility timeout expired mid-job, a second worker would receive the same message
and run the job again (harmless thanks to idempotency, but wasteful), and the receive count would
creep towards the DLQ. Extending every `timeout/3` keeps the message ours until we delete it or
hand it back. A failed extension is logged and retried at the next tick, never fatal: the result
write is idempotent.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ccc_core.logs import log_event

_LOG = logging.getLogger("ccc.parent.heartbeat")


class VisibilityHeartbeat:
    def __init__(self, sqs: Any, queue_url: str, receipt_handle: str, *, visibility_timeout_s: int,
                 interval_s: float | None = None, message_id: str | None = None) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._receipt = receipt_handle
        self._timeout = visibility_timeout_s
        self._interval = interval_s if interval_s is not None else max(1.0, visibility_timeout_s / 3)
        self._message_id = message_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-heartbeat", daemon=True)
        self.extensions = 0

    def __enter__(self) -> VisibilityHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=self._receipt, VisibilityTimeout=self._timeout
                )
                self.extensions += 1
            except Exception as exc:  # message deleted meanwhile, throttling, network: try again next tick
                log_event(_LOG, logging.WARNING, "visibility extension failed", message_id=self._message_id,
                          error_type=type(exc).__name__)
