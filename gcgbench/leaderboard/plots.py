"""Plots of a leaderboard table's headline metric (PNG bytes), for `leaderboard publish`."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from gcgbench.api.errors import GcgbenchError

if TYPE_CHECKING:
    from gcgbench.leaderboard.tables import PaperTable


def plot_png(table: PaperTable) -> bytes | None:
    """Horizontal bars of the headline metric per task (×100) with 95% intervals where measured; measured
    bars solid, reported bars hatched. None when the table has no headline column. Names are drawn as
    plain text (`parse_math=False`): a `$` in a model name is a dollar sign, not mathtext."""
    columns = [c for c in table.columns if c.metric == table.headline]
    if not columns:
        return None
    try:
        import matplotlib
    except ImportError:
        raise GcgbenchError("plots need matplotlib (pip install matplotlib), or pass --no-plots") from None

    matplotlib.use("Agg")
    from matplotlib import pyplot

    n_columns = min(4, len(columns))
    n_rows = math.ceil(len(columns) / n_columns)
    height = max(2.0, 0.28 * len(table.rows) + 1.0)
    mixed = len(table.protocols) > 1
    longest = max((len(f"{r.model} [{r.protocol}]" if mixed else r.model) for r in table.rows), default=0)
    width = 2.4 + 0.06 * longest  # room for the whole name at 7 pt (about 0.06 in a character): names are never cut
    figure, axes = pyplot.subplots(n_rows, n_columns, figsize=(max(3.6, width) * n_columns, height * n_rows),
                                   squeeze=False)
    for axis, column in zip(axes.flat, columns):
        present = sorted((r for r in table.rows if r.value(column) is not None), key=lambda r: r.value(column))
        values = [100 * r.value(column) for r in present]
        colours = ["#2e7d32" if r.source == "measured" else "#9e9e9e" for r in present]
        bars = axis.barh(range(len(present)), values, color=colours)
        for position, (bar, row) in enumerate(zip(bars, present)):
            if row.source == "reported":
                bar.set_hatch("//")
            interval = row.interval(column)
            if interval is not None:
                axis.errorbar([100 * row.value(column)], [position], capsize=3, color="black", elinewidth=1,
                              xerr=[[100 * max(row.value(column) - interval[0], 0)],
                                    [100 * max(interval[1] - row.value(column), 0)]])
        axis.bar_label(bars, fmt="%.1f", fontsize=6, padding=2)
        labels = [f"{r.model} [{r.protocol}]" if mixed else r.model for r in present]
        axis.set_yticks(list(range(len(present))), labels, fontsize=7, parse_math=False, usetex=False)
        axis.set_title(f"{column.task_label} {column.label}", fontsize=9, parse_math=False, usetex=False)
        axis.tick_params(axis="x", labelsize=7)
        axis.margins(x=0.12)
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    figure.suptitle(f"{table.title} (×100; green: measured, hatched: reported)", fontsize=9, parse_math=False,
                    usetex=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot.close(figure)
    return buffer.getvalue()
