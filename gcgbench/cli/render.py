"""Terminal tables of results (metrics ×100 with one decimal, as the papers print them)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from rich.console import Console
from rich.table import Table



def format_value(value: float) -> str:
    """A fraction as the papers print it: ×100, one decimal; NaN as 'n/a'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}"


def print_results(console: Console, results: Mapping[str, Any]) -> None:
    for task, metrics in results["results"].items():
        table = Table(title=f"{task}  (n={results['n_samples'][task]}, ×100)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("95% interval", justify="right")
        intervals = results["intervals"].get(task, {})
        for name, value in metrics.items():
            interval = intervals.get(name)
            span = f"{format_value(interval['low'])} – {format_value(interval['high'])}" if interval else ""
            table.add_row(name, format_value(value), span)
        console.print(table)
        for note in results.get("notes", {}).get(task, []):
            console.print(f"note: {note}")
