"""GCG (grounded conversation generation) mask metrics of GLaMM's `eval/gcg/evaluate.py`.

Four numbers per split, each equal to the official script on the same inputs (mbzuai-oryx/groundingLMM,
`eval/gcg/evaluate.py` + `eval/utils.py`, and cocodataset/cocoapi `cocoeval.py`):

- `ap50`: COCOeval("segm") with catIds=[1], every predicted mask scored 1.0, `stats[1]`;
- `miou`: greedy max-IoU pairing per image, mean over paired masks, then mean over images;
- `mask_recall`: greedy IoU ≥ 0.5 and text similarity ≥ 0.5 pairing with the official early stop and
  exception semantics, Σ TP / Σ GT labels;
- `mask_recall_max_matching` (ours): maximum one-to-one matching of admissible pairs, same denominator.

How our types map onto the official files:
- a doc is an image of the caption file; GT labels are `doc.phrases` texts; GT masks are `Doc.masks()`
  (phrase masks, then `extra_masks`), GT label i going with GT mask i by index as in the official code;
- predicted phrases are `prediction.phrases` texts; predicted masks are `Prediction.masks()` order,
  predicted phrase j going with predicted mask j by index;
- a phrase with more than one mask counts as ONE mask, the union of its masks (GLaMM's own training
  loader sums a phrase's masks the same way); with one mask per phrase this is exactly `masks()`;
- GT masks are iscrowd 0 (the GranD-f reader rejects crowd masks) and their area is the mask area;
- a doc with no entry in `predictions` is scored as an empty prediction and listed in
  `missing_predictions` (the official script aborts with FileNotFoundError instead);
- predictions for ids that are not docs are ignored.

Official quirks and what we report:
- The whole split has no predicted mask: pycocotools' `loadRes` fails (IndexError on `anns[0]`) and
  the official script prints no metric at all. We report AP50 as COCOeval would compute it on an
  empty detection list (0.0, or -1.0 with no GT) and set `no_predicted_masks`; mIoU and recall are
  computed as usual (all images score 0).
- No GT mask in the whole split: COCOeval's AP50 is -1.0; we return -1.0 too.
- NaN IoU (empty vs empty mask): see `gcg_matching.miou_image_score` (image mIoU 0.0) and
  `official_recall_matches` (the pair is taken first and may match).
- Per-image IndexError in recall: the image gets 0 TP and keeps its label count
  (`GcgImageStats.recall_exception` says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.metrics.gcg_matching import (
    coco_average_precision,
    coco_detection_matches,
    miou_image_score,
    official_recall_matches,
    max_matching_recall_matches,
)
from gcgbench.metrics.masks import check_sizes, intersections_unions
from gcgbench.metrics.text_similarity import PhraseEncoder, PhraseSimilarity

METRIC_NAMES = ("ap50", "miou", "mask_recall", "mask_recall_max_matching")
# Former names of metrics, still read from older results.json files and per-sample rows (never written):
# `mask_recall_strict` read as the stricter metric but is the larger one (the maximum matching).
RENAMED = {"mask_recall_strict": "mask_recall_max_matching", "recall_matches_strict": "recall_matches_max_matching"}


@dataclass(frozen=True)
class GcgImageStats:
    """What one image contributes to each metric; enough to recompute all four on any image resample."""

    doc_id: str
    n_gt_masks: int
    detection_matched: tuple[bool, ...]  # first 100 predicted masks in order: TP at IoU 0.5 (COCOeval)
    miou: float
    n_gt_labels: int
    recall_matches: int
    recall_matches_max_matching: int
    recall_exception: str | None = None


@dataclass(frozen=True)
class GcgStatsTable:
    """Columnar form of per-image statistics, built once so `aggregate` is vectorised for bootstraps."""

    sort_rank: np.ndarray  # position of each image's doc_id in sorted string order (COCOeval image order)
    n_gt_masks: np.ndarray
    miou: np.ndarray
    n_gt_labels: np.ndarray
    recall_matches: np.ndarray
    recall_matches_max_matching: np.ndarray
    detection_start: np.ndarray
    detection_count: np.ndarray
    detection_matched: np.ndarray  # all images' detection flags, concatenated in image order

    @classmethod
    def from_images(cls, images: Sequence[GcgImageStats]) -> "GcgStatsTable":
        ids = [image.doc_id for image in images]
        sort_rank = np.empty(len(ids), dtype=np.int64)
        sort_rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        counts = np.array([len(image.detection_matched) for image in images], dtype=np.int64)
        flags = [flag for image in images for flag in image.detection_matched]
        return cls(
            sort_rank=sort_rank,
            n_gt_masks=np.array([image.n_gt_masks for image in images], dtype=np.int64),
            miou=np.array([image.miou for image in images], dtype=np.float64),
            n_gt_labels=np.array([image.n_gt_labels for image in images], dtype=np.int64),
            recall_matches=np.array([image.recall_matches for image in images], dtype=np.int64),
            recall_matches_max_matching=np.array([image.recall_matches_max_matching for image in images], dtype=np.int64),
            detection_start=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(images) else counts,
            detection_count=counts,
            detection_matched=np.array(flags, dtype=bool),
        )


@dataclass(frozen=True)
class GcgMaskResult:
    """The four GCG mask metrics of a split, plus per-image statistics for resampling."""

    ap50: float
    miou: float
    mask_recall: float
    mask_recall_max_matching: float
    per_image: tuple[GcgImageStats, ...]  # in `docs` order
    similarity_model: str
    no_predicted_masks: bool  # the official script crashes in loadRes on such a split
    missing_predictions: tuple[str, ...]
    table: GcgStatsTable = field(repr=False, compare=False)

    def metrics(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in METRIC_NAMES}

    @property
    def recall_exception_images(self) -> tuple[str, ...]:
        """Doc ids whose official recall matching raised (0 TP, labels still counted)."""
        return tuple(image.doc_id for image in self.per_image if image.recall_exception)


def aggregate(
    per_image_stats: Sequence[GcgImageStats] | GcgStatsTable, indices: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """All four metrics over the images `indices` (repeats allowed, e.g. a bootstrap resample).

    - ap50 = COCO AP at IoU 0.5 over the detections of the chosen images, taken in the official tie
      order: images by sorted doc id (repeats of one image adjacent, as distinct images would be),
      then prediction order; -1.0 when the chosen images hold no GT mask;
    - miou = mean of per-image mIoU (0.0 for no image);
    - mask_recall = Σ TP / Σ GT labels (0.0 when there is no label), likewise mask_recall_max_matching.
    `aggregate(stats, range(n))` equals the full-split result.
    """
    table = per_image_stats if isinstance(per_image_stats, GcgStatsTable) else GcgStatsTable.from_images(per_image_stats)
    chosen = np.asarray(indices, dtype=np.int64).reshape(-1)
    in_coco_order = chosen[np.argsort(table.sort_rank[chosen], kind="stable")]
    # gather each chosen image's run of detection flags without a Python loop: output position k of an
    # image whose run starts at `output_start` in the result and `source_start` in the table reads
    # source_start + (k - output_start)
    counts = table.detection_count[in_coco_order]
    output_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    shift = np.repeat(table.detection_start[in_coco_order] - output_start, counts)
    flags = table.detection_matched[shift + np.arange(int(counts.sum()))]
    labels = int(table.n_gt_labels[chosen].sum())
    return {
        "ap50": coco_average_precision(flags, int(table.n_gt_masks[chosen].sum())),
        "miou": float(np.mean(table.miou[chosen])) if len(chosen) else 0.0,
        "mask_recall": int(table.recall_matches[chosen].sum()) / labels if labels else 0.0,
        "mask_recall_max_matching": int(table.recall_matches_max_matching[chosen].sum()) / labels if labels else 0.0,
    }


def score_gcg_masks(
    docs: Sequence[Doc],
    predictions: Mapping[str, Prediction],
    similarity: PhraseEncoder | PhraseSimilarity,
) -> GcgMaskResult:
    """Score a split: AP50, mIoU, official mask recall and max-matching mask recall (see the module docstring).

    `similarity` is an encoder (called ONCE on the unique GT labels and predicted phrases of the whole
    split) or a `PhraseSimilarity` that already covers those strings. Raises `MaskSizeError` when a
    mask's size differs from its doc's (height, width).
    """
    seen: set[str] = set()
    for doc in docs:
        if doc.doc_id in seen:
            raise InputError("docs", f"doc {doc.doc_id!r}", "duplicate doc_id in the split")
        seen.add(doc.doc_id)
    empty = {doc.doc_id: Prediction(doc.doc_id, "") for doc in docs if doc.doc_id not in predictions}
    paired = [(doc, predictions.get(doc.doc_id) or empty[doc.doc_id]) for doc in docs]

    if not isinstance(similarity, PhraseSimilarity):
        texts = [p.text for doc, prediction in paired for p in (*doc.phrases, *prediction.phrases)]
        similarity = PhraseSimilarity.from_encoder(similarity, texts)

    images = tuple(_score_image(doc, prediction, similarity) for doc, prediction in paired)
    table = GcgStatsTable.from_images(images)
    totals = aggregate(table, np.arange(len(images)))
    return GcgMaskResult(
        ap50=totals["ap50"],
        miou=totals["miou"],
        mask_recall=totals["mask_recall"],
        mask_recall_max_matching=totals["mask_recall_max_matching"],
        per_image=images,
        similarity_model=similarity.encoder_name,
        no_predicted_masks=not any(prediction.masks() for _, prediction in paired),
        missing_predictions=tuple(empty),
        table=table,
    )


@dataclass(frozen=True)
class ImageMatrices:
    """One image as the mask metrics see it: GT mask i goes with GT label i, predicted mask j with
    predicted phrase j, by index (`metric_masks` order)."""

    gt_masks: list[RLE]
    pred_masks: list[RLE]
    gt_labels: list[str]
    pred_labels: list[str]
    iou: np.ndarray  # GT masks × predicted masks, NaN where both masks are empty
    text_similarity: np.ndarray  # GT labels × predicted phrases


def image_matrices(doc: Doc, prediction: Prediction, similarity: PhraseSimilarity) -> ImageMatrices:
    """The masks, labels, IoU and similarity matrices every GCG mask metric of one image reads."""
    image_size = (doc.height, doc.width)
    _check_mask_sizes(doc.doc_id, "GT", doc.phrases, doc.extra_masks, image_size)
    _check_mask_sizes(doc.doc_id, "predicted", prediction.phrases, prediction.extra_masks, image_size)
    gt_masks = metric_masks(doc.phrases, doc.extra_masks)
    pred_masks = metric_masks(prediction.phrases, prediction.extra_masks)
    gt_labels = [phrase.text for phrase in doc.phrases]
    pred_labels = [phrase.text for phrase in prediction.phrases]
    intersection, union = intersections_unions(gt_masks, pred_masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = intersection / union.astype(np.float64)  # NaN where both masks are empty, as upstream
    return ImageMatrices(gt_masks, pred_masks, gt_labels, pred_labels, iou, similarity.matrix(gt_labels, pred_labels))


def _score_image(doc: Doc, prediction: Prediction, similarity: PhraseSimilarity) -> GcgImageStats:
    return image_stats(doc.doc_id, image_matrices(doc, prediction, similarity))


def image_stats(doc_id: str, matrices: ImageMatrices) -> GcgImageStats:
    """What one image contributes to each metric, from its matrices (`image_matrices`)."""
    gt_masks, gt_labels, iou, text_similarity = matrices.gt_masks, matrices.gt_labels, matrices.iou, matrices.text_similarity
    recall_matches, recall_exception = official_recall_matches(iou, text_similarity)
    return GcgImageStats(
        doc_id=doc_id,
        n_gt_masks=len(gt_masks),
        detection_matched=tuple(bool(flag) for flag in coco_detection_matches(iou)),
        miou=miou_image_score(iou),
        n_gt_labels=len(gt_labels),
        recall_matches=recall_matches,
        recall_matches_max_matching=max_matching_recall_matches(iou, text_similarity),
        recall_exception=recall_exception,
    )


def metric_masks(phrases: Sequence[Phrase], extra_masks: Sequence[RLE]) -> list[RLE]:
    """`masks()` order with each multi-mask phrase merged into the union of its masks."""
    return [_union(phrase.masks) for phrase in phrases if phrase.masks] + list(extra_masks)


def _union(masks: Sequence[RLE]) -> RLE:
    if len(masks) == 1:
        return masks[0]
    from pycocotools import mask as mask_utils

    merged = mask_utils.merge([mask.to_coco() for mask in masks], intersect=0)
    return RLE(masks[0].height, masks[0].width, merged["counts"].decode("ascii"))


def _check_mask_sizes(
    doc_id: str, side: str, phrases: Sequence[Phrase], extra_masks: Sequence[RLE], image_size: tuple[int, int]
) -> None:
    for index, phrase in enumerate(phrases):
        check_sizes(phrase.masks, image_size, f"doc {doc_id!r}: {side} phrases[{index}].masks")
    check_sizes(extra_masks, image_size, f"doc {doc_id!r}: {side} extra_masks")
