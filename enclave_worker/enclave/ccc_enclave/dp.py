"""Differentially private aggregates about content (cats per tenant per day, uploads per tenant).

Why: a count of cats is derived from the plaintext image. Publishing exact per-tenant totals on a
dashboard would leak content one image at a time (difference attacks: compare the total before and
after one upload). So every content aggregate leaves the trusted boundary only through the Laplace
mechanism with

* per-image clipping: one image contributes at most ``clip`` to a sum, which bounds the
  sensitivity of the sum to ``clip`` whatever the image contains;
* noise calibrated to that sensitivity: ``Laplace(scale = clip / epsilon)``;
* a per-tenant, per-day epsilon budget: each release spends its epsilon; when the day's budget
  would be exceeded the release is refused (``BudgetExhausted``), never silently noised less.

The ledger is a port so that the local stack keeps it in memory or a file and AWS in DynamoDB.

Where the exact counts live: only in ``ContentAggregates``, inside the enclave (the one place that
sees cats at all). It clips each image's contribution as it is recorded, so it holds clipped
totals, never per-image values; ``PrivateAggregator.release_all`` turns those totals into noisy
releases under the budget. See docs/observability.md.
"""

from __future__ import annotations

import math
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from ccc_enclave.errors import EnclaveError

_UNIT = float(1 << 53)


class PrivacyError(EnclaveError, ValueError):
    """Invalid privacy parameters (non-positive epsilon, negative clip, ...)."""


class BudgetExhausted(PrivacyError):
    """The tenant's epsilon budget for that day does not cover this release."""


def _uniform_open(rng: secrets.SystemRandom) -> float:
    """A uniform draw in the open interval (0, 1): log(0) must never happen."""
    while True:
        u = rng.getrandbits(53) / _UNIT
        if u > 0.0:
            return u


def laplace_noise(scale: float, rng: secrets.SystemRandom | None = None) -> float:
    """One draw of Laplace(0, scale) by inverse CDF from a cryptographic RNG.

    A predictable RNG would let an observer subtract the noise, so SystemRandom is the default.
    """
    if not math.isfinite(scale) or scale <= 0:
        raise PrivacyError(f"Laplace scale must be a positive finite number, got {scale!r}")
    generator = rng or secrets.SystemRandom()
    u = _uniform_open(generator) - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1.0 - 2.0 * abs(u))


def clipped_sum(values: Iterable[float], clip: float) -> float:
    """Sum of per-image contributions, each clipped to [0, clip]: the sensitivity bound."""
    if not math.isfinite(clip) or clip <= 0:
        raise PrivacyError(f"clip must be a positive finite number, got {clip!r}")
    total = 0.0
    for value in values:
        if not math.isfinite(value):
            raise PrivacyError("contributions must be finite numbers")
        total += min(max(float(value), 0.0), clip)
    return total


class BudgetLedger(ABC):
    """Records how much epsilon each tenant has spent on each day."""

    @abstractmethod
    def spend(self, tenant: str, day: date, epsilon: float, budget: float) -> float:
        """Atomically add ``epsilon`` if the total stays <= ``budget``; return the new total.

        Raises BudgetExhausted (and records nothing) when it would not.
        """


class InMemoryBudgetLedger(BudgetLedger):
    """Thread-safe ledger for the local stack and tests."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, date], float] = {}
        self._lock = threading.Lock()

    def spend(self, tenant: str, day: date, epsilon: float, budget: float) -> float:
        with self._lock:
            spent = self._spent.get((tenant, day), 0.0)
            # A small tolerance keeps e.g. 10 x 0.1 within a budget of 1.0 despite float rounding.
            if spent + epsilon > budget + 1e-9:
                raise BudgetExhausted(
                    f"tenant {tenant!r} has spent {spent:.3f} of its {budget:.3f} epsilon for {day.isoformat()}; "
                    f"a release costing {epsilon:.3f} is refused"
                )
            self._spent[(tenant, day)] = spent + epsilon
            return spent + epsilon

    def spent(self, tenant: str, day: date) -> float:
        with self._lock:
            return self._spent.get((tenant, day), 0.0)


@dataclass(frozen=True)
class PrivateRelease:
    """What may be published: the noisy value and the parameters that produced it (never the exact value)."""

    tenant: str
    day: date
    metric: str
    value: float
    epsilon: float
    scale: float


@dataclass(frozen=True)
class PrivacyPolicy:
    """Per-metric clipping and epsilon, and the daily budget per tenant."""

    daily_budget: float = 1.0
    epsilon_per_release: float = 0.25
    clip_cats_per_image: float = 6.0
    clip_uploads_per_image: float = 1.0

    def __post_init__(self) -> None:
        for name in ("daily_budget", "epsilon_per_release", "clip_cats_per_image", "clip_uploads_per_image"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise PrivacyError(f"{name} must be a positive finite number, got {value!r}")
        if self.epsilon_per_release > self.daily_budget:
            raise PrivacyError("epsilon_per_release cannot exceed daily_budget")


METRIC_CATS = "cats"
METRIC_UPLOADS = "uploads"


@dataclass
class _DayTotals:
    cats: float = 0.0  # sum over images of min(cats, clip_cats_per_image)
    uploads: float = 0.0  # one per authenticated upload (clip 1)


class ContentAggregates:
    """Exact per-tenant, per-day clipped totals: kept in enclave memory only, never published as is.

    Each contribution is clipped when recorded (with the policy's clips), so the totals have the
    sensitivity the release assumes. Memory is bounded: days older than `retention_days` are
    dropped, and at most `max_entries` (tenant, day) pairs are kept (the oldest day goes first).
    """

    def __init__(self, policy: PrivacyPolicy, *, retention_days: int = 2, max_entries: int = 4096) -> None:
        if retention_days < 1 or max_entries < 1:
            raise PrivacyError("retention_days and max_entries must be at least 1")
        self.policy = policy
        self._retention = retention_days
        self._max_entries = max_entries
        self._totals: dict[tuple[str, date], _DayTotals] = {}
        self._lock = threading.Lock()

    def _entry(self, tenant: str, day: date) -> _DayTotals:
        key = (tenant, day)
        entry = self._totals.get(key)
        if entry is None:
            self._prune(day)
            while len(self._totals) >= self._max_entries:
                del self._totals[min(self._totals, key=lambda k: (k[1], k[0]))]
            entry = self._totals[key] = _DayTotals()
        return entry

    def _prune(self, today: date) -> None:
        oldest = today - timedelta(days=self._retention - 1)
        for key in [k for k in self._totals if k[1] < oldest]:
            del self._totals[key]

    def record_upload(self, tenant: str, day: date) -> None:
        with self._lock:
            self._entry(tenant, day).uploads += min(1.0, self.policy.clip_uploads_per_image)

    def record_cats(self, tenant: str, day: date, cats: int) -> None:
        if cats < 0:
            raise PrivacyError("a count cannot be negative")
        with self._lock:
            self._entry(tenant, day).cats += min(float(cats), self.policy.clip_cats_per_image)

    def snapshot(self, today: date) -> list[tuple[str, date, float, float]]:
        """(tenant, day, clipped cats total, uploads) for the days still retained."""
        with self._lock:
            self._prune(today)
            return [(t, d, v.cats, v.uploads) for (t, d), v in sorted(self._totals.items())]

    def __repr__(self) -> str:  # never print the exact totals by accident
        return f"ContentAggregates({len(self._totals)} tenant-days)"


@dataclass(frozen=True)
class ReleaseBatch:
    """What one release round produced: noisy values, and how many releases the budget refused."""

    releases: list[PrivateRelease] = field(default_factory=list)
    refused: int = 0


class PrivateAggregator:
    """Publishes per-tenant daily aggregates through the Laplace mechanism under a budget."""

    def __init__(
        self,
        ledger: BudgetLedger,
        policy: PrivacyPolicy | None = None,
        rng: secrets.SystemRandom | None = None,
    ) -> None:
        self._ledger = ledger
        self._policy = policy or PrivacyPolicy()
        self._rng = rng or secrets.SystemRandom()

    @property
    def policy(self) -> PrivacyPolicy:
        return self._policy

    def _release(self, tenant: str, day: date, metric: str, values: Iterable[float], clip: float) -> PrivateRelease:
        return self._release_total(tenant, day, metric, clipped_sum(values, clip), clip)

    def _release_total(self, tenant: str, day: date, metric: str, exact: float, clip: float) -> PrivateRelease:
        """`exact` must be a sum of contributions each clipped to [0, clip] (the sensitivity)."""
        epsilon = self._policy.epsilon_per_release
        # Spend before computing the noisy value: a refused release must reveal nothing.
        self._ledger.spend(tenant, day, epsilon, self._policy.daily_budget)
        scale = clip / epsilon
        return PrivateRelease(
            tenant=tenant, day=day, metric=metric,
            value=exact + laplace_noise(scale, self._rng), epsilon=epsilon, scale=scale,
        )

    def cats_per_day(self, tenant: str, day: date, cats_per_image: Iterable[int]) -> PrivateRelease:
        return self._release(tenant, day, "cats", cats_per_image, self._policy.clip_cats_per_image)

    def uploads_per_day(self, tenant: str, day: date, uploads: int) -> PrivateRelease:
        if uploads < 0:
            raise PrivacyError("uploads cannot be negative")
        return self._release(tenant, day, "uploads", [1.0] * uploads, self._policy.clip_uploads_per_image)

    def release_all(self, aggregates: ContentAggregates, today: date, *, limit: int | None = None) -> ReleaseBatch:
        """One noisy release of cats and uploads for every retained tenant-day; each spends epsilon
        from that tenant-day's budget, and a spent budget means that release is refused (counted).

        With `limit`, at most that many releases are made (newest day first); the rest are not
        attempted and spend nothing."""
        if aggregates.policy != self._policy:
            raise PrivacyError("the aggregates were clipped under another policy than this aggregator's")
        batch = ReleaseBatch()
        refused = 0
        entries = sorted(aggregates.snapshot(today), key=lambda e: (-e[1].toordinal(), e[0]))
        for tenant, day, cats, uploads in entries:
            for metric, total, clip in (
                (METRIC_CATS, cats, self._policy.clip_cats_per_image),
                (METRIC_UPLOADS, uploads, self._policy.clip_uploads_per_image),
            ):
                if limit is not None and len(batch.releases) + refused >= limit:
                    return ReleaseBatch(batch.releases, refused)
                try:
                    batch.releases.append(self._release_total(tenant, day, metric, total, clip))
                except BudgetExhausted:
                    refused += 1
        return ReleaseBatch(batch.releases, refused)
