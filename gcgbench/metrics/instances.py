"""Instance segmentation prompted per category (a&s `aas/instance_seg.py` + `aas/eval_instance_seg.py`).

Mask AP is pycocotools' `COCOeval(cocoGt, cocoGt.loadRes(dt), 'segm')` → `evaluate(); accumulate()`, exactly as
`eval_instance_seg.py` runs it; `stats[0]` = AP (IoU .50:.05:.95), `stats[1]` = AP50, `stats[2]` = AP75,
`stats[3..5]` = AP small / medium / large (−1 where a range has no ground truth, as COCOeval reports it; stored
as NaN here). Detections are `{image_id, category_id, segmentation (RLE), score}`; with no detection at all
every AP is 0 (COCOeval cannot load an empty result list).

Point accuracy is metrics/point_accuracy.py over the detections that carry a point, each against the union of
its image's ground-truth masks of its category (`eval_instance_seg.py` "point accuracy evaluation", crowd
annotations included as upstream unites every annotation of the category); a detection whose category has no
ground truth in its image is a miss (upstream would raise a KeyError).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

from gcgbench.api.types import RLE
from gcgbench.metrics.point_accuracy import point_accuracy

AP_KEYS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")


@dataclass(frozen=True)
class GtInstance:
    image_id: Any
    category_id: int
    mask: RLE
    iscrowd: int = 0
    annotation_id: int | None = None


@dataclass(frozen=True)
class Detection:
    image_id: Any
    category_id: int
    mask: RLE
    score: float = 1.0
    point: Sequence[int] | None = None


def mask_ap(images: Sequence[tuple[Any, int, int]], categories: Sequence[tuple[int, str]],
            truths: Sequence[GtInstance], detections: Sequence[Detection]) -> dict[str, float]:
    """COCOeval segm stats of `detections` against `truths`; images = (image_id, height, width)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not detections:
        return {key: 0.0 for key in AP_KEYS}
    ids = {image_id: index + 1 for index, (image_id, _, _) in enumerate(images)}   # COCO wants int image ids
    annotations = []
    for number, truth in enumerate(truths):
        annotations.append({"id": number + 1, "image_id": ids[truth.image_id], "category_id": truth.category_id,
                            "segmentation": truth.mask.to_coco(),
                            "area": float(truth.mask.area()), "iscrowd": int(truth.iscrowd),
                            "bbox": _bbox(truth.mask)})
    dataset = {"images": [{"id": ids[i], "height": h, "width": w} for i, h, w in images],
               "categories": [{"id": c, "name": n} for c, n in categories], "annotations": annotations}
    results = [{"image_id": ids[d.image_id], "category_id": d.category_id, "score": float(d.score),
                "segmentation": d.mask.to_coco()} for d in detections]
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = dataset
        ground.createIndex()
        evaluation = COCOeval(ground, ground.loadRes(results), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {key: (float(v) if v >= 0 else math.nan) for key, v in zip(AP_KEYS, evaluation.stats[:6])}


def instance_point_accuracy(truths: Sequence[GtInstance], detections: Sequence[Detection]) -> float:
    """Point accuracy of the detections with a point (NaN when none has one)."""
    by_key: dict[tuple[Any, int], list[RLE]] = {}
    for truth in truths:
        by_key.setdefault((truth.image_id, truth.category_id), []).append(truth.mask)
    pointed = [d for d in detections if d.point is not None]
    hits = []
    for detection in pointed:
        masks = by_key.get((detection.image_id, detection.category_id))
        hits.append(bool(masks) and point_accuracy([detection.point], [masks]).hits[0])
    return sum(hits) / len(hits) if hits else math.nan


def _bbox(mask: RLE) -> list[float]:
    from pycocotools import mask as mask_utils

    return [float(v) for v in mask_utils.toBbox(mask.to_coco())]
