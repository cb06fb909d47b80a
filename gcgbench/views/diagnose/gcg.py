"""Why GCG mask recall was lost: every missed ground-truth phrase in exactly one bucket, TIDE-style.

GLaMM's `mask_recall` (`gcgbench.metrics.gcg`, mbzuai-oryx/groundingLMM `eval/gcg/evaluate.py::
evaluate_recall_with_mapping`) is Σ TP / Σ GT labels, TP = pairs (GT mask i, predicted mask j) its greedy
loop takes: IoU ≥ 0.5 and similarity(GT label i, predicted phrase j) ≥ 0.5, masks and texts paired by
index. A GT label is a *miss* when its row is not among the official pairs (all labels of an image whose
official loop raised IndexError are misses, as the official per-image `except` keeps 0 TP). So

    Σ_buckets count = Σ labels − Σ official TP = the misses of mask_recall, exactly.

Notation per image: IoU is GT masks (G) × predicted masks (M), S is GT labels (L) × predicted phrases (P),
"admissible" = (i, j) with i < min(G, L), j < min(M, P), IoU ≥ 0.5 (0/0 counts as 1, as the official
loop lets NaN pass) and S ≥ 0.5 (`gcg_matching.admissible_pairs`). R_o = rows of the official pairs (∅ when
the image raised); R_m = rows of a maximum matching of the admissible pairs grown from the official pairs
by augmenting paths (`gcg_matching.maximum_matching_pairs`), so R_o ⊆ R_m and |R_m| = max-matching TP.

Precedence: a missed label i gets the FIRST bucket whose test holds (so each miss is in exactly one):

1. `no_gt_mask` — i ≥ G: the label has no GT mask (a ground-truth defect; nothing can match it).
2. `lost_to_exception` — the image raised IndexError officially and i ∈ R_m.
3. `early_stop` — i ∈ R_m: the maximum matching finds it, the greedy loop stopped first.
4. `claimed_by_another` — i has an admissible pair, but every admissible predicted mask is matched to
   another GT label (the model gave one phrase and mask where the ground truth has several).
5. `right_place_other_words` — some predicted mask has IoU ≥ 0.5 with GT mask i, but its phrase has
   similarity < 0.5 (or it has no phrase).
6. `wrong_place` — some predicted phrase with a mask has similarity ≥ 0.5 (a "matching phrase"), and
   (by 5) every predicted mask has IoU < 0.5 with GT mask i.
7. `not_grounded` — a matching phrase exists but only without a mask (phrase index j ≥ M).
8. `not_mentioned` — no predicted phrase has similarity ≥ 0.5.

Recall a bucket would add (TIDE's ΔAP, Bolya et al. 2020, recomputing the metric with one error type
oracle-fixed): per image, TP_fixed − TP, summed, / Σ labels. Fixes, all in the metric's own index space:
`early_stop` and `lost_to_exception` count the image's maximum matching |R_m| (without the early stop,
resp. without the exception; the first equals the bucket share); the others PREPEND one aligned (phrase,
mask) pair per label of the bucket and rerun the official loop, so the gain includes any knock-on effect
the metric really has (a new pair can lift an early stop, or reach a mask without a phrase and raise):
- `not_mentioned`: (GT label text, GT mask);  `not_grounded` / `wrong_place`: (the best matching phrase,
  GT mask);  `right_place_other_words`: (GT label text, the best-IoU predicted mask);
- `claimed_by_another`: a copy of the label's best admissible (phrase, mask) pair;
- `no_gt_mask`: no model fix (None).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.types import Doc, Prediction
from gcgbench.metrics import gcg
from gcgbench.metrics.gcg_matching import (
    IOU_THRESHOLD,
    TEXT_SIMILARITY_THRESHOLD,
    admissible_pairs,
    maximum_matching_pairs,
    official_recall_matches,
    official_recall_pairs,
)
from gcgbench.metrics.masks import intersections_unions
from gcgbench.metrics.text_similarity import PhraseSimilarity

# display order (the order the issue names them, then the ones the official quirks add)
BUCKETS: dict[str, str] = {
    "not_mentioned": "not mentioned: no predicted phrase has similarity ≥ 0.5",
    "not_grounded": "mentioned, not grounded: a matching phrase has no mask",
    "wrong_place": "wrong place: matching phrases' masks all have IoU < 0.5",
    "right_place_other_words": "right place, other words: a mask with IoU ≥ 0.5 whose phrase has similarity < 0.5",
    "early_stop": "lost to the early stop: the maximum matching finds it, the official greedy loop stopped first",
    "claimed_by_another": "claimed by another phrase: its only fitting prediction is matched to another GT phrase",
    "lost_to_exception": "lost to the official IndexError: the image's official matching raised (0 TP)",
    "no_gt_mask": "no ground-truth mask: the label has no GT mask to find",
}
PRECEDENCE = ("no_gt_mask", "lost_to_exception", "early_stop", "claimed_by_another", "right_place_other_words",
              "wrong_place", "not_grounded", "not_mentioned")
PREPEND_FIXES = ("not_mentioned", "not_grounded", "wrong_place", "right_place_other_words", "claimed_by_another")
# COCO area ranges (cocoeval.py Params.areaRng: 32², 96²); boundaries go to the larger group
SMALL_AREA, MEDIUM_AREA = 32 ** 2, 96 ** 2
OBJECT_COUNT_GROUPS = ((1, 1, "1"), (2, 2, "2"), (3, 3, "3"), (4, 5, "4-5"), (6, 10, "6-10"), (11, None, "11+"))
FREQUENCY_GROUPS = ((1, 1, "1 (once)"), (2, 5, "2-5"), (6, 20, "6-20"), (21, None, "21+"))


@dataclass(frozen=True)
class LabelOutcome:
    """One GT label of one image: matched officially, or the bucket of its miss."""

    index: int
    text: str
    bucket: str | None  # None: matched by the official recall
    area: int | None  # pixel area of its GT mask (None: no GT mask)
    best_iou: float  # best IoU of any predicted mask with its GT mask (NaN: none)
    best_similarity: float  # best similarity of any predicted phrase with the label (NaN: none)


@dataclass(frozen=True)
class ImageDiagnosis:
    doc_id: str
    labels: tuple[LabelOutcome, ...]
    official_matches: int  # the official TP (0 when the image raised)
    max_matching_matches: int  # |R_m|
    exception: str | None
    fixed_matches: Mapping[str, int]  # official TP with one bucket oracle-fixed in this image
    hallucinated: tuple[str, ...]  # predicted phrases with similarity < 0.5 to every GT label
    n_phrases: int
    stats: gcg.GcgImageStats  # what the image contributes to every GCG mask metric

    @property
    def misses(self) -> int:
        return len(self.labels) - self.official_matches

    def bucket_counts(self) -> Counter:
        return Counter(label.bucket for label in self.labels if label.bucket is not None)


def diagnose_image(doc_id: str, matrices: gcg.ImageMatrices, similarity: PhraseSimilarity) -> ImageDiagnosis:
    """Buckets, fixes and hallucinations of one image (module docstring for the rules)."""
    iou, text_similarity = matrices.iou, matrices.text_similarity
    n_gt, n_masks = iou.shape
    n_labels, n_phrases = text_similarity.shape
    pairs, exception = official_recall_pairs(iou, text_similarity)
    official_rows = set() if exception else {row for row, _ in pairs}
    maximum = maximum_matching_pairs(iou, text_similarity, start=() if exception else pairs)
    maximum_rows = {row for row, _ in maximum}
    admissible = admissible_pairs(iou, text_similarity)
    placed = np.nan_to_num(iou, nan=1.0) >= IOU_THRESHOLD  # the official loop lets a NaN IoU pass
    similar = text_similarity >= TEXT_SIMILARITY_THRESHOLD
    with_mask = min(n_phrases, n_masks)  # phrases j < M own predicted mask j

    outcomes = []
    for row in range(n_labels):
        has_mask = row < n_gt
        if row in official_rows:
            bucket = None
        elif not has_mask:
            bucket = "no_gt_mask"
        elif exception and row in maximum_rows:
            bucket = "lost_to_exception"
        elif row in maximum_rows:
            bucket = "early_stop"
        elif admissible[row].any():
            bucket = "claimed_by_another"
        elif placed[row].any():
            bucket = "right_place_other_words"
        elif similar[row, :with_mask].any():
            bucket = "wrong_place"
        elif similar[row, with_mask:].any():
            bucket = "not_grounded"
        else:
            bucket = "not_mentioned"
        best_iou = float(np.nanmax(iou[row])) if has_mask and n_masks and not np.isnan(iou[row]).all() else float("nan")
        best_similarity = float(text_similarity[row].max()) if n_phrases else float("nan")
        outcomes.append(LabelOutcome(row, matrices.gt_labels[row], bucket,
                                     matrices.gt_masks[row].area() if has_mask else None, best_iou, best_similarity))

    official = 0 if exception else len(pairs)
    fixed = {"early_stop": official if exception else len(maximum),
             "lost_to_exception": len(maximum) if exception else official}
    prepend_fixes = _prepend_fixes(outcomes, matrices, similarity, placed, similar, admissible)
    for bucket in PREPEND_FIXES:
        columns = prepend_fixes.get(bucket)
        if not columns:
            fixed[bucket] = official
            continue
        new_iou = np.hstack([np.stack([c[0] for c in columns], axis=1), iou])
        new_similarity = np.hstack([np.stack([c[1] for c in columns], axis=1), text_similarity])
        fixed[bucket] = official_recall_matches(new_iou, new_similarity)[0]
    hallucinated = tuple(matrices.pred_labels[j] for j in range(n_phrases) if not similar[:, j].any())
    return ImageDiagnosis(doc_id, tuple(outcomes), official, len(maximum), exception, fixed, hallucinated,
                          n_phrases, gcg.image_stats(doc_id, matrices))


def _prepend_fixes(outcomes: Sequence[LabelOutcome], matrices: gcg.ImageMatrices, similarity: PhraseSimilarity,
                   placed: np.ndarray, similar: np.ndarray, admissible: np.ndarray) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per bucket, the (IoU column over GT masks, similarity column over GT labels) of each oracle pair."""
    wanted = [o for o in outcomes if o.bucket in PREPEND_FIXES]
    if not wanted:
        return {}
    iou, text_similarity = matrices.iou, matrices.text_similarity
    n_masks, n_phrases = iou.shape[1], text_similarity.shape[1]
    intersection, union = intersections_unions(matrices.gt_masks, matrices.gt_masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        gt_iou = intersection / union.astype(np.float64)  # column i: IoU of every GT mask with GT mask i
    label_similarity = similarity.matrix(matrices.gt_labels, matrices.gt_labels)
    with_mask = min(n_phrases, n_masks)
    columns: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for outcome in wanted:
        row = outcome.index
        if outcome.bucket == "not_mentioned":
            pair = (gt_iou[:, row], label_similarity[:, row])
        elif outcome.bucket in ("not_grounded", "wrong_place"):
            span = range(with_mask, n_phrases) if outcome.bucket == "not_grounded" else range(with_mask)
            phrase = max((j for j in span if similar[row, j]), key=lambda j: text_similarity[row, j])
            pair = (gt_iou[:, row], text_similarity[:, phrase])
        elif outcome.bucket == "right_place_other_words":
            filled = np.nan_to_num(iou[row], nan=1.0)
            mask = max((j for j in range(n_masks) if placed[row, j]), key=lambda j: filled[j])
            pair = (iou[:, mask], label_similarity[:, row])
        else:  # claimed_by_another
            filled = np.nan_to_num(iou[row], nan=1.0)
            mask = max(np.flatnonzero(admissible[row]).tolist(), key=lambda j: filled[j])
            pair = (iou[:, mask], text_similarity[:, mask])
        columns.setdefault(outcome.bucket, []).append(pair)
    return columns


@dataclass(frozen=True)
class GcgDiagnosis:
    """Every image's diagnosis, in docs order, and the split-level summaries."""

    images: tuple[ImageDiagnosis, ...]
    similarity_model: str

    @property
    def labels(self) -> int:
        return sum(len(image.labels) for image in self.images)

    @property
    def official_matches(self) -> int:
        return sum(image.official_matches for image in self.images)

    def stats_table(self) -> gcg.GcgStatsTable:
        return gcg.GcgStatsTable.from_images([image.stats for image in self.images])

    def buckets(self) -> dict[str, dict[str, Any]]:
        """Per bucket: count, share of all labels, and the recall its oracle fix adds (None: no fix)."""
        labels = self.labels
        counts = Counter()
        gains = Counter()
        for image in self.images:
            counts.update(image.bucket_counts())
            for bucket, fixed in image.fixed_matches.items():
                gains[bucket] += fixed - image.official_matches
        return {bucket: {
            "count": counts[bucket],
            "share": counts[bucket] / labels if labels else 0.0,
            "delta_recall": None if bucket == "no_gt_mask" else (gains[bucket] / labels if labels else 0.0),
            "description": description,
        } for bucket, description in BUCKETS.items()}

    def summary(self) -> dict[str, Any]:
        labels, matched = self.labels, self.official_matches
        strict = sum(image.max_matching_matches for image in self.images)
        hallucinated = [len(image.hallucinated) for image in self.images]
        return {
            "labels": labels, "matched": matched, "misses": labels - matched,
            "mask_recall": matched / labels if labels else 0.0,
            "mask_recall_max_matching": strict / labels if labels else 0.0,
            **gcg.aggregate(self.stats_table(), np.arange(len(self.images))),
            "buckets": self.buckets(),
            "breakdowns": self.breakdowns(),
            "hallucinated": {
                "total": int(sum(hallucinated)),
                "per_image_mean": float(np.mean(hallucinated)) if hallucinated else 0.0,
                "predicted_phrases": int(sum(image.n_phrases for image in self.images)),
                "images_by_count": {str(k): v for k, v in sorted(Counter(hallucinated).items())},
            },
            "similarity_model": self.similarity_model,
            "exception_images": [image.doc_id for image in self.images if image.exception],
        }

    def breakdowns(self) -> dict[str, list[dict[str, Any]]]:
        """Official recall of the labels grouped by GT mask area (COCO), objects per image, and how often
        the label's text occurs in the split (lower case, spaces collapsed)."""
        frequency = Counter(normalise(label.text) for image in self.images for label in image.labels)
        by_size, by_count, by_frequency = [], [], []
        for image in self.images:
            count_group = group_of(len(image.labels), OBJECT_COUNT_GROUPS)
            for label in image.labels:
                by_size.append((size_group(label.area), label))
                by_count.append((count_group, label))
                by_frequency.append((group_of(frequency[normalise(label.text)], FREQUENCY_GROUPS), label))
        return {
            "object_size": _groups(by_size, ("small", "medium", "large", "no GT mask")),
            "objects_in_image": _groups(by_count, [name for _, _, name in OBJECT_COUNT_GROUPS]),
            "phrase_frequency": _groups(by_frequency, [name for _, _, name in FREQUENCY_GROUPS]),
        }


def diagnose_gcg(docs: Sequence[Doc], predictions: Mapping[str, Prediction], similarity: PhraseSimilarity) -> GcgDiagnosis:
    """Diagnose a split; a doc without a prediction is an empty prediction, as `score_gcg_masks` scores it."""
    images = []
    for doc in docs:
        prediction = predictions.get(doc.doc_id) or Prediction(doc.doc_id, "")
        images.append(diagnose_image(doc.doc_id, gcg.image_matrices(doc, prediction, similarity), similarity))
    return GcgDiagnosis(tuple(images), similarity.encoder_name)


def split_similarity(encoder, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> PhraseSimilarity:
    """One encoder call over every GT label and predicted phrase of the split."""
    texts = [phrase.text for doc in docs for phrase in doc.phrases]
    texts += [phrase.text for doc in docs if doc.doc_id in predictions for phrase in predictions[doc.doc_id].phrases]
    return PhraseSimilarity.from_encoder(encoder, texts)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def size_group(area: int | None) -> str:
    if area is None:
        return "no GT mask"
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def group_of(value: int, groups: Sequence[tuple[int, int | None, str]]) -> str:
    for low, high, name in groups:
        if value >= low and (high is None or value <= high):
            return name
    return "0"


def _groups(items: Sequence[tuple[str, LabelOutcome]], order: Sequence[str]) -> list[dict[str, Any]]:
    """Per group (in `order`, empty groups left out): labels, officially matched, recall, bucket counts."""
    found: dict[str, list[LabelOutcome]] = {}
    for name, label in items:
        found.setdefault(name, []).append(label)
    rows = []
    for name in [*order, *sorted(set(found) - set(order))]:
        members = found.get(name)
        if not members:
            continue
        matched = sum(label.bucket is None for label in members)
        buckets = Counter(label.bucket for label in members if label.bucket is not None)
        rows.append({"group": name, "labels": len(members), "matched": matched, "recall": matched / len(members),
                     "buckets": {bucket: buckets[bucket] for bucket in BUCKETS if buckets[bucket]}})
    return rows
