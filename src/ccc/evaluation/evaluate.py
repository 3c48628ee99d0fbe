"""Measure counting accuracy on labelled images, and sweep post-processing settings.

The model runs once per image (`CatCounter.collect` at a low score floor); every setting that only
affects post-processing (score/group thresholds, nested merging, competing classes) is then
evaluated on the cached candidates with `finalize`, so a sweep of hundreds of settings costs
seconds. Settings that change what the model sees (tiling) need one collection each.

The selection rule (`choose`): among settings with no cat reported on any image without cats *and*
none one threshold step lower either (a safety margin), take the highest exact-count rate; ties go
to the middle of the tied score-threshold range, then to the lower group threshold.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ccc.evaluation.samples import SampleImage, sample_set
from ccc_enclave.counting.counter import CatCounter, Collected, finalize
from ccc_enclave.counting.spec import DEFAULT_COMPETING_CLASSES, DetectorSpec


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
    items: Sequence[SampleImage], collected: Sequence[Collected], base: DetectorSpec, grid: Mapping[str, Iterable[Any]]
) -> list[tuple[dict[str, Any], Accuracy]]:
    """Accuracy for every combination of the post-processing fields in `grid`."""
    names = list(grid)
    results = []
    for values in itertools.product(*(list(grid[name]) for name in names)):
        changes = dict(zip(names, values, strict=True))
        results.append((changes, evaluate(items, collected, base.with_overrides(**changes))))
    return results


def choose(results: Sequence[tuple[dict[str, Any], Accuracy]]) -> tuple[dict[str, Any], Accuracy]:
    """The best setting by the module's selection rule.

    1. No false positives, with a margin: the same setting one score-threshold step lower must also
       report no cat on any cat-free image (a threshold right at the edge of the first false
       positive would not survive slightly different photos).
    2. Highest exact-count rate; ties go to the middle of the tied thresholds, then the smallest
       absolute error, then the lower group threshold.
    """
    if not results:
        raise ValueError("no results to choose from")
    thresholds = sorted({r[0].get("score_threshold", 0.0) for r in results})

    def key_without_threshold(params: dict[str, Any]) -> str:
        return repr(sorted((k, v) for k, v in params.items() if k != "score_threshold"))

    fp_by_setting = {
        (key_without_threshold(params), params.get("score_threshold", 0.0)): acc.false_positive_images
        for params, acc in results
    }

    def has_margin(params: dict[str, Any]) -> bool:
        threshold = params.get("score_threshold", 0.0)
        position = thresholds.index(threshold)
        if position == 0:
            return True
        lower = fp_by_setting.get((key_without_threshold(params), thresholds[position - 1]))
        return lower == 0

    clean = [r for r in results if r[1].false_positive_images == 0 and has_margin(r[0])]
    clean = clean or [r for r in results if r[1].false_positive_images == 0] or list(results)
    best_exact = max(r[1].exact for r in clean)
    tied = [r for r in clean if r[1].exact == best_exact]
    tied_thresholds = sorted({r[0].get("score_threshold", 0.0) for r in tied})
    middle = tied_thresholds[len(tied_thresholds) // 2]
    at_middle = [r for r in tied if r[0].get("score_threshold", 0.0) == middle]
    return min(at_middle, key=lambda r: (r[1].absolute_error, r[0].get("group_threshold", 0.0)))

SWEEP_FLOOR = 0.15
SWEEP_GRID: dict[str, list[Any]] = {
    "score_threshold": [round(0.2 + 0.025 * step, 3) for step in range(17)],  # 0.2 .. 0.6
    "group_threshold": [0.6, 0.7, 0.8, 0.9],
    "merge_nested": [True, False],
    "competing_classes": [[], list(DEFAULT_COMPETING_CLASSES)],
}


def tune_and_validate(counter: CatCounter, per_count: int) -> dict[str, Any]:
    """Sweep SWEEP_GRID on the `tune` split, choose, then report the choice on the `validate` split.

    The counter's spec fixes what the model sees (tiling); it must collect every class the grid's
    competing-class options name (the COCO defaults do).
    """
    tune_items = sample_set("tune", per_count=per_count)
    tune_collected = collect_all(counter, tune_items, SWEEP_FLOOR)
    results = sweep(tune_items, tune_collected, counter.spec, SWEEP_GRID)
    chosen, tuned = choose(results)
    curve = [
        {"score_threshold": params["score_threshold"], "exact": acc.exact, "images": acc.images,
         "false_positive_images": acc.false_positive_images}
        for params, acc in results
        if all(params[key] == chosen[key] for key in chosen if key != "score_threshold")
    ]
    validate_items = sample_set("validate", per_count=per_count)
    validate_collected = collect_all(counter, validate_items, SWEEP_FLOOR)
    validated = evaluate(validate_items, validate_collected, counter.spec.with_overrides(**chosen))
    current = evaluate(validate_items, validate_collected, counter.spec)
    return {
        "per_count": per_count,
        "settings_tried": len(results),
        "chosen": chosen,
        "tune": tuned.to_dict(),
        "threshold_curve_at_chosen_settings": curve,
        "validate_chosen": validated.to_dict(),
        "validate_current_spec": current.to_dict(),
    }
