"""Metrics recomputed from the per-sample rows of a run (`samples/<task>.jsonl`), for paired bootstraps.

`check` compares two runs of one task on the SAME resamples of images (`stats.paired_bootstrap_delta`),
which needs each metric as a function of a set of rows. Per family:

- res: the rows hold exact I, U and the protocol's IoU term: `metrics.res.aggregate` gives cIoU, gIoU and
  precision@X exactly;
- png: rows hold I, U, IoU and the buckets: `metrics.png.aggregate` gives AR (all buckets) and acc@0.5
  exactly (F-LMM's `pixel_acc` needs image sizes the rows do not hold: left out);
- gcg: mIoU and both mask recalls exactly (means and ratios of per-image counts); CIDEr as the mean of
  per-image scores and METEOR as corpus + mean(resample) − mean(all): the approximations the task's own
  intervals use. AP50 needs per-detection matches the rows do not hold: left out;
- captioning: METEOR and CIDEr (and ROUGE-L) as for gcg;
- reasonseg: rows hold I (ignore pixels out), U and LISA's IoU term: `metrics.reasonseg.aggregate` exactly;
- gres: rows hold ReLA's accumulated I, U, IoU and both no-target flags: `metrics.gres.aggregate` exactly.

A metric left out falls back to the stored intervals in `check`. Every statistic is checked to reproduce
the run's stored value on all rows before it is used (`RowMetrics.verified`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gcgbench.metrics import gres, png, reasonseg, res
from gcgbench.runner.run_dir import RunDir

RecordStatistic = Callable[[np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class RowMetrics:
    """A run's rows for one task, aligned by `keys`, with the statistic that recomputes its metrics."""

    keys: tuple[Any, ...]
    clusters: tuple[str, ...]  # image of each row (resampling unit)
    statistic: RecordStatistic

    def verified(self, stored: Mapping[str, float], tolerance: float = 1e-9) -> list[str]:
        """Metric names whose value on every row equals the stored one (others are not used)."""
        found = self.statistic(np.arange(len(self.keys)))
        ok = []
        for name, value in found.items():
            expected = stored.get(name)
            if expected is None or math.isnan(value) or math.isnan(expected):
                continue
            if abs(value - expected) <= tolerance * max(1.0, abs(expected)):
                ok.append(name)
        return ok


def read_rows(run_dir: Path, task: str) -> list[dict[str, Any]] | None:
    """`samples/<task>.jsonl` of a run directory, or None when the run has none."""
    return RunDir(run_dir).read_samples(task)


def row_key(family: str, row: Mapping[str, Any]) -> Any:
    """What identifies a row across runs: the doc, and for PNG the phrase within it."""
    if family == "png":
        return (str(row.get("doc_id")), str(row.get("phrase_id")))
    return str(row.get("doc_id"))


def row_metrics(family: str, protocol: str, rows: Sequence[Mapping[str, Any]], stored: Mapping[str, float]) -> RowMetrics | None:
    """The family's statistic over `rows` (None when the family has none or the rows lack its columns)."""
    builder = _BUILDERS.get(family)
    if builder is None or not rows:
        return None
    try:
        statistic = builder(rows, protocol, stored)
    except (KeyError, TypeError, ValueError):
        return None
    keys = tuple(row_key(family, row) for row in rows)
    clusters = tuple(str(row.get("image_id", row.get("doc_id"))) for row in rows)
    return RowMetrics(keys, clusters, statistic)


def align(candidate: RowMetrics, baseline: RowMetrics) -> tuple[np.ndarray, str | None]:
    """Positions in `baseline` of each candidate row (same keys, any order), or a reason they differ."""
    if len(set(candidate.keys)) != len(candidate.keys) or len(set(baseline.keys)) != len(baseline.keys):
        return np.zeros(0, dtype=np.int64), "duplicate sample keys"
    if set(candidate.keys) != set(baseline.keys):
        only = len(set(candidate.keys) - set(baseline.keys)), len(set(baseline.keys) - set(candidate.keys))
        return np.zeros(0, dtype=np.int64), f"the runs scored different samples ({only[0]} / {only[1]} unmatched)"
    where = {key: position for position, key in enumerate(baseline.keys)}
    return np.array([where[key] for key in candidate.keys], dtype=np.int64), None


def _res(rows: Sequence[Mapping[str, Any]], protocol: str, stored: Mapping[str, float]) -> RecordStatistic:
    table = res.ResStats(
        protocol=protocol, sample_ids=tuple(str(r["doc_id"]) for r in rows),
        image_ids=tuple(r.get("image_id", r["doc_id"]) for r in rows),
        intersection=np.array([int(r["intersection"]) for r in rows], dtype=np.int64),
        union=np.array([int(r["union"]) for r in rows], dtype=np.int64),
        iou=np.array([float(r["iou"]) for r in rows], dtype=np.float64),
    )
    return lambda indices: res.aggregate(table, indices)


def _reasonseg(rows: Sequence[Mapping[str, Any]], protocol: str, stored: Mapping[str, float]) -> RecordStatistic:
    table = _res_table(rows, protocol if protocol in reasonseg.PROTOCOLS else "lisa")
    return lambda indices: reasonseg.aggregate(table, indices)


def _gres(rows: Sequence[Mapping[str, Any]], protocol: str, stored: Mapping[str, float]) -> RecordStatistic:
    table = gres.GresStats(
        sample_ids=tuple(str(r["doc_id"]) for r in rows), image_ids=tuple(r.get("image_id", r["doc_id"]) for r in rows),
        intersection=np.array([int(r["intersection"]) for r in rows], dtype=np.int64),
        union=np.array([int(r["union"]) for r in rows], dtype=np.int64),
        iou=np.array([float(r["iou"]) for r in rows], dtype=np.float64),
        predicted_area=np.array([int(r["predicted_area"]) for r in rows], dtype=np.int64),
        gt_nt=np.array([bool(r["gt_nt"]) for r in rows]), pred_nt=np.array([bool(r["pred_nt"]) for r in rows]),
        min_mask_area=1,  # not used by aggregate: pred_nt is stored per row
    )
    return lambda indices: gres.aggregate(table, indices)


def _res_table(rows: Sequence[Mapping[str, Any]], protocol: str) -> Any:
    return res.ResStats(
        protocol=protocol, sample_ids=tuple(str(r["doc_id"]) for r in rows),
        image_ids=tuple(r.get("image_id", r["doc_id"]) for r in rows),
        intersection=np.array([int(r["intersection"]) for r in rows], dtype=np.int64),
        union=np.array([int(r["union"]) for r in rows], dtype=np.int64),
        iou=np.array([float(r["iou"]) for r in rows], dtype=np.float64),
    )


def _png(rows: Sequence[Mapping[str, Any]], protocol: str, stored: Mapping[str, float]) -> RecordStatistic:
    iou = np.array([np.nan if r["iou"] is None else float(r["iou"]) for r in rows], dtype=np.float64)
    passed = png.thresholds_passed(iou, protocol)
    table = png.PngStats(
        protocol=protocol, narrative_ids=tuple(str(r["doc_id"]) for r in rows),
        image_ids=tuple(r.get("image_id", r["doc_id"]) for r in rows),
        phrase_ids=tuple(r["phrase_id"] for r in rows),
        intersection=np.array([int(r["intersection"]) for r in rows], dtype=np.int64),
        union=np.array([int(r["union"]) for r in rows], dtype=np.int64),
        iou=iou, thresholds_passed=passed, area=png.THRESHOLDS[np.minimum(passed, png.THRESHOLD_COUNT - 1)],
        is_plural=np.array([bool(r["plural"]) for r in rows]), is_thing=np.array([bool(r["thing"]) for r in rows]),
        pixel_acc=np.full(len(rows), np.nan),
    )

    def statistic(indices: np.ndarray) -> dict[str, float]:
        values = png.aggregate(table, indices)
        values.pop("pixel_acc", None)
        return values

    return statistic


def _captions(rows: Sequence[Mapping[str, Any]], stored: Mapping[str, float]) -> dict[str, Callable[[np.ndarray], float]]:
    """METEOR / CIDEr / ROUGE-L from per-doc scores, as `metrics.captions.aggregate` approximates them."""
    found: dict[str, Callable[[np.ndarray], float]] = {}
    for name in ("meteor", "cider", "rouge_l"):
        if not rows or name not in rows[0] or name not in stored:
            continue
        scores = np.array([float(r[name]) for r in rows], dtype=np.float64)
        if name == "meteor":
            corpus, mean_all = float(stored[name]), float(scores.mean())
            found[name] = lambda i, s=scores, c=corpus, m=mean_all: c + float(np.mean(s[i]) - m)
        else:
            found[name] = lambda i, s=scores: float(np.mean(s[i]))
    return found


def _gcg(rows: Sequence[Mapping[str, Any]], protocol: str, stored: Mapping[str, float]) -> RecordStatistic:
    miou = np.array([float(r["miou"]) for r in rows], dtype=np.float64)
    matches = np.array([int(r["recall_matches"]) for r in rows], dtype=np.int64)
    strict = np.array([int(r["recall_matches_max_matching"] if "recall_matches_max_matching" in r
                            else r["recall_matches_strict"]) for r in rows], dtype=np.int64)  # former name
    labels = np.array([int(r["gt_labels"]) for r in rows], dtype=np.int64)
    caption = _captions(rows, stored)

    def statistic(indices: np.ndarray) -> dict[str, float]:
        total = int(labels[indices].sum())
        values = {
            "miou": float(np.mean(miou[indices])) if len(indices) else 0.0,
            "mask_recall": int(matches[indices].sum()) / total if total else 0.0,
            "mask_recall_max_matching": int(strict[indices].sum()) / total if total else 0.0,
        }
        values.update({name: function(indices) for name, function in caption.items()})
        return values

    return statistic


def _captioning(rows: Sequence[Mapping[str, Any]], protocol: str, stored: Mapping[str, float]) -> RecordStatistic:
    caption = _captions(rows, stored)
    if not caption:
        raise ValueError("no caption scores in the rows")
    return lambda indices: {name: function(indices) for name, function in caption.items()}


_BUILDERS: dict[str, Callable[[Sequence[Mapping[str, Any]], str, Mapping[str, float]], RecordStatistic]] = {
    "res": _res, "png": _png, "gcg": _gcg, "captioning": _captioning, "reasonseg": _reasonseg, "gres": _gres,
}
