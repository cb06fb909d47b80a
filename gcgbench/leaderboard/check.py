"""`gcgbench check RESULTS --against BASELINE`: did a run get worse than its baseline?

The baseline is a leaderboard file or folder (the entry of the same model, task@version and protocol:
measured with the same fingerprint first, then any measured one, then a reported one) or another run
(results.json or its folder). Per metric (all metrics are higher-is-better), with Δ = candidate − baseline:

- **tolerance**: Δ < −tolerance is a regression (`--tolerance`, a fraction: 0.01 is one point ×100; default 0);
- **interval**: a drop the 95% intervals call real is a regression too, at any tolerance:
  - both runs have per-sample files (`samples/<task>.jsonl`) with the same samples: paired bootstrap
    (`stats.paired_bootstrap_delta`, images resampled, both runs on the same resamples); a regression when
    the whole interval of Δ lies below 0 (metrics the rows cannot recompute, e.g. GCG AP50, fall back to:)
  - stored intervals: a regression when the candidate lies below the baseline's interval and the baseline
    above the candidate's (where only one side has an interval, that one decides);
  - neither (e.g. a reported number without intervals): tolerance only.
`--ignore-intervals` keeps only the tolerance rule.

The gate fails (status "failed", exit 1), never silently passes, when the candidate cannot be judged
against a baseline it has: a task of the candidate has no baseline entry, or one of another version or
protocol; a baseline metric is missing from the candidate or NaN there. `--task` / `--metric` narrow
what is checked (a name the run does not have is an input error); `--tolerance` above `MAX_TOLERANCE`
(5 points) needs `allow_large_tolerance`, and a non-finite one is always refused.
Exit status: 0 no regression, 1 a regression or a failed check, 2 nothing comparable or bad input.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.api.hashing import fingerprint_sha256
from gcgbench.leaderboard import files, from_results, rows
from gcgbench.metrics import stats
from gcgbench.metrics.gcg import RENAMED

EPSILON = 1e-9  # float noise between platforms is no regression
MAX_TOLERANCE = 0.05  # 5.0 points (×100): a larger allowed drop hides real regressions unless asked for


@dataclass(frozen=True)
class MetricCheck:
    """The verdict on one metric of one task."""

    task: str
    metric: str
    baseline: float
    candidate: float
    method: str  # "paired bootstrap" | "stored intervals" | "tolerance only"
    status: str  # "regression" | "failed" (cannot be judged) | "ok" | "improved" | "skipped"
    reason: str = ""
    delta_low: float | None = None  # 95% interval of Δ (paired bootstrap only)
    delta_high: float | None = None

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline


@dataclass
class CheckReport:
    """Every metric compared, what each was compared against, and the settings used."""

    candidate: str
    baseline: str
    tolerance: float
    checks: list[MetricCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricCheck]:
        return [check for check in self.checks if check.status == "regression"]

    @property
    def failed(self) -> list[MetricCheck]:
        """Checks that could not be judged although the gate needs them (missing, NaN, other version)."""
        return [check for check in self.checks if check.status == "failed"]

    @property
    def passed(self) -> bool:
        return not self.regressions and not self.failed

    @property
    def compared(self) -> list[MetricCheck]:
        return [check for check in self.checks if check.status not in ("skipped", "failed")]


@dataclass(frozen=True)
class Baseline:
    """What one task of the candidate is compared against."""

    label: str
    version: str
    protocol: str
    metrics: Mapping[str, float]
    intervals: Mapping[str, Mapping[str, Any]]
    run_dir: Path | None = None  # for per-sample rows


def check(
    results_path: Path,
    against: Path,
    tolerance: float = 0.0,
    model: str | None = None,
    metrics: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    use_intervals: bool = True,
    tasks: Sequence[str] | None = None,
    allow_large_tolerance: bool = False,
) -> CheckReport:
    """Compare every task of a results.json with its baseline (module docstring for the rules)."""
    _check_tolerance(tolerance, allow_large_tolerance)
    results, path = from_results.read_results(results_path)
    run_dir = path.parent
    _check_names("--task", tasks, set(results["results"]), path)
    _check_names("--metric", metrics, {m for values in results["results"].values() for m in values}, path)
    name = model or from_results.run_model_name(results.get("config") or {})
    baselines, label = _baselines(Path(against), results, name)
    report = CheckReport(str(path), label, tolerance)
    nan = float("nan")
    for task, values in results["results"].items():
        if tasks is not None and task not in tasks:
            continue
        version = str(results["versions"][task])
        protocol = str(((results.get("metric_config") or {}).get(task) or {}).get("protocol") or "default")
        base = baselines(task, version, protocol)
        if isinstance(base, str):
            report.checks.append(MetricCheck(task, "-", nan, nan, "-", "failed", base))
            continue
        candidate_values = {k: nan if v is None else float(v) for k, v in values.items()}
        wanted = [m for m in base.metrics if metrics is None or m in metrics]
        for metric in wanted:  # what the baseline has, the candidate must have (a number)
            baseline_value = float(base.metrics[metric])
            if metric not in candidate_values and not math.isnan(baseline_value):
                report.checks.append(MetricCheck(task, metric, baseline_value, nan, "-", "failed",
                                                 "missing from the candidate (the baseline has it)"))
            elif metric in candidate_values and math.isnan(candidate_values[metric]) and not math.isnan(baseline_value):
                report.checks.append(MetricCheck(task, metric, baseline_value, nan, "-", "failed",
                                                 "NaN in the candidate (the baseline has a value)"))
        chosen = [m for m in candidate_values if m in base.metrics and (metrics is None or m in metrics)
                  and not math.isnan(candidate_values[m])]
        if not chosen:
            report.notes.append(f"{task}: no metric in common with {base.label}")
            continue
        paired = _paired(task, protocol, run_dir, candidate_values, base, resamples, seed) if use_intervals else {}
        candidate_intervals = (results.get("intervals") or {}).get(task) or {}
        for metric in chosen:
            report.checks.append(_verdict(task, metric, candidate_values[metric], base, paired.get(metric),
                                          candidate_intervals.get(metric) if use_intervals else None,
                                          tolerance, use_intervals))
    if not report.compared:
        reasons = "; ".join(report.notes + [f"{c.task}: {c.reason}" for c in report.failed]) or "no task in common"
        raise GcgbenchError(f"nothing to compare between {path} and {against}: {reasons}")
    return report


def _check_tolerance(tolerance: float, allow_large: bool) -> None:
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InputError("--tolerance", None, f"must be a finite non-negative fraction (0.01 = 1.0 point), got {tolerance}")
    if tolerance > MAX_TOLERANCE and not allow_large:
        raise InputError("--tolerance", None, f"{tolerance} allows a drop of {100 * tolerance:.1f} points (a fraction: "
                                              f"0.01 = 1.0 point); above {MAX_TOLERANCE} pass --allow-large-tolerance")


def _check_names(option: str, names: Sequence[str] | None, known: set[str], path: Path) -> None:
    if names is None:
        return
    if not names:
        raise InputError(option, None, "names no task or metric")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(option, None, f"{', '.join(map(repr, unknown))} not in {path}; it has: {', '.join(sorted(known))}")


def _baselines(against: Path, results: Mapping[str, Any], model: str | None):
    """A function task, version, protocol -> Baseline (or a string saying why there is none), and a label."""
    payload = None
    if against.is_file():
        try:
            payload = json.loads(against.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise InputError(against, None, f"not valid JSON ({error.msg} at line {error.lineno})") from None
        except UnicodeDecodeError as error:
            raise InputError(against, None, f"not UTF-8 text (byte {error.start} of the bad chunk)") from None
        except RecursionError:
            raise InputError(against, None, "JSON nested too deeply to read") from None
    is_run = (against.is_dir() and (against / "results.json").is_file()) or (isinstance(payload, dict) and "results" in payload)
    if is_run:
        other, other_path = from_results.read_results(against)

        def from_run(task: str, version: str, protocol: str) -> Baseline | str:
            if task not in other["results"]:
                return f"the baseline run has no {task}"
            found_version = str(other["versions"].get(task))
            found_protocol = str(((other.get("metric_config") or {}).get(task) or {}).get("protocol") or "default")
            if (found_version, found_protocol) != (version, protocol):
                return f"baseline is {task}@{found_version} ({found_protocol}), this run {task}@{version} ({protocol})"
            values = {k: float("nan") if v is None else float(v) for k, v in other["results"][task].items()}
            return Baseline(str(other_path), version, protocol, values, (other.get("intervals") or {}).get(task) or {},
                            other_path.parent)

        return from_run, str(other_path)
    if not against.exists():
        raise InputError(against, None, "baseline not found (a leaderboard file or folder, or a results.json)")
    boards = files.load_all(against) if against.is_dir() else [files.load(against)]
    if model is None:
        raise InputError(against, None, "the run names no model (a `gcgbench score` run?): pass --model NAME")
    fingerprint = fingerprint_sha256((results.get("config") or {}).get("fingerprint") or {"name": model})
    entries = [entry for board in boards for entry in board.entries]

    def from_board(task: str, version: str, protocol: str) -> Baseline | str:
        same_task = [e for e in entries if e.task == task and e.model == model]
        if not same_task:
            return f"no leaderboard entry for model {model!r} on {task}"
        matching = [e for e in same_task if e.task_version == version and e.protocol == protocol]
        if not matching:
            found = ", ".join(sorted({f"{e.task_at_version} ({e.protocol})" for e in same_task}))
            return f"leaderboard has {model} on {found} only; this run is {task}@{version} ({protocol})"
        matching.sort(key=lambda e: (e.source != "measured", e.fingerprint_sha256 != fingerprint))
        entry = matching[0]
        label = f"{entry.model} {entry.task_at_version} {entry.source}" + (f" ({entry.citation})" if entry.citation else "")
        # a leaderboard file written before a metric was renamed still names it by its former name
        return Baseline(label, version, protocol, {RENAMED.get(k, k): v for k, v in entry.metrics.items()},
                        {RENAMED.get(k, k): v for k, v in entry.intervals.items()})

    return from_board, str(against)


def _paired(task: str, protocol: str, run_dir: Path, values: Mapping[str, float], base: Baseline, resamples: int,
            seed: int) -> dict[str, tuple[float, float] | str]:
    """Per metric: the 95% interval of Δ from a paired bootstrap over per-sample rows, or why there is none."""
    if base.run_dir is None:
        return {}
    family = files.family_of(task)
    found_candidate, found_baseline = rows.read_rows(run_dir, task), rows.read_rows(base.run_dir, task)
    if found_candidate is None or found_baseline is None:
        return {}
    candidate = rows.row_metrics(family, protocol, found_candidate, values)
    baseline = rows.row_metrics(family, protocol, found_baseline, base.metrics)
    if candidate is None or baseline is None:
        return {}
    order, problem = rows.align(candidate, baseline)
    if problem:
        return {metric: problem for metric in values}
    usable = set(candidate.verified(values)) & set(baseline.verified(base.metrics))
    if not usable:
        return {}
    clusters = stats.cluster_indices(list(candidate.clusters))
    deltas = stats.paired_bootstrap_delta(
        len(clusters),
        stats.on_records(clusters, candidate.statistic),
        stats.on_records(clusters, lambda indices: baseline.statistic(order[indices])),
        n_resamples=resamples, seed=seed,
    )
    return {metric: (interval.low, interval.high) for metric, interval in deltas.items() if metric in usable}


def _verdict(task: str, metric: str, candidate: float, base: Baseline, paired: tuple[float, float] | str | None,
             candidate_interval: Mapping[str, Any] | None, tolerance: float, use_intervals: bool) -> MetricCheck:
    baseline = float(base.metrics[metric])
    if math.isnan(candidate) or math.isnan(baseline):
        return MetricCheck(task, metric, baseline, candidate, "-", "skipped", "undefined (NaN) value")
    delta = candidate - baseline
    reasons, significant_drop, significant_gain = [], False, False
    low = high = None
    if isinstance(paired, tuple):
        method = "paired bootstrap"
        low, high = paired
        significant_drop, significant_gain = high < -EPSILON, low > EPSILON
        if significant_drop:
            reasons.append(f"95% interval of Δ [{_points(low)}, {_points(high)}] below 0")
    else:
        base_interval = _bounds(base.intervals.get(metric)) if use_intervals else None
        own_interval = _bounds(candidate_interval) if use_intervals else None
        method = "stored intervals" if (base_interval or own_interval) else "tolerance only"
        if method == "stored intervals":
            below = base_interval is None or candidate < base_interval[0] - EPSILON
            above = own_interval is None or baseline > own_interval[1] + EPSILON
            significant_drop = below and above
            significant_gain = ((base_interval is None or candidate > base_interval[1] + EPSILON)
                                and (own_interval is None or baseline < own_interval[0] - EPSILON))
            if significant_drop:
                reasons.append("outside the 95% interval(s)")
        if isinstance(paired, str):
            reasons.append(f"no paired bootstrap: {paired}")
    beyond_tolerance = delta < -tolerance - EPSILON
    if beyond_tolerance:
        reasons.insert(0, f"drop {_points(-delta)} > tolerance {_points(tolerance)}")
    if beyond_tolerance or significant_drop:
        status = "regression"
    elif delta > tolerance + EPSILON or significant_gain:
        status = "improved"
    else:
        status = "ok"
    return MetricCheck(task, metric, baseline, candidate, method, status, "; ".join(reasons), low, high)


def _bounds(interval: Mapping[str, Any] | None) -> tuple[float, float] | None:
    if not interval or interval.get("low") is None or interval.get("high") is None:
        return None
    low, high = float(interval["low"]), float(interval["high"])
    return None if math.isnan(low) or math.isnan(high) else (low, high)


def _points(value: float) -> str:
    """A fraction as points ×100, two decimals (differences are small)."""
    return f"{100 * value:+.2f}" if value < 0 else f"{100 * value:.2f}"


STYLE = {"regression": "bold red", "failed": "bold red", "ok": "green", "improved": "cyan", "skipped": "dim"}


def render(report: CheckReport, console: Console) -> None:
    """The diff table (×100), one row per task and metric, then notes and the verdict. Names and paths are
    printed as text (`escape`), never read as rich markup."""
    from rich.markup import escape

    table = Table(title=escape(f"check: {report.candidate}\nagainst: {report.baseline}  (×100, tolerance "
                               f"{100 * report.tolerance:.2f})"))
    for column, justify in (("task", "left"), ("metric", "left"), ("baseline", "right"), ("candidate", "right"),
                            ("Δ", "right"), ("95% CI of Δ", "right"), ("method", "left"), ("status", "left")):
        table.add_column(column, justify=justify)
    for item in report.checks:
        interval = "" if item.delta_low is None else f"[{100 * item.delta_low:+.2f}, {100 * item.delta_high:+.2f}]"
        delta = "" if math.isnan(item.delta) else f"{100 * item.delta:+.2f}"
        status = f"[{STYLE[item.status]}]{item.status}[/]" + (escape(f" ({item.reason})") if item.reason else "")
        table.add_row(escape(item.task), escape(item.metric), _value(item.baseline), _value(item.candidate), delta, interval,
                      item.method, status)
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    for item in report.failed:
        console.print(f"FAIL {item.task}" + ("" if item.metric == "-" else f" {item.metric}") + f": {item.reason}",
                      markup=False, highlight=False)
    if report.regressions or report.failed:
        console.print(f"[bold red]FAIL[/]: {len(report.regressions)} regression(s) in {len(report.compared)} "
                      f"comparisons, {len(report.failed)} check(s) that could not be made")
    else:
        console.print(f"[green]PASS[/]: {len(report.compared)} comparisons, no regression")


def _value(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def summary(report: CheckReport) -> dict[str, Any]:
    """A JSON-native form of the report (for `--json`)."""
    return {
        "candidate": report.candidate, "baseline": report.baseline, "tolerance": report.tolerance,
        "passed": report.passed, "notes": report.notes,
        "checks": [{"task": c.task, "metric": c.metric, "baseline": _num(c.baseline), "candidate": _num(c.candidate),
                    "delta": _num(c.delta), "delta_interval": None if c.delta_low is None else [c.delta_low, c.delta_high],
                    "method": c.method, "status": c.status, "reason": c.reason} for c in report.checks],
    }


def _num(value: float) -> float | None:
    return None if isinstance(value, float) and (math.isnan(value) or np.isinf(value)) else value
