"""A plain restatement of GLaMM's GCG mask metrics on dense numpy masks, as the official script computes them.

Written from reading mbzuai-oryx/groundingLMM `eval/gcg/evaluate.py` and `eval/utils.py`: per-pair
`np.sum(and) / np.sum(or)` IoU, the `np.argmax` / `np.delete` mIoU loop, the recall loop with its early
`break` and the per-image `try/except`, and AP50 from real pycocotools COCO/COCOeval objects built in
memory. It is deliberately slow and literal: it is the oracle the fast RLE implementation is tested
against, not a second implementation of our own rules.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass
class DenseImage:
    """One image as the official files describe it: caption labels, mask annotations, one prediction file."""

    image_id: str
    height: int
    width: int
    gt_labels: list[str] = field(default_factory=list)
    gt_masks: list[np.ndarray] = field(default_factory=list)  # mask-file order
    pred_phrases: list[str] = field(default_factory=list)
    pred_masks: list[np.ndarray] = field(default_factory=list)  # `pred_masks` order of the prediction file


def pixel_iou(first: np.ndarray, second: np.ndarray) -> float:
    """`eval/utils.py::compute_iou`: no epsilon, so two empty masks give 0/0 = NaN."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(np.logical_and(first, second)) / np.sum(np.logical_or(first, second))


def pairwise_iou(rows: Sequence[np.ndarray], columns: Sequence[np.ndarray]) -> np.ndarray:
    table = np.zeros((len(rows), len(columns)))
    for i, row_mask in enumerate(rows):
        for j, column_mask in enumerate(columns):
            table[i, j] = pixel_iou(row_mask, column_mask)
    return table


def image_miou(pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray]) -> float:
    """`compute_miou`: repeatedly take the argmax of predicted × GT IoU while the max is > 0, delete its row and column."""
    table = pairwise_iou(pred_masks, gt_masks)
    taken = []
    while table.size > 0 and np.max(table) > 0:
        row, column = np.unravel_index(np.argmax(table, axis=None), table.shape)
        taken.append(table[row, column])
        table = np.delete(table, row, axis=0)
        table = np.delete(table, column, axis=1)
    return np.mean(taken) if taken else 0.0


def official_miou(images: Sequence[DenseImage]) -> float:
    """`evaluate_mask_miou`: mean over images of `compute_miou`."""
    scores = [image_miou(image.pred_masks, image.gt_masks) for image in images]
    return np.mean(scores) if scores else 0.0


def best_matches(
    image: DenseImage, similarity: Callable[[str, str], float], iou_threshold: float = 0.5, text_threshold: float = 0.5
) -> list[tuple[int, int]]:
    """`find_best_matches`: GT × predicted IoU, label × phrase similarity, greedy with an early break."""
    ious = pairwise_iou(image.gt_masks, image.pred_masks)
    sims = np.zeros((len(image.gt_labels), len(image.pred_phrases)))
    for i, label in enumerate(image.gt_labels):
        for j, phrase in enumerate(image.pred_phrases):
            sims[i, j] = similarity(label, phrase)
    found = []
    while ious.size > 0:
        cell = np.unravel_index(np.argmax(ious), ious.shape)
        if ious[cell] < iou_threshold or sims[cell] < text_threshold:
            break
        found.append(cell)
        ious[cell[0], :] = 0
        ious[:, cell[1]] = 0
        sims[cell[0], :] = 0
        sims[:, cell[1]] = 0
    return found


def official_recall(images: Sequence[DenseImage], similarity: Callable[[str, str], float]) -> float:
    """`evaluate_recall_with_mapping`: labels counted before matching; any per-image exception is swallowed."""
    true_positives = 0
    actual_positives = 0
    for image in images:
        try:
            actual_positives += len(image.gt_labels)
            true_positives += len(best_matches(image, similarity))
        except Exception:
            pass
    return true_positives / actual_positives if actual_positives > 0 else 0


def _compressed_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def official_coco_eval(images: Sequence[DenseImage]):
    """COCOeval("segm") with catIds=[1] on an in-memory GT instance file and result list, as `main()` builds them.

    Raises IndexError (inside `loadRes`) when no image has a predicted mask, as the official script does.
    """
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations = []
    for image in images:
        for mask in image.gt_masks:
            rle = _compressed_rle(mask)
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": image.image_id,
                "category_id": 1,
                "segmentation": rle,
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "iscrowd": 0,
            })
    dataset = {
        "images": [{"id": image.image_id, "height": image.height, "width": image.width} for image in images],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "object"}],
    }
    results = [
        {"image_id": image.image_id, "category_id": 1, "segmentation": _compressed_rle(mask), "score": 1.0}
        for image in images
        for mask in image.pred_masks
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluation = COCOeval(coco_gt, coco_dt, "segm")
        evaluation.params.catIds = [1]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def official_ap50(images: Sequence[DenseImage]) -> float:
    """`stats[1]`: AP at IoU 0.50, area all, maxDets 100."""
    return float(official_coco_eval(images).stats[1])


def official_cosine(encode: Callable[[Sequence[str]], np.ndarray]) -> Callable[[str, str], float]:
    """`text_similarity_bert`: embed each phrase alone, then sklearn-style cosine of the two vectors."""

    def similarity(first: str, second: str) -> float:
        a = np.asarray(encode([first])[0], dtype=np.float64)
        b = np.asarray(encode([second])[0], dtype=np.float64)
        norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
        return float(a @ b / ((norm_a or 1.0) * (norm_b or 1.0)))

    return similarity
