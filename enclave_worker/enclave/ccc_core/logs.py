"""Metadata-only structured logs for the parent agent and the enclave server.

Why a helper instead of plain `logger.info(f"...")`: both processes handle ciphertext,
credentials and (inside the enclave) plaintext. Every log field passes the project's one redaction
rule (`ccc_core.redaction.redact`, in refuse mode like telemetry attributes: scalars only, no bytes,
no payload- or secret-named keys), so a careless field fails loudly in tests instead of leaking.
Output is one JSON object per line on stderr, which the local stack collects per process and
CloudWatch ingests on AWS.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from ccc_core.redaction import OnUnsafe, redact

_FIELDS_ATTR = "ccc_fields"


class JsonLineFormatter(logging.Formatter):
    """`{"ts", "level", "service", "event", ...fields}`; exceptions as their type name only."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "service": self.service,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, _FIELDS_ATTR, {}))
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages can quote data (e.g. a decoder echoing input).
            entry["exception_type"] = record.exc_info[0].__name__
        return json.dumps(entry, separators=(",", ":"), default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route the root logger to stderr as JSON lines (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ccc_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter(service))
    handler._ccc_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries log request details (URLs with signatures, bodies at DEBUG): keep them quiet.
    for noisy in ("botocore", "boto3", "urllib3", "aws_encryption_sdk"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_event(logger: logging.Logger, level: int, event: str, *, exc_info: bool = False, **fields: object) -> None:
    """Log `event` with metadata fields, each checked by the redaction rule (refused, not masked)."""
    clean = redact({k: v for k, v in fields.items() if v is not None}, on_unsafe=OnUnsafe.REFUSE)
    logger.log(level, event, extra={_FIELDS_ATTR: clean}, exc_info=exc_info)


def elapsed_ms(start: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading, rounded for logs and metrics."""
    return round((time.perf_counter() - start) * 1000, 3)
