"""Logger, metrics and tracer for every Lambda, built one way, with payload redaction built in.

Why one factory: every function must log JSON with the job id as correlation id, emit metrics in
one namespace (``naming.METRICS_NAMESPACE``) under the names and the one dimension (``Stage``) of
``ccc_common.domain.cloudwatch_metrics``, and never write payloads to logs. Doing that in one
place means a new handler cannot forget the redaction. The formatter redacts by *key name*
(``body``, ``plaintext``, ``image``, ``result``, ``ciphertext``, ...) at any depth, and any
``bytes`` value, whatever its key: metadata (ids, sizes, timings, keys of S3 objects) passes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from ccc_common.domain import cloudwatch_metrics as metric_names
from ccc_common.domain.naming import METRICS_NAMESPACE
from ccc_core.identity import JobRef

REDACTED = "<redacted>"
# Compared after lower-casing and mapping '-' to '_'. Exact names only: "result_key" is metadata.
PAYLOAD_KEYS = frozenset(
    {
        "body",
        "plaintext",
        "image",
        "image_bytes",
        "result",
        "ciphertext",
        "ciphertext_blob",
        "ciphertextblob",
        "ciphertext_for_recipient",
        "payload",
        "data",
        "content",
        "password",
        "secret",
        "secret_access_key",
        "session_token",
        "token",
        "authorization",
        "credentials",
        "private_key",
    }
)
_MAX_DEPTH = 12


def _is_payload_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in PAYLOAD_KEYS


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with payload-named fields and all raw bytes replaced."""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{REDACTED} {len(bytes(value))} bytes"
    if _depth >= _MAX_DEPTH:
        return REDACTED if isinstance(value, Mapping | list | tuple) else value
    if isinstance(value, Mapping):
        return {key: REDACTED if _is_payload_key(key) else redact(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, _depth + 1) for item in value]
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools JSON formatter that redacts just before serialisation (keys, extras, dict messages)."""

    def serialize(self, log: Mapping[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(log=redact(dict(log)))


@dataclass(frozen=True)
class Telemetry:
    logger: Logger
    metrics: Metrics
    tracer: Tracer
    service: str
    emitter: metric_names.Emitter | None  # None: not one of the deployed functions (may not count)

    def bind_stage(self, stage: str) -> None:
        """Every metric from now on (all invocations) carries ``Stage=<stage>``; call at cold start."""
        self.metrics.set_default_dimensions(**{metric_names.STAGE_DIMENSION: stage})

    def count(self, name: str, value: float = 1) -> None:
        """Add a registered metric this function may emit (ValueError otherwise: the dashboard
        and alarms only see names in ``ccc_common.domain.cloudwatch_metrics``)."""
        spec = metric_names.spec(name)
        if self.emitter is None or self.emitter not in spec.emitters:
            raise ValueError(f"{self.service} is not a registered emitter of {name}")
        self.metrics.add_metric(name=name, unit=spec.unit.value, value=value)


def telemetry_for(function: str, *, namespace: str | None = None) -> Telemetry:
    """Logger/Metrics/Tracer for one function. Service name: POWERTOOLS_SERVICE_NAME, else
    ``ccc-<function>``; namespace: POWERTOOLS_METRICS_NAMESPACE, else the project namespace.

    Metrics carry no ``service`` dimension (Powertools adds one whenever a service name is set):
    CloudWatch matches dimension sets exactly, and the dashboard reads ``{Stage}`` only, the set the
    parent agent publishes too. The function is still in every log line (``service``).
    """
    emitter = metric_names.Emitter(function) if function in set(metric_names.Emitter) else None
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or f"ccc-{function.replace('_', '-')}"
    ns = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or METRICS_NAMESPACE
    logger = Logger(service=service, logger_formatter=RedactingFormatter(), utc=True)
    metrics = Metrics(namespace=ns)
    metrics.service = None  # Powertools would read POWERTOOLS_SERVICE_NAME and add the dimension
    tracer = Tracer(service=service)
    return Telemetry(logger=logger, metrics=metrics, tracer=tracer, service=service, emitter=emitter)


@contextmanager
def job_context(logger: Logger, ref: JobRef, tracer: Tracer | None = None) -> Iterator[None]:
    """Correlation id = job id for everything logged inside; tenant and job id as keys/annotations."""
    previous = logger.get_correlation_id()
    logger.set_correlation_id(ref.job_id)
    logger.append_keys(job_id=ref.job_id, tenant=ref.tenant)
    if tracer is not None:
        tracer.put_annotation(key="job_id", value=ref.job_id)
        tracer.put_annotation(key="tenant", value=ref.tenant)
    try:
        yield
    finally:
        logger.remove_keys(["job_id", "tenant"])
        logger.set_correlation_id(previous)
