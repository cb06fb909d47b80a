"""Instance segmentation prompted per category, scored as a&s does (`aas/instance_seg.py`, `eval_instance_seg.py`).

Docs (data/coco_instances.py): one per COCO image with annotations; the request (kind `segment_categories`) gives
the task prompt (a&s: "Describe the image in detail.") and the image's ground-truth categories. A prediction lists
one phrase per predicted instance (its one mask) with, in `extras`, `category_ids` (one per phrase, required),
`scores` (default 1.0) and, for a&s backends, `points` ([x, y] or null). Metrics (metrics/instances.py): COCOeval
segm AP, AP50, AP75 and the a&s point accuracy. The ground-truth prediction answers every non-crowd instance with
its own mask, score 1 and a point inside it (its first pixel in row-major order): AP = point accuracy = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import Doc, Phrase, Prediction, Request
from gcgbench.data.coco_instances import read_instance_docs
from gcgbench.data.predictions import read_predictions
from gcgbench.metrics import instances
from gcgbench.metrics.point_accuracy import prediction_points
from gcgbench.tasks.base import SpecTask

METRICS = ("ap", "ap50", "ap75", "point_accuracy")


@dataclass(frozen=True)
class InstancesTask(SpecTask):
    """Files: `instances` (COCO instances json), `images` (their folder)."""

    request_kind = "segment_categories"

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return [paths.file(self.spec, "instances")]

    def docs(self, paths: DataPaths) -> list[Doc]:
        return read_instance_docs(paths.file(self.spec, "instances"), paths.file(self.spec, "images"))

    def requests(self, doc: Doc) -> Request:
        categories = [dict(c) for c in doc.inputs["categories"]]
        return Request(doc.doc_id, "segment_categories", self.spec.prompt, doc.image_path, doc.height, doc.width,
                       {"categories": categories})

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        phrases, category_ids, points = [], [], []
        for phrase, instance in zip(doc.phrases, doc.truth["instances"]):
            if instance["iscrowd"]:
                continue
            ys, xs = np.nonzero(phrase.masks[0].decode())
            phrases.append(Phrase(phrase.text, phrase.masks))
            category_ids.append(instance["category_id"])
            points.append([int(xs[0]), int(ys[0])] if len(xs) else None)
        extras = {"category_ids": category_ids, "scores": [1.0] * len(phrases), "points": points}
        return Prediction(doc.doc_id, "", tuple(phrases), extras=extras)

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        return read_predictions(path, docs, self.name)

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no images to score")
        truths, detections, rows = [], [], []
        categories: dict[int, str] = {}
        for doc in docs:
            for phrase, instance in zip(doc.phrases, doc.truth["instances"]):
                truths.append(instances.GtInstance(doc.doc_id, instance["category_id"], phrase.masks[0],
                                                   instance["iscrowd"]))
                categories[instance["category_id"]] = phrase.text
            found = _detections(doc, predictions.get(doc.doc_id))
            detections.extend(found)
            rows.append({"doc_id": doc.doc_id, "instances": len(doc.phrases), "detections": len(found)})
        images = [(doc.doc_id, doc.height, doc.width) for doc in docs]
        metrics = instances.mask_ap(images, sorted(categories.items()), truths, detections)
        metrics["point_accuracy"] = instances.instance_point_accuracy(truths, detections)
        pointed = sum(d.point is not None for d in detections)
        notes = [f"{len(detections)} detection(s) on {len(docs)} image(s); {pointed} with an a&s point"]
        if not pointed:
            notes.append("no detection carries a point: point_accuracy is undefined (NaN)")
        config = {"ap": "pycocotools COCOeval segm (aas/eval_instance_seg.py); ap_small/medium/large NaN where "
                        "no ground truth falls in the area range",
                  "point_accuracy": "a&s: detections with a point inside the union of their image's ground-truth "
                                    "masks of their category (aas/eval_instance_seg.py)"}
        return TaskResult(task=self.name, version=self.version, metrics={k: float(v) for k, v in metrics.items()},
                          n_samples=len(docs), metric_config=config, per_sample=rows, notes=notes)


def _detections(doc: Doc, prediction: Prediction | None) -> list[instances.Detection]:
    if prediction is None:
        raise InputError("predictions", f"doc {doc.doc_id}", "no prediction for this image")
    where = f"prediction for doc {doc.doc_id!r}"
    extras = prediction.extras or {}
    ids, scores = extras.get("category_ids"), extras.get("scores")
    if not isinstance(ids, list) or len(ids) != len(prediction.phrases):
        raise InputError(where, "extras.category_ids", "needs one category id per phrase")
    if scores is None:
        scores = [1.0] * len(ids)
    if not isinstance(scores, list) or len(scores) != len(ids):
        raise InputError(where, "extras.scores", "needs one score per phrase")
    try:
        points = prediction_points(extras) or [None] * len(ids)
    except ValueError as error:
        raise InputError(where, "extras.points", str(error)) from None
    out = []
    for index, phrase in enumerate(prediction.phrases):
        if not phrase.masks:
            continue
        mask = phrase.masks[0]
        if mask.size != (doc.height, doc.width):
            raise InputError(where, f"phrases[{index}]", f"RLE size {list(mask.size)} != image size {[doc.height, doc.width]}")
        score = scores[index]
        if not isinstance(ids[index], int) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise InputError(where, f"phrases[{index}]", "category id must be an int and score a finite number")
        point = points[index] if index < len(points) else None
        if point is not None and not (0 <= point[0] < doc.width and 0 <= point[1] < doc.height):
            raise InputError(where, f"extras.points[{index}]", f"point {point} lies outside the image")
        out.append(instances.Detection(doc.doc_id, ids[index], mask, float(score), point))
    return out
