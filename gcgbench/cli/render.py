"""Terminal tables of results (metrics ×100 with one decimal, as the papers print them)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from rich.console import Console
from rich.table import Table



def format_value(value: float, points: bool = False) -> str:
    """A fraction as the papers print it: ×100, one decimal; a score already in points (MME) as it is;
    NaN as 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value if points else 100 * value:.1f}"


def is_points_metric(name: str, metric_config: Mapping[str, Any]) -> bool:
    """MME reports points (0-200 per subtask, sums for perception/cognition), not fractions."""
    return "points_metrics" in metric_config and (name in ("perception", "cognition") or name.endswith("_score"))


def scale_label(metrics: Mapping[str, Any], metric_config: Mapping[str, Any]) -> str:
    """What the numbers of a results table are: fractions shown ×100, MME's points as they are, or both."""
    points = [is_points_metric(name, metric_config) for name in metrics]
    if points and all(points):
        return "points, as MME reports them"
    if any(points):
        return "fractions ×100; perception, cognition and *_score in points"
    return "fractions ×100"


def print_results(console: Console, results: Mapping[str, Any]) -> None:
    for task, metrics in results["results"].items():
        config = results.get("metric_config", {}).get(task, {})
        table = Table(title=f"{task}  (n={results['n_samples'][task]}; {scale_label(metrics, config)})")
        table.add_column("metric", no_wrap=True)
        table.add_column("value", justify="right")
        table.add_column("95% interval", justify="right")
        intervals = results["intervals"].get(task, {})
        for name, value in metrics.items():
            points = is_points_metric(name, config)
            interval = intervals.get(name)
            span = f"{format_value(interval['low'], points)} – {format_value(interval['high'], points)}" if interval else ""
            table.add_row(name, format_value(value, points), span)
        console.print(table)
        for note in results.get("notes", {}).get(task, []):
            console.print(f"note: {note}")
