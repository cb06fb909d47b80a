"""Where referring segmentation fails: IoU by expression length, object size and location words.

Input: the run's per-sample rows (`samples/<task>.jsonl`: I, U, the protocol's IoU term, the expression;
`tasks/res.py::_per_sample`), the docs (GT mask area) and, when available, the predictions (the area of the
scored mask, `tasks.res.prediction_mask`). Per group: n, mean IoU (= gIoU over the group, expression
weighted, the protocol's own IoU term), cIoU = ΣI / ΣU (GLaMM/LISA `infer_and_evaluate.py`), and the share
with IoU ≥ 0.5. A failure is IoU < 0.5; an *empty* failure predicted no pixel (no mask, or an empty one).
Without predictions the predicted area is recovered from the rows as |P| = U − |G| + I.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.types import Doc, Prediction
from gcgbench.views.diagnose.gcg import size_group
from gcgbench.tasks.res import prediction_mask

FAILURE_IOU = 0.5
# spatial words of RefCOCO-style expressions (RefCOCO testA/testB are full of them)
LOCATION_WORDS = frozenset("""left right top bottom behind front middle center centre above below under underneath
beneath over upper lower back near nearest closest far farthest furthest next beside corner side leftmost
rightmost topmost between edge""".split())
LENGTH_GROUPS = ((1, 2, "1-2 words"), (3, 4, "3-4 words"), (5, 7, "5-7 words"), (8, None, "8+ words"))


@dataclass(frozen=True)
class ResSampleDiagnosis:
    doc_id: str
    expression: str
    intersection: int
    union: int
    iou: float
    gt_area: int | None
    predicted_area: int | None
    location_word: str | None  # the first location word of the expression

    @property
    def failed(self) -> bool:
        return not self.iou >= FAILURE_IOU

    @property
    def empty(self) -> bool:
        return self.predicted_area == 0


def words(expression: str) -> list[str]:
    return re.findall(r"[a-z]+", expression.lower())


def location_word(expression: str) -> str | None:
    return next((word for word in words(expression) if word in LOCATION_WORDS), None)


def length_group(expression: str) -> str:
    count = len(words(expression))
    for low, high, name in LENGTH_GROUPS:
        if count >= low and (high is None or count <= high):
            return name
    return "0 words"


def diagnose_res(rows: Sequence[Mapping[str, Any]], docs: Mapping[str, Doc],
                 predictions: Mapping[str, Prediction] | None) -> list[ResSampleDiagnosis]:
    samples = []
    for row in rows:
        doc_id = str(row["doc_id"])
        doc = docs.get(doc_id)
        gt_area = doc.phrases[0].masks[0].area() if doc is not None and doc.phrases and doc.phrases[0].masks else None
        intersection, union = int(row["intersection"]), int(row["union"])
        predicted_area = None
        if predictions is not None and doc_id in predictions:
            mask = prediction_mask(predictions[doc_id])
            predicted_area = 0 if mask is None else mask.area()
        elif gt_area is not None:
            predicted_area = union - gt_area + intersection
        expression = str(row.get("expression") or (doc.inputs.get("expression") if doc else "") or "")
        samples.append(ResSampleDiagnosis(doc_id, expression, intersection, union, float(row["iou"]), gt_area,
                                          predicted_area, location_word(expression)))
    return samples


def group_stats(name: str, members: Sequence[ResSampleDiagnosis]) -> dict[str, Any]:
    iou = np.array([m.iou for m in members], dtype=np.float64)
    union = sum(m.union for m in members)
    return {"group": name, "n": len(members), "mean_iou": float(iou.mean()),
            "ciou": sum(m.intersection for m in members) / union if union else float("nan"),
            "share_iou_50": float((iou >= FAILURE_IOU).mean())}


def summarise_res(samples: Sequence[ResSampleDiagnosis]) -> dict[str, Any]:
    """The breakdowns and the failure summary of `diagnose_res`'s samples (JSON-native)."""
    def grouped(key, order) -> list[dict[str, Any]]:
        found: dict[str, list[ResSampleDiagnosis]] = {}
        for sample in samples:
            found.setdefault(key(sample), []).append(sample)
        names = [*order, *sorted(set(found) - set(order))]
        return [group_stats(name, found[name]) for name in names if name in found]

    failures = [s for s in samples if s.failed]
    known = [s for s in failures if s.predicted_area is not None]
    empty = sum(s.empty for s in known)
    used = Counter(s.location_word for s in samples if s.location_word)
    return {
        "overall": group_stats("all", samples) if samples else None,
        "breakdowns": {
            "expression_length": grouped(lambda s: length_group(s.expression), [n for _, _, n in LENGTH_GROUPS]),
            "object_size": grouped(lambda s: size_group(s.gt_area), ["small", "medium", "large", "no GT mask"]),
            "location_word": grouped(lambda s: "with a location word" if s.location_word else "without",
                                     ["with a location word", "without"]),
        },
        "failures": {
            "count": len(failures), "threshold_iou": FAILURE_IOU, "empty_masks": empty,
            "empty_share": empty / len(known) if known else None,
            "unknown_predicted_area": len(failures) - len(known),
        },
        "location_words_used": dict(used.most_common()),
    }


def sample_buckets(sample: ResSampleDiagnosis) -> list[str]:
    """Viewer filter labels of one expression."""
    if not sample.failed:
        return ["iou_50"]
    return ["failure", "empty_mask"] if sample.empty else ["failure"]
