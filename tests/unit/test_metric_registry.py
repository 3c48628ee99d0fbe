"""The metric registry is consistent: one row per metric, unique names in both vocabularies, and
the views derived from it (EMF mapping, DP metrics, dimension attributes) agree with the rows."""

from __future__ import annotations

from collections import Counter

import pytest

from ccc_core.telemetry import metric_registry as registry


def test_each_name_is_defined_once_in_each_vocabulary() -> None:
    cloudwatch = Counter(m.cloudwatch for m in registry.METRICS if m.cloudwatch)
    otel = Counter(m.otel for m in registry.METRICS if m.otel)
    assert max(cloudwatch.values()) == 1 and max(otel.values()) == 1
    assert len(registry.REGISTRY) + len(registry.OTEL) >= len(registry.METRICS)
    assert all(name.startswith("ccc.") for name in registry.OTEL)
    assert all(name[0].isupper() and "." not in name for name in registry.REGISTRY)


def test_emitters_are_cloudwatch_publishers_only() -> None:
    for metric in registry.METRICS:
        assert bool(metric.emitters) == (metric.cloudwatch is not None), metric.name
    with pytest.raises(ValueError):
        registry.MetricSpec("ccc.x", None, registry.Unit.COUNT, "x", frozenset({registry.Emitter.PARENT}))
    with pytest.raises(ValueError):
        registry.MetricSpec(None, None, registry.Unit.COUNT, "x")


def test_derived_views_follow_the_rows() -> None:
    mapping = registry.otel_to_cloudwatch(registry.Emitter.PARENT)
    assert set(mapping.values()) == registry.emitted_by(registry.Emitter.PARENT)
    assert registry.otel_to_cloudwatch(registry.Emitter.SCALER) == {}  # the Lambdas publish CloudWatch names
    # No metric is per tenant (the differentially private per-tenant releases are gone: a host
    # could replay jobs into them); every metric carries exactly {Stage}.
    assert all(m.dimensions == (registry.STAGE_DIMENSION,) for m in registry.METRICS)
    assert registry.DIMENSION_ATTRIBUTES == {}
    assert not any(m.otel and m.otel.startswith("ccc.dp.") for m in registry.METRICS)
    assert all(m.dimensions[0] == registry.STAGE_DIMENSION for m in registry.METRICS)


def test_lookups_name_the_unknown_metric() -> None:
    with pytest.raises(KeyError, match="NotAMetric"):
        registry.spec("NotAMetric")
    with pytest.raises(KeyError, match="ccc.not.a.metric"):
        registry.otel("ccc.not.a.metric")
    assert registry.otel(registry.METRIC_JOB_LATENCY_MS).unit.otel == "ms"
