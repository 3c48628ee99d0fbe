"""Do two counters give the same answer? Counts equal, and every box matched within a tolerance.

A speed-up of the counting path is only kept when it changes nothing a tenant could see: the
number of cats on every image of the bench and accuracy sets, and each reported box (to within
half a pixel — float rounding in a batched convolution may move a box edge by 1e-4 px, a changed
pre-processing would move it by pixels). Boxes are paired greedily by their largest coordinate
difference, so an order change between near-equal scores is not a mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ccc.evaluation.samples import SampleImage
from ccc_enclave.counting.counter import CatCounter, Detection

BOX_TOLERANCE_PX = 0.5


def max_box_difference(first: Sequence[Detection], second: Sequence[Detection]) -> float:
    """Largest coordinate difference after pairing boxes one to one (inf if the counts differ)."""
    if len(first) != len(second):
        return float("inf")
    if not first:
        return 0.0
    a = np.asarray([item.box for item in first], dtype=np.float64)
    b = np.asarray([item.box for item in second], dtype=np.float64)
    cost = np.abs(a[:, np.newaxis, :] - b[np.newaxis, :, :]).max(axis=2)  # [n, n]
    worst = 0.0
    free = np.ones(len(b), dtype=bool)
    for row in np.argsort(cost.min(axis=1), kind="stable"):
        candidates = np.where(free, cost[row], np.inf)
        column = int(np.argmin(candidates))
        free[column] = False
        worst = max(worst, float(candidates[column]))
    return worst


@dataclass
class IdentityReport:
    images: int = 0
    count_mismatches: list[dict[str, Any]] = field(default_factory=list)
    box_mismatches: list[dict[str, Any]] = field(default_factory=list)
    max_box_diff_px: float = 0.0
    sets: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.images > 0 and not self.count_mismatches and not self.box_mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "images": self.images,
            "sets": self.sets,
            "box_tolerance_px": BOX_TOLERANCE_PX,
            "max_box_diff_px": round(self.max_box_diff_px, 6),
            "count_mismatches": self.count_mismatches,
            "box_mismatches": self.box_mismatches,
        }


def compare(
    reference: CatCounter, candidate: CatCounter, sets: Mapping[str, Sequence[SampleImage]], report: IdentityReport
) -> IdentityReport:
    """Count every image of every set with both counters and record any difference in `report`."""
    for set_name, images in sets.items():
        report.sets.append(f"{set_name} ({len(images)} images)")
        for item in images:
            ref, got = reference.count(item.image), candidate.count(item.image)
            report.images += 1
            where = {"set": set_name, "image": item.name}
            if ref.cats != got.cats:
                report.count_mismatches.append({**where, "reference": ref.cats, "candidate": got.cats})
                continue
            diff = max_box_difference(ref.detections, got.detections)
            report.max_box_diff_px = max(report.max_box_diff_px, diff)
            if diff > BOX_TOLERANCE_PX:
                report.box_mismatches.append({**where, "max_box_diff_px": round(diff, 3)})
    return report
