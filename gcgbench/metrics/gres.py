"""Generalized referring expression segmentation (gRefCOCO): gIoU, cIoU, N-acc, T-acc, Pr@X.

Source: henghuiding/ReLA @3ca9551 gres_model/evaluation/refer_evaluation.py:14 `computeIoU`, :70
`ReferEvaluator.evaluate` (:87 thresholds, :129 the no-target branch, :190 gIoU, :195-198 the accuracies).

ReLA `gres_model/evaluation/refer_evaluation.py::ReferEvaluator.evaluate`, line by line. Per
expression e, with `computeIoU`: I_e = |P ∩ G|, U_e = |P ∪ G| (numpy logical and/or of the merged
masks), `gt_nt` = the expression names no object, `pred_nt` = the model says "no target":

    gt_nt,  pred_nt   → TP (no-target hit):     I = 0, U = 0,   iou = 1
    gt_nt,  ¬pred_nt  → FN:                     I = 0, U = U_e, iou = 0
    ¬gt_nt, pred_nt   → FP (target missed):     I = 0, U = U_e, iou = 0 / U_e = 0 (0 when U_e = 0)
    ¬gt_nt, ¬pred_nt  → TN (target attempted):  I = I_e, U = U_e, iou = I_e / U_e (0 when U_e = 0)

    gIoU  = Σ_e iou_e / N                       (every expression, no-target ones included)
    cIoU  = Σ_e I / Σ_e U
    T-acc = TN / (TN + FP)                      N-acc = TP / (TP + FN)
    Pr@X  = #{targeted e: iou_e ≥ X} / #targeted,  X ∈ {0.7, 0.8, 0.9}

Quirks reproduced: when the split has no no-target expression ReLA sets T-acc = N-acc = 0; an FP keeps
its U_e (so a predicted mask the model disowned still enlarges cIoU's denominator); U_e is the union
with the mask even for pred_nt. Where ReLA divides by zero (Σ U = 0, no targeted expression, all
no-target with none targeted) it raises; we return NaN. ReLA prints gIoU, cIoU, Pr@X ×100 and the
accuracies as fractions; we store fractions throughout.

`pred_nt`: ReLA has a separate no-target head; the LMMs we run answer with a mask only, so a
prediction says "no target" when its mask has fewer than `min_mask_area` pixels (default 1: only an
empty mask, or no mask). The mask itself is kept for U_e, as ReLA keeps its mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gcgbench.api.types import RLE
from gcgbench.metrics.masks import MaskSizeError, intersections_unions

PRECISION_THRESHOLDS = (0.7, 0.8, 0.9)  # ReLA pr_thres
METRICS = ("giou", "ciou", "n_acc", "t_acc", *(f"precision_{t}" for t in PRECISION_THRESHOLDS))
DEFAULT_MIN_MASK_AREA = 1


@dataclass(frozen=True)
class GresSample:
    """One expression: the prediction (None = no mask), the merged truth mask, and whether it names nothing."""

    sample_id: str
    image_id: str | int
    prediction: RLE | None
    truth: RLE
    no_target: bool


@dataclass(frozen=True)
class GresStats:
    """Per-expression columns: the I, U and iou ReLA accumulates (after its case analysis), the raw
    pixel counts, predicted area, and the two no-target flags."""

    sample_ids: tuple[str, ...]
    image_ids: tuple[str | int, ...]
    intersection: np.ndarray  # accumulated I (0 for TP, FN, FP)
    union: np.ndarray  # accumulated U (0 for TP)
    iou: np.ndarray  # accumulated IoU term (float64)
    predicted_area: np.ndarray
    gt_nt: np.ndarray
    pred_nt: np.ndarray
    min_mask_area: int

    def __len__(self) -> int:
        return len(self.sample_ids)

    def per_sample(self) -> list[dict[str, Any]]:
        return [
            {"sample_id": s, "image_id": image, "intersection": int(i), "union": int(u), "iou": float(v),
             "predicted_area": int(a), "gt_nt": bool(g), "pred_nt": bool(p)}
            for s, image, i, u, v, a, g, p in zip(self.sample_ids, self.image_ids, self.intersection, self.union,
                                                  self.iou, self.predicted_area, self.gt_nt, self.pred_nt)
        ]


def check_min_mask_area(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"min_mask_area must be an integer >= 1 (1: only an empty mask means 'no target'), got {value!r}")
    return value


def compute_stats(samples: Sequence[GresSample], min_mask_area: int = DEFAULT_MIN_MASK_AREA) -> GresStats:
    """ReLA's per-expression bookkeeping. Raises ValueError on no samples, MaskSizeError on a size mismatch."""
    check_min_mask_area(min_mask_area)
    if not samples:
        raise ValueError("no gRefCOCO samples to score")
    n = len(samples)
    inter_raw, union_raw, area = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    for index, sample in enumerate(samples):
        if sample.prediction is None:
            union_raw[index] = sample.truth.area()
            continue
        if sample.prediction.size != sample.truth.size:
            raise MaskSizeError(f"sample {sample.sample_id!r}: prediction size {list(sample.prediction.size)} != "
                                f"truth size {list(sample.truth.size)} (height, width)")
        inter, union = intersections_unions([sample.prediction], [sample.truth])
        inter_raw[index], union_raw[index] = int(inter[0, 0]), int(union[0, 0])
        area[index] = sample.prediction.area()
    gt_nt = np.array([s.no_target for s in samples], dtype=bool)
    pred_nt = area < min_mask_area
    intersection = np.where(gt_nt | pred_nt, 0, inter_raw)
    union = np.where(gt_nt & pred_nt, 0, union_raw)
    with np.errstate(invalid="ignore", divide="ignore"):
        targeted_iou = intersection / union.astype(np.float64)
    targeted_iou[union == 0] = 0.0
    iou = np.where(gt_nt, pred_nt.astype(np.float64), targeted_iou)
    return GresStats(tuple(s.sample_id for s in samples), tuple(s.image_id for s in samples), intersection, union,
                     iou, area, gt_nt, pred_nt, min_mask_area)


def aggregate(stats: GresStats, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, float]:
    """Every metric over `stats[indices]` (repeats allowed; None = all), as ReLA's `evaluate` sums them."""
    picked = np.arange(len(stats)) if indices is None else np.asarray(indices, dtype=np.int64)
    if picked.size == 0:
        raise ValueError("cannot aggregate gRefCOCO metrics over zero expressions")
    gt_nt, pred_nt, iou = stats.gt_nt[picked], stats.pred_nt[picked], stats.iou[picked]
    total_inter, total_union = int(stats.intersection[picked].sum()), int(stats.union[picked].sum())
    tp, fn = int(np.sum(gt_nt & pred_nt)), int(np.sum(gt_nt & ~pred_nt))
    fp, tn = int(np.sum(~gt_nt & pred_nt)), int(np.sum(~gt_nt & ~pred_nt))
    metrics = {
        "giou": float(iou.sum()) / picked.size,
        "ciou": total_inter / total_union if total_union else float("nan"),
    }
    if tp + fn > 0:  # empty_count > 0
        metrics["n_acc"] = tp / (tp + fn)
        metrics["t_acc"] = tn / (tn + fp) if tn + fp else float("nan")
    else:
        metrics["n_acc"] = metrics["t_acc"] = 0.0
    targeted = iou[~gt_nt]
    for threshold in PRECISION_THRESHOLDS:
        hits = int(np.count_nonzero(targeted >= threshold))
        metrics[f"precision_{threshold}"] = hits / targeted.size if targeted.size else float("nan")
    return metrics


def counts(stats: GresStats) -> dict[str, int]:
    """ReLA's `nt` dictionary: TP (no-target hit), TN (target attempted), FP (target missed), FN (no-target missed)."""
    gt, pred = stats.gt_nt, stats.pred_nt
    return {"TP": int(np.sum(gt & pred)), "TN": int(np.sum(~gt & ~pred)), "FP": int(np.sum(~gt & pred)),
            "FN": int(np.sum(gt & ~pred))}
