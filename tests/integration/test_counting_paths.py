"""The real model: the optimised counting path (the enclave's) reports what the reference path does.

`ccc bench count` checks this on the bench and full accuracy sets before it reports a speed-up;
this test keeps the guarantee under `make test` on a smaller slice of both splits.
"""

from __future__ import annotations

import pytest

from ccc.evaluation import samples
from ccc.evaluation.bench_identity import BOX_TOLERANCE_PX, IdentityReport, compare
from ccc_enclave.counting import CatCounter, default_card_path, resolve_spec

CARD = default_card_path()
pytestmark = pytest.mark.skipif(
    not CARD.is_file() or not CARD.with_suffix(".onnx").is_file(), reason="model not built (run `make model`)"
)


def test_optimised_path_gives_the_reference_counts_and_boxes() -> None:
    spec = resolve_spec()
    reference = CatCounter(spec, profile="default", pipeline="reference")
    optimised = CatCounter(spec)
    assert optimised.batched, "the built model has a dynamic batch axis (docs/model.md)"
    sets = {split: samples.sample_set(split, per_count=2) for split in ("tune", "validate")}
    report = compare(reference, optimised, sets, IdentityReport())
    assert report.images >= 40
    assert report.count_mismatches == [] and report.box_mismatches == []
    assert report.max_box_diff_px <= BOX_TOLERANCE_PX
