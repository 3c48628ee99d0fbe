"""The DP mechanism `ccc stats` uses: unbiased, calibrated noise, clipping, a budget that refuses when spent."""

from __future__ import annotations

import math
import random
import statistics
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccc.stats.mechanism import (
    BudgetExhausted,
    InMemoryBudgetLedger,
    PrivacyError,
    PrivacyPolicy,
    PrivateAggregator,
    clipped_sum,
    laplace_noise,
)

DAY = date(2026, 11, 24)


class SeededRng(random.Random):
    """Deterministic stand-in for SystemRandom so the statistical tests are reproducible."""


def test_laplace_noise_is_unbiased_with_the_calibrated_scale():
    rng = SeededRng(1234)
    scale = 4.0
    draws = [laplace_noise(scale, rng) for _ in range(40_000)]  # type: ignore[arg-type]
    # Laplace(0, b): mean 0, variance 2 b^2, mean |x| = b.
    standard_error = math.sqrt(2 * scale**2 / len(draws))
    assert abs(statistics.fmean(draws)) < 4 * standard_error
    assert statistics.fmean(abs(d) for d in draws) == pytest.approx(scale, rel=0.03)
    assert statistics.pvariance(draws) == pytest.approx(2 * scale**2, rel=0.06)


def test_release_is_unbiased_around_the_clipped_sum():
    policy = PrivacyPolicy(daily_budget=10_000.0, epsilon_per_release=0.5, clip_cats_per_image=6.0)
    aggregator = PrivateAggregator(InMemoryBudgetLedger(), policy, rng=SeededRng(7))  # type: ignore[arg-type]
    cats = [0, 1, 3, 20]  # 20 is clipped to 6
    values = [aggregator.cats_per_day("tenant-a", DAY, cats).value for _ in range(5_000)]
    scale = 6.0 / 0.5
    assert statistics.fmean(values) == pytest.approx(10.0, abs=4 * math.sqrt(2) * scale / math.sqrt(5_000))
    assert statistics.fmean(abs(v - 10.0) for v in values) == pytest.approx(scale, rel=0.05)


def test_budget_refuses_when_spent_and_is_per_tenant_and_per_day():
    ledger = InMemoryBudgetLedger()
    aggregator = PrivateAggregator(ledger, PrivacyPolicy(daily_budget=1.0, epsilon_per_release=0.25))
    for _ in range(4):
        aggregator.images_per_day("tenant-a", DAY, 3)
    with pytest.raises(BudgetExhausted):
        aggregator.images_per_day("tenant-a", DAY, 3)
    assert ledger.spent("tenant-a", DAY) == pytest.approx(1.0)
    aggregator.images_per_day("tenant-b", DAY, 3)
    aggregator.images_per_day("tenant-a", date(2026, 11, 25), 3)


def test_release_never_exposes_the_exact_value():
    aggregator = PrivateAggregator(InMemoryBudgetLedger(), PrivacyPolicy(daily_budget=100.0))
    release = aggregator.cats_per_day("tenant-a", DAY, [2, 2, 2])
    assert set(vars(release)) == {"tenant", "day", "metric", "value", "epsilon", "scale"}
    assert release.scale == pytest.approx(6.0 / 0.25)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), max_size=50), st.floats(min_value=0.1, max_value=100))
def test_clipped_sum_is_bounded_by_count_times_clip(values, clip):
    total = clipped_sum(values, clip)
    assert 0.0 <= total <= len(values) * clip + 1e-6


@given(
    st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=30),
    st.integers(min_value=0, max_value=29),
)
def test_one_image_changes_the_clipped_sum_by_at_most_clip(values, index):
    clip = 6.0
    neighbour = list(values)
    del neighbour[index % len(values)]
    assert abs(clipped_sum(values, clip) - clipped_sum(neighbour, clip)) <= clip


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_invalid_parameters_are_refused(bad):
    with pytest.raises(PrivacyError):
        laplace_noise(bad)
    with pytest.raises(PrivacyError):
        PrivacyPolicy(daily_budget=bad)
