"""Numpy post-processing: IoU, per-class non-maximum suppression, and "group" box suppression."""

from __future__ import annotations

import numpy as np


def box_areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def intersections(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection area of one xyxy box with each of [M, 4] boxes."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    return np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of kept boxes, best score first: greedy NMS dropping boxes with IoU > threshold."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    areas = box_areas(boxes)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        inter = intersections(boxes[best], boxes[rest])
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def nms_per_class(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS within each class separately (a cat and a dog may overlap); kept indices, best score first."""
    kept: list[np.ndarray] = []
    for cls in np.unique(class_ids):
        members = np.flatnonzero(class_ids == cls)
        kept.append(members[nms(boxes[members], scores[members], iou_threshold)])
    if not kept:
        return np.zeros(0, dtype=np.int64)
    merged = np.concatenate(kept)
    return merged[np.argsort(-scores[merged], kind="stable")]


def suppress_groups(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, min_members: int = 2, *, merge_nested: bool = False
) -> np.ndarray:
    """Boolean mask of boxes to keep after dropping "group" boxes (and, optionally, nested duplicates).

    Detectors sometimes put one extra box around several cats sitting together. A box is a group
    box when at least `min_members` other *kept* boxes each lie mostly inside it, "mostly" meaning
    intersection / area(inner box) >= `threshold`. Boxes are decided smallest first, so a box around
    two group boxes is judged against the cats those group boxes were, not against the groups.

    With `merge_nested`, a box holding exactly one kept box mostly inside it is the same cat seen
    twice (the whole cat and its face, or two views of it): only the higher-scoring one is kept.
    """
    count = len(boxes)
    keep = np.zeros(count, dtype=bool)
    if count == 0:
        return keep
    areas = box_areas(boxes)
    for index in np.argsort(areas, kind="stable"):
        inner = np.flatnonzero(keep)
        if inner.size:
            inside = inner[intersections(boxes[index], boxes[inner]) / np.maximum(areas[inner], 1e-9) >= threshold]
            if inside.size >= min_members:
                continue
            if merge_nested and inside.size == 1:
                if scores[index] > scores[inside[0]]:
                    keep[inside[0]] = False
                    keep[index] = True
                continue
        keep[index] = True
    return keep


def suppress_competitors(
    cat_boxes: np.ndarray, cat_scores: np.ndarray, other_boxes: np.ndarray, other_scores: np.ndarray, iou: float
) -> np.ndarray:
    """Mask of cat boxes to keep: drop one when a competing-class box overlaps it (IoU >= iou) with a higher score."""
    keep = np.ones(len(cat_boxes), dtype=bool)
    if len(other_boxes) == 0:
        return keep
    other_areas = box_areas(other_boxes)
    for index, box in enumerate(cat_boxes):
        inter = intersections(box, other_boxes)
        union = box_areas(box[np.newaxis])[0] + other_areas - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        if np.any((overlap >= iou) & (other_scores > cat_scores[index])):
            keep[index] = False
    return keep
