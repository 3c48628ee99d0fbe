"""The Laplace mechanism with per-image clipping and an epsilon budget per tenant and day.

Why each piece:

* per-image clipping: one image contributes at most ``clip`` to a sum, which bounds the
  sensitivity of the sum to ``clip`` whatever the image contains;
* noise calibrated to that sensitivity: ``Laplace(scale = clip / epsilon)``, drawn from a
  cryptographic RNG (a predictable one would let a reader subtract the noise);
* a per-tenant, per-day epsilon budget: each release spends its epsilon *before* the value is
  computed; when the day's budget would be exceeded the release is refused (``BudgetExhausted``),
  never silently noised less. The ledger is a port: `ccc.stats.ledger.FileBudgetLedger` keeps it
  in a file the tenant owns, so it survives restarts of the tenant's tools (and no host can roll
  it back: it never leaves the tenant's machine).

Guarantee of one release: epsilon-differential privacy with respect to adding or removing one
image; of all releases about one tenant-day made through one ledger: at most the daily budget.
This module moved here from the enclave, which no longer releases anything (docs/threat-model.md).
"""

from __future__ import annotations

import math
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from ccc.errors import CccError

_UNIT = float(1 << 53)


class PrivacyError(CccError, ValueError):
    """Invalid privacy parameters (non-positive epsilon, negative clip, ...)."""


class BudgetExhausted(PrivacyError):
    """The tenant's epsilon budget for that day does not cover this release."""


class LedgerError(PrivacyError):
    """The ledger file cannot be read or written (corrupt, not ours, unwritable)."""


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


def add_within_budget(spent: float, epsilon: float, budget: float, tenant: str, day: date) -> float:
    """`spent + epsilon`, or BudgetExhausted if that exceeds `budget` (every ledger's one rule)."""
    # A small tolerance keeps e.g. 10 x 0.1 within a budget of 1.0 despite float rounding.
    if spent + epsilon > budget + 1e-9:
        raise BudgetExhausted(
            f"tenant {tenant!r} has spent {spent:.3f} of its {budget:.3f} epsilon for {day.isoformat()}; "
            f"a release costing {epsilon:.3f} is refused"
        )
    return spent + epsilon


class InMemoryBudgetLedger(BudgetLedger):
    """Thread-safe ledger for tests (forgets everything when the process ends)."""

    def __init__(self) -> None:
        self._spent: dict[tuple[str, date], float] = {}
        self._lock = threading.Lock()

    def spend(self, tenant: str, day: date, epsilon: float, budget: float) -> float:
        with self._lock:
            total = add_within_budget(self._spent.get((tenant, day), 0.0), epsilon, budget, tenant, day)
            self._spent[(tenant, day)] = total
            return total

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

    def __post_init__(self) -> None:
        for name in ("daily_budget", "epsilon_per_release", "clip_cats_per_image"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise PrivacyError(f"{name} must be a positive finite number, got {value!r}")
        if self.epsilon_per_release > self.daily_budget:
            raise PrivacyError("epsilon_per_release cannot exceed daily_budget")


METRIC_CATS = "cats"
METRIC_IMAGES = "images"


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
            tenant=tenant,
            day=day,
            metric=metric,
            value=exact + laplace_noise(scale, self._rng),
            epsilon=epsilon,
            scale=scale,
        )

    def cats_per_day(self, tenant: str, day: date, cats_per_image: Iterable[int]) -> PrivateRelease:
        return self._release(tenant, day, METRIC_CATS, cats_per_image, self._policy.clip_cats_per_image)

    def images_per_day(self, tenant: str, day: date, images: int) -> PrivateRelease:
        if images < 0:
            raise PrivacyError("a number of images cannot be negative")
        return self._release(tenant, day, METRIC_IMAGES, [1.0] * images, 1.0)
