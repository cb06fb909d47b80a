"""Exact pixel counts between sets of RLE masks, without decoding masks to dense arrays.

All counts are integers, so metrics built on them (IoU = I / U, cIoU = ΣI / ΣU) equal the official
dense-numpy computations bit for bit up to the final float division.

Intersections come from pycocotools' C `iou` (run-length merge with a bounding-box prefilter, one call
for a whole P×G matrix): with a = |A|, b = |B|, IoU = I / (a + b − I), so I = IoU·(a + b) / (1 + IoU),
rounded to the nearest integer (exact while a + b < 2**52).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gcgbench.api.types import RLE


class MaskSizeError(ValueError):
    """Two masks that must be compared have different (height, width)."""


def areas(masks: Sequence[RLE]) -> np.ndarray:
    """Pixel count of each mask, int64, shape (len(masks),)."""
    from pycocotools import mask as mask_utils

    if not masks:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(mask_utils.area([m.to_coco() for m in masks]), dtype=np.int64).reshape(len(masks))


def check_sizes(masks: Sequence[RLE], expected: tuple[int, int], what: str) -> None:
    """Raise MaskSizeError naming the first mask whose size differs from `expected` (height, width)."""
    for index, mask in enumerate(masks):
        if mask.size != tuple(expected):
            raise MaskSizeError(
                f"{what}[{index}] has size {list(mask.size)} but the image is {list(expected)} (height, width)"
            )


def intersections(first: Sequence[RLE], second: Sequence[RLE]) -> np.ndarray:
    """|A_i ∩ B_j| for every pair, int64, shape (len(first), len(second)). All masks must share one size."""
    from pycocotools import mask as mask_utils

    if not first or not second:
        return np.zeros((len(first), len(second)), dtype=np.int64)
    size = first[0].size
    check_sizes(first, size, "mask")
    check_sizes(second, size, "mask")
    area_first, area_second = areas(first), areas(second)
    ious = np.asarray(
        mask_utils.iou([m.to_coco() for m in first], [m.to_coco() for m in second], [0] * len(second)),
        dtype=np.float64,
    ).reshape(len(first), len(second))
    ious = np.nan_to_num(ious, nan=0.0)  # both masks empty: pycocotools divides 0 by 0
    total = area_first[:, None] + area_second[None, :]
    counts = np.rint(ious * total / (1.0 + ious)).astype(np.int64)
    counts[(area_first[:, None] == 0) | (area_second[None, :] == 0)] = 0
    return counts


def intersections_unions(first: Sequence[RLE], second: Sequence[RLE]) -> tuple[np.ndarray, np.ndarray]:
    """(I, U) matrices, int64: I = |A ∩ B|, U = |A| + |B| − I."""
    inter = intersections(first, second)
    union = areas(first)[:, None] + areas(second)[None, :] - inter
    return inter, union


def iou_matrix(first: Sequence[RLE], second: Sequence[RLE], empty_union: float = float("nan")) -> np.ndarray:
    """IoU = I / U for every pair, float64; `empty_union` where U = 0 (both masks empty).

    The default NaN is what the official numpy code (`np.sum(i) / np.sum(u)`) produces for 0 / 0.
    """
    inter, union = intersections_unions(first, second)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union.astype(np.float64)
    iou[union == 0] = empty_union
    return iou
