"""`gcgbench compare RUN_A RUN_B [RUN_C ...]`: did the score move, how surely, and why.

For every task the runs share and every metric the per-sample files can recompute, the difference
Δ = run − RUN_A with its 95% paired-bootstrap interval (`stats.paired_bootstrap_delta`: images resampled,
every run on the SAME resamples, as `gcgbench check` does; Efron & Tibshirani 1993 ch. 13, the cluster
bootstrap of Davison & Hinkley 1997 §3.8) and a verdict: *better* when the whole interval lies above 0,
*worse* when below, else *no detectable difference*. Statistics per family: `rows.row_metrics` (RES, PNG,
GCG mIoU/recalls/METEOR/CIDEr), and for GCG also AP50 from the diagnosis' per-image COCO matches
(`metrics.gcg.aggregate`); a statistic is used only if it reproduces the run's stored value on all samples.

Runs are refused (one line, exit 2) when a shared task differs in version, scoring protocol (protocol,
IoU and similarity thresholds, phrase-similarity model) or ground truth (the annotation files' sha256 the
runs recorded, else the set of samples scored): their numbers would not be comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.leaderboard import rows as row_tools
from gcgbench.views.diagnose.build import FAMILIES, TaskDiagnosis, diagnose_task, json_safe
from gcgbench.views.run_reader import RunReader
from gcgbench.metrics import gcg, stats

SCORING_KEYS = ("protocol", "iou_threshold", "text_similarity_threshold", "text_similarity_model")
VERIFY_TOLERANCE = 1e-9


class IncomparableRuns(GcgbenchError):
    """The runs measured different things (version, protocol or ground truth)."""


@dataclass(frozen=True)
class MetricDelta:
    task: str
    metric: str
    baseline: str  # run label
    run: str
    baseline_value: float
    value: float
    low: float | None  # 95% interval of value − baseline_value (None: no per-sample statistic)
    high: float | None

    @property
    def delta(self) -> float:
        return self.value - self.baseline_value

    @property
    def verdict(self) -> str:
        if self.low is None or self.high is None or math.isnan(self.low) or math.isnan(self.high):
            return "n/a (no per-sample statistic)"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "no detectable difference"


@dataclass
class Comparison:
    readers: list[RunReader]
    tasks: list[str]
    deltas: list[MetricDelta] = field(default_factory=list)
    diagnoses: dict[str, list[TaskDiagnosis]] = field(default_factory=dict)  # task -> one per run
    notes: list[str] = field(default_factory=list)
    resamples: int = 1000
    seed: int = 0

    @property
    def labels(self) -> list[str]:
        return run_labels(self.readers)


def run_labels(readers: Sequence[RunReader]) -> list[str]:
    """Each run's label, made unique with its folder name where two runs share a model."""
    labels = [reader.label for reader in readers]
    return [f"{label} [{reader.path.name}]" if labels.count(label) > 1 else label
            for label, reader in zip(labels, readers)]


def check_comparable(readers: Sequence[RunReader], task: str) -> None:
    """Raise IncomparableRuns naming the first difference in version, scoring or ground truth."""
    first = readers[0]
    for other in readers[1:]:
        where = f"{task}: {first.path} vs {other.path}"
        if first.version(task) != other.version(task):
            raise IncomparableRuns(f"{where}: task versions differ ({first.version(task)} vs {other.version(task)})")
        for key in SCORING_KEYS:
            mine, theirs = first.metric_config(task).get(key), other.metric_config(task).get(key)
            if mine != theirs and not (key == "protocol" and {mine, theirs} <= {None, "default"}):
                raise IncomparableRuns(f"{where}: scoring {key} differs ({mine} vs {theirs})")
        mine, theirs = first.ground_truth_hashes(task), other.ground_truth_hashes(task)
        if mine and theirs and None not in mine and None not in theirs and mine != theirs:
            raise IncomparableRuns(f"{where}: ground truth differs (annotation sha256 {mine[0][:12]}… vs {theirs[0][:12]}…)")
        family = first.family(task)
        keys = {row_tools.row_key(family, row) for row in first.rows(task)}
        other_keys = {row_tools.row_key(family, row) for row in other.rows(task)}
        if keys != other_keys:
            raise IncomparableRuns(f"{where}: the runs scored different samples ({len(keys - other_keys)} / "
                                   f"{len(other_keys - keys)} unmatched; a --limit run?)")


Statistic = Callable[[np.ndarray], dict[str, float]]


def task_statistic(reader: RunReader, task: str, diagnosis: TaskDiagnosis,
                   order: Sequence[Any]) -> tuple[Statistic | None, list[str]]:
    """A statistic of record indices in `order` (row keys of the baseline run), and the metrics it verifiably
    recomputes (equal to the stored values on all records)."""
    family, stored = reader.family(task), reader.metrics(task)
    rows = reader.rows(task)
    where = {row_tools.row_key(family, row): position for position, row in enumerate(rows)}
    permutation = np.array([where[key] for key in order], dtype=np.int64)
    metrics = row_tools.row_metrics(family, reader.protocol(task), rows, stored)
    parts: list[Statistic] = []
    if metrics is not None:
        parts.append(metrics.statistic)
    if diagnosis.gcg is not None:  # AP50 (and the mask metrics) from the diagnosis' per-image statistics
        table = diagnosis.gcg.stats_table()
        image_of = {image.doc_id: position for position, image in enumerate(diagnosis.gcg.images)}
        to_image = np.array([image_of[str(row["doc_id"])] for row in rows], dtype=np.int64)
        parts.append(lambda indices: gcg.aggregate(table, to_image[indices]))
    if not parts:
        return None, []

    def statistic(indices: np.ndarray) -> dict[str, float]:
        chosen = permutation[indices]
        found: dict[str, float] = {}
        for part in parts:
            found.update(part(chosen))
        return found

    values = statistic(np.arange(len(order)))
    verified = [name for name, value in values.items() if name in stored and not math.isnan(value)
                and not math.isnan(stored[name]) and abs(value - stored[name]) <= VERIFY_TOLERANCE * max(1, abs(stored[name]))]
    return statistic, verified


def compare_runs(paths: Sequence[Path], data_root: Path | None = None, text_model: str | None = None,
                 tasks: Sequence[str] | None = None, resamples: int = 1000, seed: int = 0) -> Comparison:
    """Read, check, diagnose and bootstrap every shared task (module docstring)."""
    if len(paths) < 2:
        raise InputError("compare", None, "needs at least two run directories")
    if resamples < 1:
        raise InputError("--resamples", None, f"must be at least 1, got {resamples}")
    readers = [RunReader.open(path, data_root) for path in paths]
    shared = [t for t in readers[0].tasks if all(t in r.results["results"] for r in readers[1:])]
    if tasks:
        missing = [t for t in tasks if t not in shared]
        if missing:
            raise InputError("--task", None, f"{missing[0]} is not a task of every run (shared: {', '.join(shared) or 'none'})")
        shared = list(tasks)

    comparison = Comparison(readers, [], resamples=resamples, seed=seed)
    for task in shared:
        if readers[0].family(task) not in FAMILIES:
            comparison.notes.append(f"{task}: the {readers[0].family(task)} family has no per-sample comparison here")
            continue
        check_comparable(readers, task)
        comparison.tasks.append(task)
    if not comparison.tasks:
        raise InputError("compare", None, "the runs share no task compare can read "
                                          f"({', '.join(r.label + ': ' + ', '.join(r.tasks) for r in readers)})")
    labels = comparison.labels
    for task in comparison.tasks:
        diagnoses = [diagnose_task(reader, task, text_model) for reader in readers]
        comparison.diagnoses[task] = diagnoses
        for diagnosis, label in zip(diagnoses, labels):
            comparison.notes.extend(f"{task} ({label}): {note}" for note in diagnosis.notes)
        comparison.deltas.extend(_task_deltas(readers, labels, task, diagnoses, resamples, seed, comparison.notes))
    return comparison


def _task_deltas(readers: Sequence[RunReader], labels: Sequence[str], task: str, diagnoses: Sequence[TaskDiagnosis],
                 resamples: int, seed: int, notes: list[str]) -> list[MetricDelta]:
    base = readers[0]
    family = base.family(task)
    base_rows = base.rows(task)
    order = [row_tools.row_key(family, row) for row in base_rows]
    clusters = stats.cluster_indices([str(row.get("image_id", row.get("doc_id"))) for row in base_rows])
    base_statistic, base_verified = task_statistic(base, task, diagnoses[0], order)
    deltas = []
    for reader, label, diagnosis in zip(readers[1:], labels[1:], diagnoses[1:]):
        statistic, verified = task_statistic(reader, task, diagnosis, order)
        usable = [m for m in base_verified if m in verified]
        intervals = {}
        if statistic is not None and base_statistic is not None and usable:
            intervals = stats.paired_bootstrap_delta(
                len(clusters), stats.on_records(clusters, statistic), stats.on_records(clusters, base_statistic),
                n_resamples=resamples, seed=seed)
        stored_base, stored = base.metrics(task), reader.metrics(task)
        for metric in [m for m in stored_base if m in stored]:
            interval = intervals.get(metric) if metric in usable else None
            deltas.append(MetricDelta(task, metric, labels[0], label, stored_base[metric], stored[metric],
                                      None if interval is None else interval.low,
                                      None if interval is None else interval.high))
        unverified = sorted(set(stored_base) & set(stored) - set(usable))
        if unverified:
            notes.append(f"{task} ({label}): no paired interval for {', '.join(unverified)} "
                         "(not recomputable from the per-sample files)")
    return deltas


def summary(comparison: Comparison) -> dict[str, Any]:
    """JSON-native form (compare.json)."""

    return json_safe({
        "schema_version": 1,
        "runs": [{"label": label, "path": str(reader.path)} for label, reader in zip(comparison.labels, comparison.readers)],
        "bootstrap": {"resamples": comparison.resamples, "seed": comparison.seed, "cluster": "image",
                      "confidence": 0.95, "method": "percentile", "paired": True},
        "deltas": [{"task": d.task, "metric": d.metric, "baseline": d.baseline, "run": d.run,
                    "baseline_value": d.baseline_value, "value": d.value, "delta": d.delta,
                    "interval": None if d.low is None else [d.low, d.high], "verdict": d.verdict}
                   for d in comparison.deltas],
        "diagnoses": {task: {label: diagnosis_digest(d) for label, d in zip(comparison.labels, diagnoses)}
                      for task, diagnoses in comparison.diagnoses.items()},
        "notes": comparison.notes,
    })


def diagnosis_digest(diagnosis: TaskDiagnosis) -> dict[str, Any]:
    """The side-by-side part of a diagnosis: GCG buckets, RES failures and breakdowns, PNG breakdowns."""
    found = diagnosis.summary
    if diagnosis.family == "gcg":
        return {"buckets": found["buckets"], "breakdowns": found["breakdowns"], "hallucinated": found["hallucinated"]}
    if diagnosis.family == "res":
        return {"failures": found["failures"], "breakdowns": found["breakdowns"]}
    return {"breakdowns": found["breakdowns"]}
