"""Re-measuring a reproduction card: the checks before any model loads, and the verdict after the run.

`check_weights` makes sure every checkpoint file a card names exists under the weights folder (and, where the
card knows it, has the published sha256) — one line naming the first missing file, before any model loads.
`compare` turns a run's results.json into one row per reported metric:

    Δ = measured − reported;  PASS  ⇔  |Δ| ≤ tolerance[metric]   (and the run scored under the card's protocols)

The 95% interval is the run's bootstrap interval (results.json `intervals`); `inside` says whether the reported
value lies in it. The interval describes the sampling of the test images, not the reproduction, so it is shown
beside the verdict and does not decide it. Values are compared as results.json stores them (fractions; MME in
points), the tolerance in the same units.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.errors import InputError
from gcgbench.api.hashing import cached_sha256
from gcgbench.leaderboard.cards import GLOB_CHARS, Card, alternatives
from gcgbench.models.embedded import checkpoints_root


def package_weights() -> Path:
    """`gcgbench/checkpoints`: the shipped tiny checkpoints (the `{weights}` of `weights: package` cards)."""

    return checkpoints_root()


def weights_folder(card: Card, weights: Path | None) -> Path:
    """The folder `{weights}` stands for: --weights, or the package's checkpoints for `weights: package` cards."""
    if weights is None:
        if card.weights == "package":
            return package_weights()
        raise InputError("--weights", None, f"card {card.name} needs --weights DIR: the folder holding "
                                            f"{', '.join(c.path for c in card.checkpoints)}")
    if not Path(weights).is_dir():
        raise InputError("--weights", str(weights), "not a folder")
    return Path(weights)


def expected_files(card: Card, weights: Path) -> list[tuple[str, str]]:
    """(checkpoint name, path or glob under `weights`) of every file the card expects."""
    wanted = []
    for checkpoint in card.checkpoints:
        if not checkpoint.files:
            wanted.append((checkpoint.name, checkpoint.path))
        wanted.extend((checkpoint.name, " | ".join(f"{checkpoint.path}/{part}" for part in alternatives(file)))
                      for file in checkpoint.files)
    return wanted


def check_weights(card: Card, weights: Path, verify_sha256: bool = True) -> list[str]:
    """Raise InputError (one line) if a file is missing or has another sha256 than the card's; else return one
    line per checkpoint saying what was checked."""
    missing = [(name, relative) for name, relative in expected_files(card, weights) if not _present(weights, relative)]
    if missing:
        name, relative = missing[0]
        more = f" (and {len(missing) - 1} more file(s))" if len(missing) > 1 else ""
        raise InputError("--weights", str(weights), f"card {card.name}: {relative} of {name} not found{more}; "
                                                    f"fetch it first (docs/reproduction.md lists every file)")
    lines = []
    for checkpoint in card.checkpoints:
        known = {f: d for f, d in checkpoint.sha256.items() if d is not None}
        for file, digest in sorted(known.items()):
            path = weights / checkpoint.path if file == "." else weights / checkpoint.path / file
            if verify_sha256 and cached_sha256(path) != digest:
                raise InputError(path, None, f"sha256 {cached_sha256(path)[:12]}… differs from the published "
                                             f"{digest[:12]}… of {checkpoint.name}: another version of the file")
        unknown = [f for f, d in checkpoint.sha256.items() if d is None]
        state = (f"{len(known)} sha256 verified" if verify_sha256 and known else
                 "sha256 not checked" if known else "no published sha256")
        extra = f"; unknown for {', '.join(unknown)}" if unknown and known else ""
        lines.append(f"ok {checkpoint.name} ({checkpoint.path}): files present, {state}{extra}")
    return lines


def _present(weights: Path, relative: str) -> bool:
    """`relative` ("dir/a | dir/b", globs allowed) names an existing file under `weights`."""
    for option in alternatives(relative):
        if GLOB_CHARS & set(option):
            if any(p.is_file() for p in weights.glob(option)):
                return True
        elif (weights / option).exists():
            return True
    return False


@dataclass(frozen=True)
class Row:
    task: str
    metric: str
    reported: float
    measured: float | None
    low: float | None
    high: float | None
    tolerance: float
    passed: bool
    reason: str

    @property
    def delta(self) -> float | None:
        return None if self.measured is None else self.measured - self.reported

    @property
    def inside(self) -> bool | None:
        if self.low is None or self.high is None:
            return None
        return self.low <= self.reported <= self.high


def recorded_generation_protocol(results: Mapping[str, Any], task: str) -> str | None:
    """The generation protocol a run recorded for `task`, where results.json has one (None where it has not:
    runs made before backends recorded it). Looked up in `generation_protocol[task]`, then the task's
    `metric_config`, then `config.generation_protocol` (a name or a {task: name} mapping)."""
    for holder in (results.get("generation_protocol"), results.get("metric_config", {}).get(task, {}),
                   results.get("config", {}).get("generation_protocol")):
        if isinstance(holder, str):
            return holder
        if isinstance(holder, Mapping):
            value = holder.get(task) if task in holder else holder.get("generation_protocol")
            if isinstance(value, str):
                return value
    return None


def compare(card: Card, results: Mapping[str, Any]) -> list[Row]:
    """One row per (task, metric) the card reports, in card order."""
    rows = []
    for task, metrics in card.reported.items():
        config = results.get("metric_config", {}).get(task, {})
        scored = str(config.get("protocol") or "default")
        generated = recorded_generation_protocol(results, task)
        problem = None
        if task not in results.get("results", {}):
            problem = "task not in the run's results"
        elif scored != card.leaderboard["protocol"]:
            problem = f"scored under protocol {scored!r}, the entry under {card.leaderboard['protocol']!r}"
        elif card.generation_protocol is not None and generated is not None and generated != card.generation_protocol:
            problem = f"generated under protocol {generated!r}, the card asks for {card.generation_protocol!r}"
        values = results.get("results", {}).get(task, {})
        intervals = results.get("intervals", {}).get(task, {})
        for metric, reported in metrics.items():
            measured = values.get(metric)
            if measured is not None and isinstance(measured, float) and math.isnan(measured):
                measured = None
            interval = intervals.get(metric) or {}
            tolerance = card.tolerance[metric]
            if problem:
                passed, reason = False, problem
            elif measured is None:
                passed, reason = False, "metric not measured"
            else:
                passed = abs(measured - reported) <= tolerance + 1e-12
                reason = "" if passed else f"|Δ| {abs(measured - reported):.4g} > tolerance {tolerance:g}"
            rows.append(Row(task, metric, reported, measured, interval.get("low"), interval.get("high"), tolerance,
                            passed, reason))
    return rows


def verdict_payload(card: Card, rows: list[Row], results_path: Path | None, limit: int | None) -> dict[str, Any]:
    """What `reproduction.json` holds beside results.json."""
    return {"card": card.name, "card_file": str(card.source), "title": card.title, "leaderboard": card.leaderboard,
            "generation_protocol": card.generation_protocol, "scoring_protocol": card.scoring_protocol,
            "limit": limit, "results": None if results_path is None else str(results_path),
            "passed": all(row.passed for row in rows),
            "rows": [{**asdict(row), "delta": row.delta, "inside_interval": row.inside} for row in rows]}
