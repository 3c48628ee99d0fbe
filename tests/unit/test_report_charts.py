"""The report's SVG charts: axes a person can read (ticks, wall-clock times, integer counts)."""

from __future__ import annotations

import re

from ccc.report.svg import (
    Segment,
    clock,
    format_value,
    histogram_chart,
    nice_step,
    time_chart,
    time_ticks,
    value_ticks,
    waterfall,
)

from .report_fixtures import T0


def test_value_ticks_use_nice_steps_and_reach_the_top() -> None:
    assert value_ticks(100.0) == [0, 20, 40, 60, 80, 100]
    assert value_ticks(7, integer=True) == [0, 2, 4, 6, 8]
    assert value_ticks(0.6) == [0, 0.2, 0.4, 0.6]


def test_counts_never_get_fractional_ticks() -> None:
    # One job in flight used to share an axis with CPU % and read "1.0 jobs".
    assert value_ticks(1, integer=True) == [0, 1]
    assert value_ticks(0, integer=True) == [0, 1]
    assert all(float(t).is_integer() for t in value_ticks(3, integer=True))
    assert nice_step(3, 5, integer=True) == 1.0


def test_values_print_as_integers_when_they_are_counts() -> None:
    assert format_value(1.0) == "1"
    assert format_value(2.0, integer=True) == "2"
    assert format_value(1234.0) == "1,234"
    assert format_value(3.14159) == "3.14"
    assert format_value(345.67) == "346"


def test_time_ticks_are_wall_clock_multiples_of_a_step() -> None:
    start, end = T0 + 3_500_000_000, T0 + 70 * 10**9  # 12:00:03.5 .. 12:01:10
    ticks = time_ticks(start, end)
    assert [clock(t) for t in ticks] == [
        "12:00:10",
        "12:00:20",
        "12:00:30",
        "12:00:40",
        "12:00:50",
        "12:01:00",
        "12:01:10",
    ]
    assert len(time_ticks(T0, T0 + 3600 * 10**9)) <= 8


def test_time_chart_labels_its_axes_with_times_values_and_one_unit() -> None:
    series = {"visible": [(T0, 0.0), (T0 + 5 * 10**9, 3.0), (T0 + 10 * 10**9, 1.0)]}
    svg = time_chart("Work queue depth", series, "messages", integer=True)
    labels = re.findall(r">([^<>]+)</text>", svg)
    assert {"12:00:00", "12:00:06", "12:00:10"} <= set(labels)  # every 2 s
    assert {"0", "1", "2", "3"} <= set(labels) and "1.0" not in labels
    assert "messages" in labels and "time (UTC)" in labels and "visible" in labels
    assert svg.count("<polyline") == 1


def test_time_chart_without_points_says_so() -> None:
    assert "no data recorded" in time_chart("DLQ", {"dlq": []}, "messages")


def test_histogram_counts_per_bin_and_names_outliers_it_leaves_out() -> None:
    values = [100.0 + i for i in range(20)] + [20_000.0]
    svg = histogram_chart("Parent latency", values, "ms", markers={"p50": 110.0})
    heights = [int(n) for n in re.findall(r"<title>(\d+)</title>", svg)]
    assert sum(heights) == 20  # every value but the outlier is in a bin
    assert "1 above" in svg and "max 20,000" in svg
    assert "p50 110 ms" in svg


def test_a_histogram_of_equal_values_has_a_readable_axis() -> None:
    svg = histogram_chart("Parent latency", [300.0, 300.0], "ms")
    ticks = re.findall(r"text-anchor='middle' [^>]*>([\d,.]+)</text>", svg)
    assert len(set(ticks)) == len(ticks) > 2  # distinct edges around 300, not "300 300 300"
    assert re.findall(r"<title>(\d+)</title>", svg) == ["2"]


def test_waterfall_rows_sit_at_their_start_with_their_duration() -> None:
    svg = waterfall(
        "w", [Segment("client: encrypt + upload", 0, 80, "client"), Segment("SQS queue wait", 80, 900, "queue")]
    )
    assert "client: encrypt + upload" in svg and "900 ms" in svg and "80 ms" in svg
    xs = [float(x) for x in re.findall(r"<rect x='([\d.]+)'", svg)]
    assert xs[0] < xs[1]
    assert "ms since the job started" in svg
    assert "no complete trace" in waterfall("w", [])
