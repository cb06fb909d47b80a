"""Per-image matching rules of GLaMM's GCG mask metrics, on precomputed IoU and similarity matrices.

Every function here works on one image's small matrices (GT masks × predicted masks), so the cost of a
split is linear in the number of images. The IoU matrix convention is the one of `masks.iou_matrix`:
rows = GT masks, columns = predicted masks, NaN where both masks are empty (union 0), which is what
the official `eval/utils.py::compute_iou` (`np.sum(and) / np.sum(or)`, no epsilon) produces.

Sources (mbzuai-oryx/groundingLMM `eval/gcg/evaluate.py`, cocodataset/cocoapi `cocoeval.py`) are
named in each docstring; the code is our own restatement of their rules.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

IOU_THRESHOLD = 0.5
TEXT_SIMILARITY_THRESHOLD = 0.5
COCO_MAX_DETECTIONS = 100
# COCOeval's Params.recThrs, built the same way so the 101 recall points are bit-identical.
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


def _cells_by_descending_value(matrix: np.ndarray) -> np.ndarray:
    """Flat indices of a non-NaN matrix, largest value first, ties in row-major order.

    Scanning this list and skipping cells whose row or column is already taken visits cells in the
    order that repeated `np.argmax` (first maximum in row-major order) on the shrinking or zeroed
    matrix would pick them, as long as the taken value stays above whatever the removed cells hold.
    """
    return np.argsort(-matrix.ravel(), kind="stable")


def miou_image_score(iou_gt_by_pred: np.ndarray) -> float:
    """GLaMM's per-image mIoU: greedy one-to-one pairing by highest IoU, mean of the paired IoUs.

    Source: `evaluate.py::compute_miou`. The official matrix is predicted × GT; while its maximum is
    > 0 it takes `np.argmax` (first maximum in row-major order of *predicted × GT*), records it and
    deletes that row and column. Score = mean(paired IoUs), or 0.0 when nothing was paired.

    NaN semantics (reproduced): an empty predicted mask against an empty GT mask has IoU 0/0 = NaN;
    `np.max` of a matrix holding a NaN is NaN and `NaN > 0` is False, so the loop never starts and
    the image scores 0.0, whatever its other masks. The score itself is never NaN.
    """
    pred_by_gt = np.ascontiguousarray(iou_gt_by_pred.T)
    if pred_by_gt.size == 0 or np.isnan(pred_by_gt).any():
        return 0.0
    n_columns = pred_by_gt.shape[1]
    taken_rows: set[int] = set()
    taken_columns: set[int] = set()
    paired: list[float] = []
    for cell in _cells_by_descending_value(pred_by_gt):
        row, column = divmod(int(cell), n_columns)
        if row in taken_rows or column in taken_columns:
            continue
        value = pred_by_gt[row, column]
        if not value > 0:
            break
        paired.append(float(value))
        taken_rows.add(row)
        taken_columns.add(column)
    return float(np.mean(paired)) if paired else 0.0


def official_recall_matches(
    iou_gt_by_pred: np.ndarray,
    similarity: np.ndarray,
    iou_threshold: float = IOU_THRESHOLD,
    similarity_threshold: float = TEXT_SIMILARITY_THRESHOLD,
) -> tuple[int, str | None]:
    """True positives of one image under GLaMM's mask recall, and why the image errored (or None).

    The count of `official_recall_pairs`, or (0, reason) when the image raised (see there).
    """
    pairs, exception = official_recall_pairs(iou_gt_by_pred, similarity, iou_threshold, similarity_threshold)
    return (0, exception) if exception else (len(pairs), None)


def official_recall_pairs(
    iou_gt_by_pred: np.ndarray,
    similarity: np.ndarray,
    iou_threshold: float = IOU_THRESHOLD,
    similarity_threshold: float = TEXT_SIMILARITY_THRESHOLD,
) -> tuple[list[tuple[int, int]], str | None]:
    """The (GT mask, predicted mask) pairs GLaMM's mask recall matches in one image, in the order taken,
    and why the image errored (or None).

    Source: `evaluate.py::find_best_matches` and `evaluate_recall_with_mapping`. `similarity` is
    GT labels × predicted phrases; GT label i goes with GT mask i and predicted phrase j with predicted
    mask j, by index. Loop: take `np.argmax` of the GT × predicted IoU matrix (NaN cells first — numpy's
    argmax returns the first NaN —, else the first maximum in row-major order); stop if IoU < 0.5
    (NaN passes this test); otherwise read the similarity of that pair and stop if it is < 0.5; else
    count a match and zero the pair's row and column in both matrices.

    Exception semantics (reproduced): the similarity is read only after the IoU test passed, and
    reading it raises IndexError when the GT mask has no label (more GT masks than labels) or the
    predicted mask has no phrase (more masks than phrases, or no phrases at all). The official
    per-image `try/except` then prints the error and the image keeps 0 true positives — even matches
    already found — while its label count was already added to the denominator. The pairs found
    before the error are returned with the reason; the image's true positives are then 0.
    """
    n_gt, n_pred = iou_gt_by_pred.shape
    if n_gt == 0 or n_pred == 0:
        return [], None
    flat = iou_gt_by_pred.ravel()
    is_nan = np.isnan(flat)
    nan_cells = np.flatnonzero(is_nan)
    other_cells = np.flatnonzero(~is_nan)
    other_cells = other_cells[np.argsort(-flat[other_cells], kind="stable")]
    taken_rows: set[int] = set()
    taken_columns: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for cell in np.concatenate([nan_cells, other_cells]):
        row, column = divmod(int(cell), n_pred)
        if row in taken_rows or column in taken_columns:
            continue
        if flat[cell] < iou_threshold:
            break
        if row >= similarity.shape[0]:
            return pairs, f"IndexError: GT mask {row} has no label ({similarity.shape[0]} labels)"
        if column >= similarity.shape[1]:
            return pairs, f"IndexError: predicted mask {column} has no phrase ({similarity.shape[1]} phrases)"
        if similarity[row, column] < similarity_threshold:
            break
        pairs.append((row, column))
        taken_rows.add(row)
        taken_columns.add(column)
    return pairs, None


def max_matching_recall_matches(
    iou_gt_by_pred: np.ndarray,
    similarity: np.ndarray,
    iou_threshold: float = IOU_THRESHOLD,
    similarity_threshold: float = TEXT_SIMILARITY_THRESHOLD,
) -> int:
    """Size of a maximum one-to-one matching between labelled GT masks and phrased predicted masks.

    Our corrected recall (not in GLaMM): pair (i, j) is admissible when GT mask i has a label,
    predicted mask j has a phrase, IoU ≥ 0.5 and similarity(label i, phrase j) ≥ 0.5. An empty
    predicted mask against an empty GT mask (IoU 0/0) counts as IoU 1, as the official loop accepts
    it too; so every official match is admissible and max matching ≥ official on every image. The matching
    is maximum cardinality (`maximum_matching_pairs`); there is no early stop and surplus masks or phrases are
    simply unmatched.
    """
    return len(maximum_matching_pairs(iou_gt_by_pred, similarity, iou_threshold, similarity_threshold))


def admissible_pairs(
    iou_gt_by_pred: np.ndarray,
    similarity: np.ndarray,
    iou_threshold: float = IOU_THRESHOLD,
    similarity_threshold: float = TEXT_SIMILARITY_THRESHOLD,
) -> np.ndarray:
    """Boolean GT masks × predicted masks: the pairs `max_matching_recall_matches` may match (a labelled GT
    mask, a phrased predicted mask, IoU ≥ 0.5 with 0/0 = 1, similarity ≥ 0.5)."""
    admissible = np.zeros(iou_gt_by_pred.shape, dtype=bool)
    n_rows = min(iou_gt_by_pred.shape[0], similarity.shape[0])
    n_columns = min(iou_gt_by_pred.shape[1], similarity.shape[1])
    if n_rows and n_columns:
        iou = np.nan_to_num(iou_gt_by_pred[:n_rows, :n_columns], nan=1.0)
        admissible[:n_rows, :n_columns] = (iou >= iou_threshold) & (similarity[:n_rows, :n_columns] >= similarity_threshold)
    return admissible


def maximum_matching_pairs(
    iou_gt_by_pred: np.ndarray,
    similarity: np.ndarray,
    iou_threshold: float = IOU_THRESHOLD,
    similarity_threshold: float = TEXT_SIMILARITY_THRESHOLD,
    start: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """A maximum matching of `admissible_pairs`, as (GT mask, predicted mask) pairs sorted by GT mask, that keeps
    every GT mask matched which `start` (a matching, e.g. the official matches) matches.

    scipy's `linear_sum_assignment` maximises Σ weight with weight(i, j) = (n + 1) + [i matched by `start`] for
    admissible pairs and 0 otherwise (n = number of GT masks): one more pair outweighs any number of start rows,
    so the result has maximum cardinality, and among maximum matchings it covers the most start rows — all of
    them, since the GT masks a matching covers always extend to those of a maximum matching (transversal
    matroid exchange).
    """
    admissible = admissible_pairs(iou_gt_by_pred, similarity, iou_threshold, similarity_threshold)
    if not admissible.any():
        return []
    kept = np.zeros(admissible.shape[0], dtype=bool)
    for row, column in start:
        if admissible[row, column]:
            kept[row] = True
    weight = admissible * (admissible.shape[0] + 1) + (admissible & kept[:, None])
    from scipy.optimize import linear_sum_assignment  # here, not at the top: scipy.optimize takes ~1 s to import

    rows, columns = linear_sum_assignment(weight, maximize=True)
    return sorted((int(row), int(column)) for row, column in zip(rows, columns) if admissible[row, column])


def coco_detection_matches(
    iou_gt_by_pred: np.ndarray, iou_threshold: float = IOU_THRESHOLD, max_detections: int = COCO_MAX_DETECTIONS
) -> np.ndarray:
    """Which of an image's first `max_detections` predicted masks are true positives at one IoU threshold.

    Source: cocoapi `COCOeval.evaluateImg` with every score 1.0, no crowd and no ignored GT (GCG GT
    has iscrowd 0 and area range "all" keeps every mask). The stable score sort keeps prediction
    order and truncates to maxDets = 100. Each detection in turn takes the *unmatched* GT mask with the
    highest IoU ≥ threshold; COCOeval replaces its candidate whenever a later GT is *not worse*
    (`if iou < best: continue`), so ties go to the last GT index. pycocotools' `iou` gives 0 (not
    NaN) for two empty masks, so those never match.
    """
    iou = np.nan_to_num(iou_gt_by_pred[:, :max_detections], nan=0.0)
    n_gt, n_detections = iou.shape
    matched = np.zeros(n_detections, dtype=bool)
    gt_taken = np.zeros(n_gt, dtype=bool)
    if n_gt == 0:
        return matched
    for detection in range(n_detections):
        candidates = np.where(gt_taken, -1.0, iou[:, detection])
        best = candidates.max()
        if best >= min(iou_threshold, 1 - 1e-10):
            last_best = n_gt - 1 - int(np.argmax(candidates[::-1] == best))
            gt_taken[last_best] = True
            matched[detection] = True
    return matched


def coco_average_precision(detection_matched: np.ndarray, n_gt: int) -> float:
    """COCO 101-point interpolated AP for one category, one IoU threshold, all scores equal.

    Source: cocoapi `COCOeval.accumulate` + `summarize` (`stats[1]` when the threshold is 0.5).
    With detections in their global tie order (images by sorted id, then prediction order):
    TP/FP cumulative sums, recall = TP / n_gt, precision = TP / (TP + FP + eps), precision made
    non-increasing from the right, sampled at the first detection reaching each recall threshold
    r ∈ {0, 0.01, …, 1} (0 where recall never reaches r); AP = mean of the 101 samples.
    Returns -1.0 when there is no GT mask at all (COCOeval's "absent category" value).
    """
    if n_gt == 0:
        return -1.0
    true_positives = np.cumsum(detection_matched, dtype=np.int64).astype(float)
    false_positives = np.cumsum(~detection_matched, dtype=np.int64).astype(float)
    recall = true_positives / n_gt
    precision = true_positives / (false_positives + true_positives + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    positions = np.searchsorted(recall, COCO_RECALL_THRESHOLDS, side="left")
    sampled = np.zeros(len(COCO_RECALL_THRESHOLDS))
    reached = positions < len(precision)
    sampled[reached] = precision[positions[reached]]
    return float(np.mean(sampled))
