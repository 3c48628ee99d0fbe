"""The accuracy bookkeeping and the threshold selection rule used to pick the counter's defaults."""

from __future__ import annotations

import numpy as np

from ccc.evaluation.evaluate import Accuracy, accuracy, choose
from ccc.evaluation.samples import MAX_CATS, SampleImage, composite, sample_set


def item(name: str, cats: int) -> SampleImage:
    return SampleImage(name, np.zeros((2, 2, 3), np.uint8), cats, "negative" if cats == 0 else "composite")


def acc(exact: int, fp: int, images: int = 10) -> Accuracy:
    return Accuracy(images=images, exact=exact, negatives=3, false_positive_images=fp, absolute_error=images - exact)


def test_accuracy_counts_exact_false_positives_and_breakdown() -> None:
    items = [item("a", 0), item("b", 0), item("c", 2), item("d", 3)]
    result = accuracy(items, [0, 1, 2, 1])
    assert (result.exact, result.images, result.negatives, result.false_positive_images) == (2, 4, 2, 1)
    assert result.absolute_error == 3
    assert result.by_count == {0: (1, 2), 2: (1, 1), 3: (0, 1)}
    assert result.misses == (("b", 0, 1), ("d", 3, 1))
    assert result.to_dict()["exact_rate"] == 0.5


def test_choose_prefers_no_false_positives_with_a_margin_then_exactness() -> None:
    results = [
        ({"score_threshold": 0.25}, acc(9, 2)),
        ({"score_threshold": 0.30}, acc(9, 0)),  # clean, but the step below is not: no margin
        ({"score_threshold": 0.35}, acc(8, 0)),
        ({"score_threshold": 0.40}, acc(7, 0)),
    ]
    assert choose(results)[0] == {"score_threshold": 0.35}


def test_choose_breaks_ties_in_the_middle_of_the_plateau() -> None:
    results = [({"score_threshold": t}, acc(8, 0)) for t in (0.3, 0.35, 0.4)] + [({"score_threshold": 0.45}, acc(5, 0))]
    assert choose(results)[0] == {"score_threshold": 0.35}


def test_samples_are_deterministic_and_labelled() -> None:
    first, second = composite(4, 123), composite(4, 123)
    assert np.array_equal(first.image, second.image)
    assert first.cats == 4 and len(first.boxes) == 4
    height, width = first.image.shape[:2]
    for x1, y1, x2, y2 in first.boxes:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    names = [s.name for s in sample_set("tune", per_count=1)]
    assert len(set(names)) == len(names)
    assert {s.cats for s in sample_set("validate", per_count=1)} == set(range(MAX_CATS + 1))
    assert not set(names) & {s.name for s in sample_set("validate", per_count=1) if s.kind == "composite"}
