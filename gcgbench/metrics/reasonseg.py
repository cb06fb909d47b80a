"""ReasonSeg gIoU and cIoU: LISA `train_ds.py::validate` on masks with "ignore" pixels.

Sources (dvlab-research/LISA @3cb2d43): train_ds.py:523 `validate` (:560 the U == 0 rule, :571 cIoU),
utils/utils.py:116 `intersectionAndUnionGPU`, utils/utils.py:52/73 `AverageMeter` / `all_reduce`.

LISA scores ReasonSeg with the same loop as RefCOCO (our RES "lisa" protocol, `gcgbench.metrics.res`),
one sample per image. The only difference is the ground truth's value 255: `intersectionAndUnionGPU(
output, target, K=2, ignore_index=255)` (LISA `utils/utils.py`) first sets `output[target == 255] = 255`,
so an ignored pixel counts in neither the prediction's nor the target's histogram. With P the predicted
pixels, T the target (value 1) and G the ignored (value 255) pixels of one image, T ∩ G = ∅:

    I = |P ∩ T|          U = |P \\ G| + |T| − I = |P ∪ T| − |P ∩ G|

and then, unchanged from the RES "lisa" protocol (`res.expression_iou`, `res.aggregate`):

    iou_e = fl32(I) / (fl32(U) + fl32(1e-5)) + [U == 0]     gIoU = Σ iou_e / (N + 1e-5)
    cIoU  = Σ I / (Σ U + 1e-10)

`U == 0` (nothing predicted outside the ignored pixels and no target pixel) scores 1.0, LISA's
"no-object target" rule. This module only computes (I, U); the arithmetic is `res`'s.

Protocol "flmm" — F-LMM `scripts/reason_seg.py` (wusize/F-LMM @034d26e), which scores its frozen models on
ReasonSeg val with the same `intersectionAndUnionGPU` but its own averages: gIoU = mean(I / (U + 1e-12))
(U = 0 scores 0) and cIoU = mean(I) / (mean(U) + 1e-12) — the RES "flmm" arithmetic (`res.expression_iou`
float32 I/U with 0 at U = 0, gIoU = Σ/N, cIoU = ΣI/ΣU) up to its float32 means (≲ 1e-7 relative); where
every U is 0 F-LMM prints cIoU 0 and we NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gcgbench.api.types import RLE
from gcgbench.metrics import res
from gcgbench.metrics.masks import MaskSizeError, intersections_unions

METRICS = ("giou", "ciou")
PROTOCOLS = ("lisa", "flmm")


@dataclass(frozen=True)
class ReasonSegSample:
    """One image: the prediction (None = no mask), its target pixels and its ignored pixels (disjoint)."""

    sample_id: str
    image_id: str
    prediction: RLE | None
    target: RLE
    ignore: RLE


def ignore_counts(prediction: RLE | None, target: RLE, ignore: RLE, what: str) -> tuple[int, int]:
    """(I, U) of `intersectionAndUnionGPU(..., ignore_index=255)`'s foreground class; None = empty prediction."""
    if target.size != ignore.size:
        raise MaskSizeError(f"{what}: target size {list(target.size)} != ignore size {list(ignore.size)}")
    if prediction is None:
        return 0, target.area()
    if prediction.size != target.size:
        raise MaskSizeError(f"{what}: prediction size {list(prediction.size)} != truth size {list(target.size)} "
                            "(height, width)")
    inter, union = intersections_unions([prediction], [target, ignore])
    return int(inter[0, 0]), int(union[0, 0] - inter[0, 1])


def compute_stats(samples: Sequence[ReasonSegSample], protocol: str = "lisa") -> res.ResStats:
    """Per-image I, U and the protocol's per-image IoU term, as RES statistics. ValueError on no samples
    or an unknown protocol."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown ReasonSeg protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if not samples:
        raise ValueError("no ReasonSeg samples to score")
    counts = [ignore_counts(s.prediction, s.target, s.ignore, f"sample {s.sample_id!r}") for s in samples]
    intersection = np.array([c[0] for c in counts], dtype=np.int64)
    union = np.array([c[1] for c in counts], dtype=np.int64)
    return res.ResStats(protocol=protocol, sample_ids=tuple(s.sample_id for s in samples),
                        image_ids=tuple(s.image_id for s in samples), intersection=intersection, union=union,
                        iou=res.expression_iou(intersection, union, protocol))


def aggregate(stats: res.ResStats, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, float]:
    """gIoU and cIoU over `stats[indices]` (repeats allowed), by `res.aggregate`'s arithmetic of the protocol."""
    found = res.aggregate(stats, indices)
    return {name: found[name] for name in METRICS}
