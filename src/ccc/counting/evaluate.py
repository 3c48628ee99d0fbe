"""Measure counting accuracy on labelled images, and sweep post-processing settings.

The model runs once per image (`CatCounter.collect` at a low score floor); every setting that only
affects post-processing (score/group thresholds, nested merging, competing classes) is then
evaluated on the cached candidates with `finalize`, so a sweep of hundreds of settings costs
seconds. Settings that change what the model sees (tiling) need one collection each.

The selection rule (`choose`): among settings with no cat reported on any image without cats,
take the highest exact-count rate; ties go to the setting in the middle of the tied score-threshold
range (the most margin on both sides), then to the lower group threshold.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccc.counting.counter import CatCounter, Collected, finalize
from ccc.counting.samples import SampleImage
from ccc.counting.spec import DetectorSpec


@dataclass(frozen=True)
class Accuracy:
    images: int
    exact: int
    negatives: int
    false_positive_images: int  # images without cats where at least one cat was reported
    absolute_error: int
    by_count: dict[int, tuple[int, int]] = field(default_factory=dict)  # true count -> (exact, images)
    misses: tuple[tuple[str, int, int], ...] = ()  # (name, truth, counted) for wrong counts

    @property
    def exact_rate(self) -> float:
        return self.exact / self.images if self.images else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "exact": self.exact,
            "exact_rate": round(self.exact_rate, 4),
            "negatives": self.negatives,
            "false_positive_images": self.false_positive_images,
            "mean_absolute_error": round(self.absolute_error / self.images, 4) if self.images else 0.0,
            "by_count": {str(k): {"exact": v[0], "images": v[1]} for k, v in sorted(self.by_count.items())},
            "misses": [{"image": n, "truth": t, "counted": c} for n, t, c in self.misses],
        }


def collect_all(counter: CatCounter, items: Sequence[SampleImage], min_score: float) -> list[Collected]:
    return [counter.collect(item.image, min_score=min_score) for item in items]


def accuracy(items: Sequence[SampleImage], counts: Sequence[int]) -> Accuracy:
    by_count: dict[int, list[int]] = {}
    misses = []
    for item, counted in zip(items, counts, strict=True):
        tally = by_count.setdefault(item.cats, [0, 0])
        tally[1] += 1
        if counted == item.cats:
            tally[0] += 1
        else:
            misses.append((item.name, item.cats, counted))
    negatives = [(item, counted) for item, counted in zip(items, counts, strict=True) if item.cats == 0]
    return Accuracy(
        images=len(items),
        exact=sum(counted == item.cats for item, counted in zip(items, counts, strict=True)),
        negatives=len(negatives),
        false_positive_images=sum(counted > 0 for _item, counted in negatives),
        absolute_error=sum(abs(counted - item.cats) for item, counted in zip(items, counts, strict=True)),
        by_count={k: (v[0], v[1]) for k, v in by_count.items()},
        misses=tuple(misses),
    )


def evaluate(items: Sequence[SampleImage], collected: Sequence[Collected], spec: DetectorSpec) -> Accuracy:
    return accuracy(items, [len(finalize(c, spec)) for c in collected])


def sweep(
    items: Sequence[SampleImage], collected: Sequence[Collected], base: DetectorSpec, grid: dict[str, Iterable[Any]]
) -> list[tuple[dict[str, Any], Accuracy]]:
    """Accuracy for every combination of the post-processing fields in `grid`."""
    names = list(grid)
    results = []
    for values in itertools.product(*(list(grid[name]) for name in names)):
        changes = dict(zip(names, values, strict=True))
        results.append((changes, evaluate(items, collected, base.with_overrides(**changes))))
    return results


def choose(results: Sequence[tuple[dict[str, Any], Accuracy]]) -> tuple[dict[str, Any], Accuracy]:
    """The best setting by the module's selection rule (no false positives first, then exact rate)."""
    if not results:
        raise ValueError("no results to choose from")
    clean = [r for r in results if r[1].false_positive_images == 0] or list(results)
    best_exact = max(r[1].exact for r in clean)
    tied = [r for r in clean if r[1].exact == best_exact]
    thresholds = sorted({r[0].get("score_threshold", 0.0) for r in tied})
    middle = thresholds[len(thresholds) // 2]
    at_middle = [r for r in tied if r[0].get("score_threshold", 0.0) == middle]
    return min(at_middle, key=lambda r: (r[1].absolute_error, r[0].get("group_threshold", 0.0)))
