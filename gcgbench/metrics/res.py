"""Referring expression segmentation (RES): cIoU, gIoU and precision@X from exact RLE pixel counts.

Every expression (one referring sentence and its ground-truth object mask) is one record. Intersection
I and union U are exact integers from `gcgbench.metrics.masks`; metrics are recomputed from them, so a
clustered bootstrap elsewhere only needs `compute_stats` once and `aggregate` per resample.

Protocols (the name is recorded in `ResResult.metric_config()`):

* ``"lisa"`` (default) — LISA `train_ds.py::validate` and GLaMM
  `eval/referring_seg/infer_and_evaluate.py::evaluate_model_performance` (line-for-line the same),
  with `intersectionAndUnionGPU` and `AverageMeter.all_reduce` from GLaMM `tools/utils.py`:

      iou_e = I_e / (U_e + 1e-5) + [U_e == 0]        (empty prediction vs empty truth scores 1.0)
      gIoU  = Σ_e iou_e / (N + 1e-5)                 (sentence-weighted: meter.update(acc/N, n=N);
                                                      all_reduce leaves avg = sum / (count + 1e-5))
      cIoU  = Σ_e I_e / (Σ_e U_e + 1e-10)

  Upstream I and U are int32 (CUDA `histc` of int tensors) and `I / (U + 1e-5)` is float32, so the
  epsilon vanishes for U ≥ 256; we reproduce each iou_e bit for bit in float32 and then sum in
  float64. Upstream sums in float32 (order-dependent under DDP, relative error ≲ 1e-7); that
  rounding and GLaMM's random ≤ 3 sentences per image are not reproduced (the sample set is the
  loader's job).

* ``"flmm"`` — F-LMM `scripts/multiprocess_eval_refcoco.py`, scored by mmdet 3.3
  `mmdet/evaluation/metrics/refseg_metric.py::RefSegMetric`:

      iou_e = I_e / U_e, with NaN (U_e = 0) mapped to 0   (float32 in mmdet; reproduced per item)
      gIoU  = Σ_e iou_e / N                               (mmdet's "mIoU")
      cIoU  = Σ_e I_e / Σ_e U_e                           (no epsilon: NaN when every union is 0)

  Differences from "lisa": empty/empty scores 0 not 1, no epsilons; F-LMM also feeds only the first
  sentence of each object (mmdet `text_mode='select_first'`), again the loader's job. mmdet reports
  percentages; we report fractions.

precision@X (X ∈ 0.5…0.9) is not computed by LISA, GLaMM or mmdet. We use the RIS convention of
LAVT (`yz93/LAVT-RIS` `test.py::evaluate`): `seg_correct += (this_iou >= X)` with `this_iou = I / U`
in float64 — a **≥** comparison on the epsilon-free IoU. Empty/empty follows the protocol (1 for
"lisa", 0 for "flmm"; LAVT itself uses 0).

Zero records raise ValueError: there is no metric of an empty split (upstream would print 0 or NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gcgbench.api.types import RLE
from gcgbench.metrics.masks import MaskSizeError, intersections_unions

RES_PROTOCOLS = ("lisa", "flmm")
DEFAULT_PROTOCOL = "lisa"
PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
LISA_IOU_EPSILON = 1e-5  # acc_iou += intersection_i / (union_i + 1e-5)
LISA_CIOU_EPSILON = 1e-10  # intersection_meter.sum / (union_meter.sum + 1e-10)
LISA_COUNT_EPSILON = 1e-5  # AverageMeter.all_reduce: avg = sum / (count + 1e-5)


@dataclass(frozen=True)
class ResSample:
    """One referring expression: its prediction (None = the model gave no mask) and its truth mask."""

    sample_id: str
    image_id: str | int
    prediction: RLE | None
    truth: RLE


@dataclass(frozen=True)
class ResStats:
    """Per-expression statistics, columnar; index i belongs to `sample_ids[i]`.

    `intersection`, `union`: exact pixel counts (int64). `iou`: the per-expression term the protocol's
    gIoU averages (float64 holding the upstream float32 value). `image_ids` are the clusters for a
    clustered bootstrap.
    """

    protocol: str
    sample_ids: tuple[str, ...]
    image_ids: tuple[str | int, ...]
    intersection: np.ndarray
    union: np.ndarray
    iou: np.ndarray

    def __len__(self) -> int:
        return len(self.sample_ids)

    def per_sample(self) -> list[dict[str, Any]]:
        """One JSON-native dict per expression, in input order."""
        return [
            {
                "sample_id": sample_id,
                "image_id": image_id,
                "intersection": int(inter),
                "union": int(union),
                "iou": float(iou),
            }
            for sample_id, image_id, inter, union, iou in zip(
                self.sample_ids, self.image_ids, self.intersection, self.union, self.iou
            )
        ]


@dataclass(frozen=True)
class ResResult:
    """Metrics of a whole split plus the statistics they came from."""

    protocol: str
    metrics: dict[str, float]
    stats: ResStats

    def metric_config(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "precision_thresholds": list(PRECISION_THRESHOLDS),
            "precision_comparison": ">=",
        }


def check_protocol(protocol: str) -> str:
    if protocol not in RES_PROTOCOLS:
        raise ValueError(f"unknown RES protocol {protocol!r}; choose one of {', '.join(RES_PROTOCOLS)}")
    return protocol


def pair_counts(prediction: RLE | None, truth: RLE, what: str) -> tuple[int, int]:
    """(I, U) of one prediction and its truth; None counts as an empty prediction.

    Raises MaskSizeError naming `what` when the two sizes differ.
    """
    if prediction is None:
        return 0, truth.area()
    if prediction.size != truth.size:
        raise MaskSizeError(
            f"{what}: prediction size {list(prediction.size)} != truth size {list(truth.size)} (height, width)"
        )
    inter, union = intersections_unions([prediction], [truth])
    return int(inter[0, 0]), int(union[0, 0])


def expression_iou(intersection: np.ndarray, union: np.ndarray, protocol: str) -> np.ndarray:
    """The per-expression IoU term of `protocol`'s gIoU, float64 holding upstream's float32 value.

    lisa: fl32(I) / (fl32(U) + fl32(1e-5)) + [U == 0];  flmm: fl32(I) / fl32(U), 0 where U == 0.
    """
    check_protocol(protocol)
    inter32 = np.asarray(intersection, dtype=np.float32)
    union32 = np.asarray(union, dtype=np.float32)
    empty = np.asarray(union) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if protocol == "lisa":
            iou = (inter32 / (union32 + np.float32(LISA_IOU_EPSILON))).astype(np.float64)
            return iou + empty
        iou = (inter32 / union32).astype(np.float64)
    iou[empty] = 0.0
    return iou


def compute_stats(samples: Sequence[ResSample], protocol: str = DEFAULT_PROTOCOL) -> ResStats:
    """Exact I and U of every expression, and its protocol IoU term. Raises ValueError on no samples."""
    check_protocol(protocol)
    if not samples:
        raise ValueError("no RES samples to score")
    counts = [pair_counts(s.prediction, s.truth, f"sample {s.sample_id!r}") for s in samples]
    intersection = np.array([c[0] for c in counts], dtype=np.int64)
    union = np.array([c[1] for c in counts], dtype=np.int64)
    return ResStats(
        protocol=protocol,
        sample_ids=tuple(s.sample_id for s in samples),
        image_ids=tuple(s.image_id for s in samples),
        intersection=intersection,
        union=union,
        iou=expression_iou(intersection, union, protocol),
    )


def aggregate(stats: ResStats, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, float]:
    """cIoU, gIoU and precision@X over `stats[indices]` (repeats allowed; None = all expressions).

    Formulas per protocol are in the module docstring. Raises ValueError on an empty index set.
    """
    picked = np.arange(len(stats)) if indices is None else np.asarray(indices, dtype=np.int64)
    if picked.size == 0:
        raise ValueError("cannot aggregate RES metrics over zero expressions")
    inter, union, iou = stats.intersection[picked], stats.union[picked], stats.iou[picked]
    total_inter, total_union, count = float(inter.sum()), float(union.sum()), picked.size
    if stats.protocol == "lisa":
        ciou = total_inter / (total_union + LISA_CIOU_EPSILON)
        giou = float(iou.sum()) / (count + LISA_COUNT_EPSILON)
        empty_score = 1.0
    else:
        ciou = total_inter / total_union if total_union > 0 else float("nan")
        giou = float(iou.sum()) / count
        empty_score = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        exact_iou = inter / union.astype(np.float64)
    exact_iou[union == 0] = empty_score
    metrics = {"ciou": ciou, "giou": giou}
    for threshold in PRECISION_THRESHOLDS:
        metrics[f"precision_{threshold}"] = float(np.count_nonzero(exact_iou >= threshold)) / count
    return metrics


def evaluate(samples: Sequence[ResSample], protocol: str = DEFAULT_PROTOCOL) -> ResResult:
    """Score a split: `compute_stats` then `aggregate` over every expression."""
    stats = compute_stats(samples, protocol)
    return ResResult(protocol=protocol, metrics=aggregate(stats), stats=stats)
