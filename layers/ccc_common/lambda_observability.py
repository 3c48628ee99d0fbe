"""Logger, metrics and tracer for every Lambda, built one way, with payload redaction built in.

Why one factory: every function must log JSON with the job id as correlation id, emit metrics in
one namespace (``ccc_core.telemetry.metric_registry.NAMESPACE``) under the names and the one
dimension (``Stage``) the registry gives it, and never write payloads to logs. Doing that in one
place means a new handler cannot forget the redaction. The formatter passes every record through
the project's one redaction rule (``ccc_core.redaction.redact``, in mask mode): fields whose key
names content or a secret are replaced at any depth, and any ``bytes`` value whatever its key;
metadata (ids, sizes, timings, keys of S3 objects) passes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from ccc_core.identity import JobRef
from ccc_core.redaction import redact
from ccc_core.telemetry import metric_registry


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
    emitter: metric_registry.Emitter | None  # None: not one of the deployed functions (may not count)

    def bind_stage(self, stage: str) -> None:
        """Every metric from now on (all invocations) carries ``Stage=<stage>``; call at cold start."""
        self.metrics.set_default_dimensions(**{metric_registry.STAGE_DIMENSION: stage})

    def count(self, name: str, value: float = 1) -> None:
        """Add a registered metric this function may emit (ValueError otherwise: the dashboard
        and alarms only see names in ``ccc_core.telemetry.metric_registry``)."""
        spec = metric_registry.spec(name)
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
    emitter = metric_registry.Emitter(function) if function in set(metric_registry.Emitter) else None
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or f"ccc-{function.replace('_', '-')}"
    ns = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or metric_registry.NAMESPACE
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
