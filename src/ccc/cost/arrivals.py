"""Arrival processes for the simulator: named profiles and CSV traces (seconds from month start).

Why Poisson per profile: independent users submitting images are the textbook Poisson case; the
profiles differ in rate and in *when* the rate is non-zero, which is what decides how often the
fleet must wake from zero.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccc.cost.errors import CostError

DAY_S = 86400.0
HOUR_S = 3600.0


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    default_days: float | None  # None = the whole priced month; steady simulates one day (26 M jobs/month)
    generate: Callable[[random.Random, float], list[float]]


def _poisson(rng: random.Random, rate_per_s: float, start: float, end: float) -> list[float]:
    times: list[float] = []
    t = start
    if rate_per_s <= 0:
        return times
    while True:
        t += rng.expovariate(rate_per_s)
        if t >= end:
            return times
        times.append(t)


def sparse(rng: random.Random, horizon_s: float) -> list[float]:
    """~10 jobs a day at any hour."""
    return _poisson(rng, 10 / DAY_S, 0.0, horizon_s)


def office_hours(rng: random.Random, horizon_s: float) -> list[float]:
    """Weekdays 09:00-17:00 (the month starts on a Monday), 60 jobs an hour; nothing otherwise."""
    times: list[float] = []
    day = 0
    while day * DAY_S < horizon_s:
        if day % 7 < 5:
            start = day * DAY_S + 9 * HOUR_S
            times.extend(_poisson(rng, 60 / HOUR_S, start, min(start + 8 * HOUR_S, horizon_s)))
        day += 1
    return times


def bursty(rng: random.Random, horizon_s: float) -> list[float]:
    """3 bursts a day at random times, each ~200 jobs within a minute (a batch upload)."""
    times: list[float] = []
    for start in _poisson(rng, 3 / DAY_S, 0.0, horizon_s):
        times.extend(_poisson(rng, 200 / 60, start, min(start + 60, horizon_s)))
    return sorted(times)


def steady(rng: random.Random, horizon_s: float) -> list[float]:
    """10 jobs a second, all the time."""
    return _poisson(rng, 10.0, 0.0, horizon_s)


PROFILES: dict[str, Profile] = {
    "sparse": Profile("sparse", "~10 jobs/day, any hour", None, sparse),
    "office-hours": Profile("office-hours", "60 jobs/h, weekdays 09-17", None, office_hours),
    "bursty": Profile("bursty", "3 bursts/day of ~200 jobs in a minute", None, bursty),
    "steady": Profile("steady", "10 jobs/s around the clock", 1.0, steady),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise CostError(f"unknown profile {name!r} (have: {', '.join(PROFILES)})") from None


def read_trace(path: Path) -> list[float]:
    """A CSV whose first column is an arrival time in seconds from the start (a header row is skipped)."""
    times: list[float] = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or not row[0].strip():
                    continue
                try:
                    value = float(row[0])
                except ValueError:
                    if number == 1:
                        continue  # header
                    raise CostError(f"{path}:{number}: {row[0]!r} is not a number of seconds") from None
                if value < 0:
                    raise CostError(f"{path}:{number}: negative arrival time")
                times.append(value)
    except OSError as exc:
        raise CostError(f"cannot read trace {path}: {exc}") from None
    return sorted(times)
