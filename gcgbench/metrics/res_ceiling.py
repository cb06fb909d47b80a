"""The RES ceiling of a proposal set: the best proposal per expression (a&s `aas/upper_bound_res.py`).

a&s picks, for each referring expression, one mask proposal of the image (the best-scoring one containing the
attention point). Whatever the point, it can do no better than the proposal that best matches the ground truth;
this diagnostic scores that choice. Per expression e with ground truth G_e and the image's proposals P_1 … P_k:

    j*   = argmax_j IoU(G_e, P_j)  (first maximum in proposal order, best score first);
    I_e  = |G_e ∩ P_j*|, U_e = |G_e ∪ P_j*|, IoU_e = I_e / U_e;   no proposal overlapping G_e (or none at all):
           IoU_e = 0, I_e = 0, U_e = |G_e| (upstream's defaults `max_iou = 0`, `max_union = gt_mask.sum()`);
    gIoU = mean_e IoU_e,  cIoU = Σ_e I_e / Σ_e U_e   (upstream prints mean(I) / mean(U), the same ratio).

Upstream's script (@ 651d68d0) keeps this maximum over the proposals its tokens' points select, commented out
next to the copula rule it finally runs; the ceiling here is over all proposals of the image, the bound for a
given proposal set whatever the attention does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gcgbench.api.types import RLE


@dataclass(frozen=True)
class CeilingResult:
    ious: tuple[float, ...]
    intersections: tuple[int, ...]
    unions: tuple[int, ...]
    best: tuple[int | None, ...]          # index of the chosen proposal, None when none overlaps

    @property
    def giou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else float("nan")

    @property
    def ciou(self) -> float:
        total = sum(self.unions)
        return sum(self.intersections) / total if total else float("nan")


def proposal_ceiling(truths: Sequence[RLE], proposals: Sequence[Sequence[RLE]]) -> CeilingResult:
    """`truths[e]` and the proposals of its image `proposals[e]` (best score first, all of its size)."""
    if len(truths) != len(proposals):
        raise ValueError(f"{len(truths)} expressions, {len(proposals)} proposal lists")
    ious, intersections, unions, best = [], [], [], []
    decoded: dict[int, np.ndarray] = {}
    for truth, candidates in zip(truths, proposals):
        gt = truth.decode().astype(bool)
        chosen, top = None, (0.0, 0, int(gt.sum()))
        for index, proposal in enumerate(candidates):
            if proposal.size != truth.size:
                raise ValueError(f"proposal size {list(proposal.size)} != ground-truth size {list(truth.size)}")
            mask = decoded.setdefault(id(proposal), proposal.decode().astype(bool))
            intersection = int((gt & mask).sum())
            union = int((gt | mask).sum())
            iou = intersection / union if union else 0.0
            if iou > top[0]:
                chosen, top = index, (iou, intersection, union)
        best.append(chosen)
        ious.append(top[0])
        intersections.append(top[1])
        unions.append(top[2])
    return CeilingResult(tuple(ious), tuple(intersections), tuple(unions), tuple(best))
