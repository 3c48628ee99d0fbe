"""The local stack's queue and fleet gauges: what `ccc report` plots as queue depth and fleet size."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ccc.telemetry.stack_sampler import StackSampler
from ccc_core.telemetry import metric_registry as registry

QUEUE, DLQ = "http://moto/q", "http://moto/dlq"


class FakeSqs:
    def __init__(self) -> None:
        self.counts = {QUEUE: (3, 2), DLQ: (1, 0)}
        self.calls = 0
        self.down = False

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        if self.down:
            raise ConnectionError("moto stopped")
        visible, hidden = self.counts[QueueUrl]
        return {"Attributes": {"ApproximateNumberOfMessages": str(visible),
                               "ApproximateNumberOfMessagesNotVisible": str(hidden)}}


class FakeAutoscaling:
    def describe_auto_scaling_groups(self, AutoScalingGroupNames: list[str]) -> dict[str, Any]:  # noqa: N803
        return {"AutoScalingGroups": [{"DesiredCapacity": 4}]}


def _values(reader: InMemoryMetricReader) -> dict[str, float]:
    data = reader.get_metrics_data()
    found = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    found[metric.name] = point.value
    return found


def test_queue_and_fleet_gauges_follow_sqs_and_the_fleet_file(tmp_path) -> None:
    reader = InMemoryMetricReader()
    sqs = FakeSqs()
    fleet = tmp_path / "fleet.json"
    fleet.write_text(json.dumps({"desired": 2, "counts": {"starting": 1, "serving": 1, "draining": 0}}))
    StackSampler(MeterProvider(metric_readers=[reader]).get_meter("t"), sqs=sqs, queue_url=QUEUE, dlq_url=DLQ,
                 fleet_file=fleet)
    values = _values(reader)
    assert values == {registry.METRIC_QUEUE_VISIBLE: 3, registry.METRIC_QUEUE_IN_FLIGHT: 2,
                      registry.METRIC_DLQ_VISIBLE: 1, registry.METRIC_FLEET_DESIRED: 2,
                      registry.METRIC_FLEET_RUNNING: 1}
    assert sqs.calls == 2  # one reading of the work queue shared by both gauges, one of the DLQ


def test_without_a_fleet_file_desired_comes_from_the_group_and_a_dead_moto_skips_samples(tmp_path) -> None:
    reader = InMemoryMetricReader()
    sqs = FakeSqs()
    sqs.down = True
    StackSampler(MeterProvider(metric_readers=[reader]).get_meter("t"), sqs=sqs, queue_url=QUEUE,
                 fleet_file=tmp_path / "missing.json", autoscaling=FakeAutoscaling(), fleet_group="g")
    values = _values(reader)
    assert values == {registry.METRIC_FLEET_DESIRED: 4}
