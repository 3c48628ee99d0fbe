"""The identity check behind `ccc bench count` can fail: a perturbed counter is reported not identical.

A speed-up is only reported as count-preserving when `bench_identity.compare` finds no difference;
these tests give it counters whose detectors differ (one box moved, one cat more) and check that it
says so, and that the same detector twice is identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ccc.evaluation.bench_identity import BOX_TOLERANCE_PX, IdentityReport, compare
from ccc.evaluation.samples import SampleImage
from ccc.evaluation.testing import constant_detector, nanodet_outputs
from ccc_enclave.counting import CatCounter, DetectorSpec

CATS = [(12, 20, 44, 36, 1, 0.9), (36, 28, 60, 44, 1, 0.7)]


def counter_for(tmp_path: Path, name: str, cats: Sequence[tuple[float, float, float, float, int, float]]) -> CatCounter:
    model = tmp_path / f"{name}.onnx"
    outputs = nanodet_outputs(cats, input_size=(64, 64), num_classes=3)
    model.write_bytes(constant_detector(outputs, input_name="input_1", input_shape=("batch", 3, 64, 64)))
    spec = DetectorSpec(
        model_path=model,
        decoder="nanodet",
        input_size=64,
        channel_order="BGR",
        mean=(103.53, 116.28, 123.675),
        std=(57.375, 57.12, 58.395),
        num_classes=3,
        cat_class=1,
        competing_classes=(0,),
        score_threshold=0.3,
        tile_grid=1,
    )
    return CatCounter(spec)


def images() -> dict[str, list[SampleImage]]:
    picture = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return {"set": [SampleImage("noise", picture, 2, "composite")]}


def test_the_same_detector_twice_is_identical(tmp_path: Path) -> None:
    report = compare(counter_for(tmp_path, "a", CATS), counter_for(tmp_path, "b", CATS), images(), IdentityReport())
    assert report.identical and report.images == 1 and report.max_box_diff_px == 0.0


def test_a_moved_box_is_a_box_mismatch(tmp_path: Path) -> None:
    moved = [(12, 20, 44, 36, 1, 0.9), (36, 28, 52, 44, 1, 0.7)]  # one edge 8 network px away
    report = compare(counter_for(tmp_path, "a", CATS), counter_for(tmp_path, "b", moved), images(), IdentityReport())
    assert not report.identical
    assert report.count_mismatches == []
    assert [item["image"] for item in report.box_mismatches] == ["noise"]
    assert report.max_box_diff_px > BOX_TOLERANCE_PX


def test_another_count_is_a_count_mismatch(tmp_path: Path) -> None:
    fewer = CATS[:1]
    report = compare(counter_for(tmp_path, "a", CATS), counter_for(tmp_path, "b", fewer), images(), IdentityReport())
    assert not report.identical
    assert report.count_mismatches == [{"set": "set", "image": "noise", "reference": 2, "candidate": 1}]
    assert report.to_dict()["identical"] is False
