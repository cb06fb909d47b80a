"""Panoptic Narrative Grounding (PNG): average recall over IoU thresholds, exactly, without the loop.

The official metric (`BCV-Uniandes/PNG` `baseline/utils/meters.py::average_accuracy`, copied into
F-LMM `scripts/multiprocess_eval_png.py`) is, for IoUs x_1…x_n and t = np.arange(0, 1, 1e-5):

    recall[i] = #{j : x_j >= t[i]} / n                       (i = 0 … 99 999)
    AR        = Σ_{i=0}^{99 998} (t[i+1] − t[i]) · recall[i]  (left Riemann sum, last point dropped)

numpy's arange gives t[i] = fl(i · 1e-5) and every difference t[i+1] − t[i] is exact (Sterbenz),
so the sum telescopes per phrase: with k_j = #{i : x_j >= t[i]} the number of thresholds x_j passes,

    AR = (1/n) Σ_j t[min(k_j, 99 999)]

An IoU of 0 passes t[0] = 0 and contributes t[1] = 1e-5; a perfect IoU contributes t[99 999] =
0.99999 (so GT-as-prediction scores AR = 0.99999, as upstream); NaN passes nothing. k_j comes from
integer arithmetic, floor(x / 1e-5) + 1, then a ±1 correction checked against the actual float
thresholds. Upstream accumulates 99 999 products in float64; we differ by that rounding (< 1e-11).

Protocols (recorded in `PngResult.metric_config()`):

* ``"official"`` (default) — `baseline/test_net.py::perform_test` + `data/panoptic_narrative_grounding.py`:
  - IoU = intersection / union in float32 (`compute_mask_IoU` on float tensors, no epsilon; 0/0 is
    NaN, a miss at every threshold), then `.item()`: thresholds compared in float64.
  - plural ⇔ the phrase has more than one segment (`ann_types = 1 if (l != -2).sum() == 1 else 2`),
    not the JSON `plural` flag.
  - thing ⇔ the category of the phrase's *last* segment is a thing (the loop over its boxes
    overwrites `ann_categories[i + 1]`); everything not a thing is stuff.
  - Upstream scores soft masks resampled through 256×256; binary full-resolution masks cannot
    reproduce that, so we score them at full resolution. Its `unique_consecutive` phrase collapsing is
    not reproduced either (it needs word pieces).
* ``"flmm"`` — F-LMM `scripts/multiprocess_eval_png.py` + `flmm/datasets/png.py::PNGDataset`:
  - IoU = intersection / (union + 1e-12) in float32: an empty union scores 0 (passes t[0]), not NaN.
  - thresholds compared in float32: `ious` is a float32 array and, under the numpy 1.x value-based
    casting F-LMM ran with (transformers 4.39 / mmcv era), `ious >= t` casts t to float32.
  - plural ⇔ the JSON `plural` flag; thing ⇔ plural, or else the single segment's category is a
    thing (plurals are forced to things). A singular with ≠ 1 segment fails upstream's assert; here it
    raises ValueError.
  - adds `pixel_acc` = mean over phrases of (H·W − (U − I)) / (H·W).
  - F-LMM replaces a narrative without grounded phrases by a random other one; we take the records
    as given (a loader should skip such narratives).

Both: `acc@0.5` = fraction of phrases with IoU > 0.5 (strict, `accuracy_score(..., ious > 0.5)` and
`(mask_ious > 0.5).mean()`). A bucket with no phrases scores NaN (upstream: 0/0 in numpy); zero
records in total raise ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gcgbench.api.types import RLE
from gcgbench.metrics.res import pair_counts

PNG_PROTOCOLS = ("official", "flmm")
DEFAULT_PROTOCOL = "official"
THRESHOLD_STEP = 1e-5
THRESHOLDS = np.arange(0, 1, THRESHOLD_STEP)  # exactly as the official code builds them
THRESHOLDS.setflags(write=False)
THRESHOLDS_FLOAT32 = THRESHOLDS.astype(np.float32)  # what numpy 1.x compares float32 IoUs against
THRESHOLDS_FLOAT32.setflags(write=False)
THRESHOLD_COUNT = len(THRESHOLDS)  # 100 000
FLMM_UNION_EPSILON = 1e-12


@dataclass(frozen=True)
class PngPhrase:
    """One grounded noun phrase of a narrative.

    `truth` is the union of the phrase's panoptic segments. `segment_is_thing[k]` is the `isthing`
    flag of the category of its k-th segment, in the order of the JSON `segment_ids` (length = number
    of segments, at least 1). `plural_flag` is the JSON `plural` field.
    """

    narrative_id: str
    image_id: str | int
    phrase_id: str | int
    prediction: RLE | None
    truth: RLE
    segment_is_thing: tuple[bool, ...]
    plural_flag: bool


@dataclass(frozen=True)
class PngStats:
    """Per-phrase statistics, columnar; index j belongs to `phrase_ids[j]`.

    `iou`: the protocol's IoU value (float64 holding upstream's float32, NaN possible);
    `thresholds_passed`: k_j; `area`: t[min(k_j, 99 999)], the phrase's share of AR times n;
    `is_plural`, `is_thing`: the protocol's buckets; `pixel_acc`: F-LMM's per-phrase pixel accuracy.
    """

    protocol: str
    narrative_ids: tuple[str, ...]
    image_ids: tuple[str | int, ...]
    phrase_ids: tuple[str | int, ...]
    intersection: np.ndarray
    union: np.ndarray
    iou: np.ndarray
    thresholds_passed: np.ndarray
    area: np.ndarray
    is_plural: np.ndarray
    is_thing: np.ndarray
    pixel_acc: np.ndarray

    def __len__(self) -> int:
        return len(self.phrase_ids)

    def per_sample(self) -> list[dict[str, Any]]:
        """One JSON-native dict per phrase, in input order (NaN IoU written as None)."""
        return [
            {
                "narrative_id": self.narrative_ids[j],
                "image_id": self.image_ids[j],
                "phrase_id": self.phrase_ids[j],
                "intersection": int(self.intersection[j]),
                "union": int(self.union[j]),
                "iou": None if np.isnan(self.iou[j]) else float(self.iou[j]),
                "plural": bool(self.is_plural[j]),
                "thing": bool(self.is_thing[j]),
            }
            for j in range(len(self))
        ]


@dataclass(frozen=True)
class PngResult:
    protocol: str
    metrics: dict[str, float]
    stats: PngStats

    def metric_config(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "threshold_step": THRESHOLD_STEP, "threshold_count": THRESHOLD_COUNT}


def check_protocol(protocol: str) -> str:
    if protocol not in PNG_PROTOCOLS:
        raise ValueError(f"unknown PNG protocol {protocol!r}; choose one of {', '.join(PNG_PROTOCOLS)}")
    return protocol


def thresholds_passed(ious: np.ndarray, protocol: str = DEFAULT_PROTOCOL) -> np.ndarray:
    """k_j = #{i : ious[j] >= t[i]} with the protocol's comparison dtype, int64.

    Integer estimate floor(x / 1e-5) + 1 (thresholds are fl(i · 1e-5)), then one step up if the next
    threshold also passes and one step down if the last counted one does not, checked on the float
    thresholds themselves; the result is verified to bracket x exactly.
    """
    check_protocol(protocol)
    thresholds = THRESHOLDS_FLOAT32 if protocol == "flmm" else THRESHOLDS
    values = np.asarray(ious, dtype=thresholds.dtype).reshape(-1)
    known = ~np.isnan(values)
    safe = np.where(known, values, -1.0).astype(thresholds.dtype)
    estimate = np.floor(np.clip(safe.astype(np.float64), -1.0, 2.0) / THRESHOLD_STEP).astype(np.int64) + 1
    count = np.clip(estimate, 0, THRESHOLD_COUNT)
    next_passes = (count < THRESHOLD_COUNT) & (thresholds[np.minimum(count, THRESHOLD_COUNT - 1)] <= safe)
    count = count + next_passes
    last_fails = (count > 0) & (thresholds[np.maximum(count - 1, 0)] > safe)
    count = count - last_fails
    below_ok = (count == 0) | (thresholds[np.maximum(count - 1, 0)] <= safe)
    above_ok = (count == THRESHOLD_COUNT) | (thresholds[np.minimum(count, THRESHOLD_COUNT - 1)] > safe)
    if not (below_ok & above_ok).all():  # cannot happen: |x / 1e-5 − i| stays far below 1 at these scales
        raise AssertionError("threshold count off by more than one")
    return np.where(known, count, 0)


def average_recall(ious: np.ndarray, protocol: str = DEFAULT_PROTOCOL) -> float:
    """AR of raw IoU values, = the official `average_accuracy(ious)`; NaN for an empty array."""
    passed = thresholds_passed(ious, protocol)
    if passed.size == 0:
        return float("nan")
    return float(THRESHOLDS[np.minimum(passed, THRESHOLD_COUNT - 1)].mean())


def recall_curve(stats: PngStats, indices: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, recall) as the official code's `accuracy` list: recall[i] = #{j : k_j > i} / n."""
    picked = np.arange(len(stats)) if indices is None else np.asarray(indices, dtype=np.int64)
    passed = stats.thresholds_passed[picked]
    histogram = np.bincount(passed, minlength=THRESHOLD_COUNT + 1)
    at_least = np.cumsum(histogram[::-1])[::-1]  # at_least[m] = #{j : k_j >= m}
    return THRESHOLDS, at_least[1:] / max(picked.size, 1)


def phrase_buckets(phrase: PngPhrase, protocol: str) -> tuple[bool, bool]:
    """(is_plural, is_thing) of one phrase under the protocol's bucket rules (module docstring)."""
    if not phrase.segment_is_thing:
        raise ValueError(f"phrase {phrase.phrase_id!r} of narrative {phrase.narrative_id!r} has no segments")
    if protocol == "official":
        return len(phrase.segment_is_thing) > 1, bool(phrase.segment_is_thing[-1])
    if phrase.plural_flag:
        return True, True
    if len(phrase.segment_is_thing) != 1:
        raise ValueError(
            f"phrase {phrase.phrase_id!r} of narrative {phrase.narrative_id!r} is singular but has "
            f"{len(phrase.segment_is_thing)} segments (F-LMM asserts exactly one)"
        )
    return False, bool(phrase.segment_is_thing[0])


def phrase_iou(intersection: np.ndarray, union: np.ndarray, protocol: str) -> np.ndarray:
    """The protocol's per-phrase IoU, float64 holding a float32 value: official I/U (NaN on 0/0),
    flmm I/(U + 1e-12) (0 on an empty union)."""
    inter32 = np.asarray(intersection, dtype=np.float32)
    union32 = np.asarray(union, dtype=np.float32)
    if protocol == "flmm":
        union32 = union32 + np.float32(FLMM_UNION_EPSILON)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (inter32 / union32).astype(np.float64)


def compute_stats(phrases: Sequence[PngPhrase], protocol: str = DEFAULT_PROTOCOL) -> PngStats:
    """Exact I and U of every phrase, its protocol IoU, thresholds passed and buckets."""
    check_protocol(protocol)
    if not phrases:
        raise ValueError("no PNG phrases to score")
    buckets = [phrase_buckets(p, protocol) for p in phrases]
    counts = [
        pair_counts(p.prediction, p.truth, f"narrative {p.narrative_id!r} phrase {p.phrase_id!r}") for p in phrases
    ]
    intersection = np.array([c[0] for c in counts], dtype=np.int64)
    union = np.array([c[1] for c in counts], dtype=np.int64)
    pixels = np.array([p.truth.height * p.truth.width for p in phrases], dtype=np.float64)
    iou = phrase_iou(intersection, union, protocol)
    passed = thresholds_passed(iou, protocol)
    with np.errstate(invalid="ignore", divide="ignore"):
        pixel_acc = (pixels - (union - intersection)) / pixels
    return PngStats(
        protocol=protocol,
        narrative_ids=tuple(p.narrative_id for p in phrases),
        image_ids=tuple(p.image_id for p in phrases),
        phrase_ids=tuple(p.phrase_id for p in phrases),
        intersection=intersection,
        union=union,
        iou=iou,
        thresholds_passed=passed,
        area=THRESHOLDS[np.minimum(passed, THRESHOLD_COUNT - 1)],
        is_plural=np.array([b[0] for b in buckets], dtype=bool),
        is_thing=np.array([b[1] for b in buckets], dtype=bool),
        pixel_acc=pixel_acc,
    )


def aggregate(stats: PngStats, indices: Sequence[int] | np.ndarray | None = None) -> dict[str, float]:
    """AR overall and by bucket, and acc@0.5, over `stats[indices]` (repeats allowed; None = all).

    AR over a set S = mean_{j∈S} t[min(k_j, 99 999)] (module docstring); empty bucket → NaN.
    """
    picked = np.arange(len(stats)) if indices is None else np.asarray(indices, dtype=np.int64)
    if picked.size == 0:
        raise ValueError("cannot aggregate PNG metrics over zero phrases")
    area, plural, thing = stats.area[picked], stats.is_plural[picked], stats.is_thing[picked]

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float("nan")

    metrics = {
        "ar": mean(area),
        "ar_things": mean(area[thing]),
        "ar_stuff": mean(area[~thing]),
        "ar_singular": mean(area[~plural]),
        "ar_plural": mean(area[plural]),
        "acc_0.5": float(np.count_nonzero(stats.iou[picked] > 0.5)) / picked.size,
    }
    if stats.protocol == "flmm":
        metrics["pixel_acc"] = mean(stats.pixel_acc[picked])
    return metrics


def evaluate(phrases: Sequence[PngPhrase], protocol: str = DEFAULT_PROTOCOL) -> PngResult:
    """Score a split: `compute_stats` then `aggregate` over every phrase."""
    stats = compute_stats(phrases, protocol)
    return PngResult(protocol=protocol, metrics=aggregate(stats), stats=stats)
