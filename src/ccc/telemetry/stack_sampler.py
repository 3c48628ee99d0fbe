"""Queue depth and fleet size of the local stack as OTel gauges, sampled at every metric export.

Why: `ccc report` plots queue depth and fleet size over time, and on AWS those series come from
SQS and Auto Scaling's own CloudWatch metrics, which moto does not produce. Locally the sampler
reads the same sources the scaler reads (the work queue's and DLQ's approximate counts) and the
fleet supervisor's `fleet.json` (desired capacity it follows, workers serving), and records them
under the names the report uses. Metadata only: counts of messages and workers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from ccc_core.telemetry import metric_registry as registry

log = logging.getLogger("ccc.telemetry.stack_sampler")
_QUEUE_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


class StackSampler:
    def __init__(self, meter: metrics.Meter, *, sqs: Any, queue_url: str, dlq_url: str | None = None,
                 fleet_file: Path | None = None, autoscaling: Any = None, fleet_group: str | None = None) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._dlq_url = dlq_url
        self._fleet_file = fleet_file
        self._autoscaling = autoscaling
        self._fleet_group = fleet_group
        self._queue: tuple[int, int] | None = None
        self._queue_at = -1e18
        self.samples = 0
        for name, callback in ((registry.METRIC_QUEUE_VISIBLE, self._visible),
                               (registry.METRIC_QUEUE_IN_FLIGHT, self._in_flight),
                               (registry.METRIC_DLQ_VISIBLE, self._dlq),
                               (registry.METRIC_FLEET_DESIRED, self._desired),
                               (registry.METRIC_FLEET_RUNNING, self._running)):
            spec = registry.otel(name)
            meter.create_observable_gauge(name, [callback], unit=spec.unit.otel, description=spec.description)

    def _counts(self, url: str) -> tuple[int, int] | None:
        try:
            attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_QUEUE_ATTRIBUTES)["Attributes"]
            return int(attrs.get(_QUEUE_ATTRIBUTES[0], 0)), int(attrs.get(_QUEUE_ATTRIBUTES[1], 0))
        except Exception as exc:  # moto stopping: no sample this round
            log.debug("queue attributes unavailable: %s", type(exc).__name__)
            return None

    def _work_queue(self) -> tuple[int, int] | None:
        """One reading shared by the visible and in-flight gauges of the same export round."""
        now = time.monotonic()
        if now - self._queue_at > 0.25:
            self._queue, self._queue_at = self._counts(self._queue_url), now
            self.samples += 1
        return self._queue

    def _visible(self, _options: CallbackOptions) -> Iterable[Observation]:
        counts = self._work_queue()
        return [Observation(counts[0])] if counts else []

    def _in_flight(self, _options: CallbackOptions) -> Iterable[Observation]:
        counts = self._work_queue()
        return [Observation(counts[1])] if counts else []

    def _dlq(self, _options: CallbackOptions) -> Iterable[Observation]:
        counts = self._counts(self._dlq_url) if self._dlq_url else None
        return [Observation(counts[0])] if counts else []

    def _fleet(self) -> dict[str, Any] | None:
        if self._fleet_file is None:
            return None
        try:
            data = json.loads(self._fleet_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _desired(self, _options: CallbackOptions) -> Iterable[Observation]:
        fleet = self._fleet()
        if fleet is not None and isinstance(fleet.get("desired"), int):
            return [Observation(fleet["desired"])]
        if self._autoscaling is not None and self._fleet_group:
            try:
                groups = self._autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self._fleet_group])
                return [Observation(int(groups["AutoScalingGroups"][0]["DesiredCapacity"]))]
            except Exception as exc:
                log.debug("fleet group unavailable: %s", type(exc).__name__)
        return []

    def _running(self, _options: CallbackOptions) -> Iterable[Observation]:
        fleet = self._fleet()
        counts = fleet.get("counts") if fleet else None
        if isinstance(counts, dict) and isinstance(counts.get("serving"), int):
            return [Observation(counts["serving"])]
        return []
