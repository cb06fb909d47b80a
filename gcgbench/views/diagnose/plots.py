"""Bar charts of the diagnosis breakdowns (matplotlib, Agg), as data-URI PNGs for self-contained pages."""

from __future__ import annotations

import base64
import io
import math
from typing import Mapping, Sequence

# colour-blind-safe (Okabe-Ito), one per series (run)
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def bars(title: str, categories: Sequence[str], series: Mapping[str, Sequence[float | None]], ylabel: str,
         counts: Sequence[str] | None = None, horizontal: bool = False, width_inches: float = 6.4) -> str:
    """Grouped bars: one group per category, one bar per series; None/NaN draws no bar. `counts` labels
    each category (e.g. "n=12"). Returns a `data:image/png;base64,...` URI."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = list(series)
    height = max(2.4, 0.42 * len(categories) * max(1, len(names)) + 1.2) if horizontal else 3.4
    figure = Figure(figsize=(width_inches, height), dpi=90, layout="constrained")
    axes = figure.subplots()
    step = 0.8 / max(1, len(names))
    positions = range(len(categories))
    for number, name in enumerate(names):
        values = [float("nan") if v is None else float(v) for v in series[name]]
        offsets = [p - 0.4 + step * (number + 0.5) for p in positions]
        draw = axes.barh if horizontal else axes.bar
        drawn = draw(offsets, [0.0 if math.isnan(v) else v for v in values], step * 0.92,
                     color=SERIES_COLOURS[number % len(SERIES_COLOURS)], label=name)
        for patch, value in zip(drawn, values):
            if math.isnan(value):
                patch.set_visible(False)
                continue
            text = f"{value:.1f}"
            if horizontal:
                axes.annotate(text, (patch.get_width(), patch.get_y() + patch.get_height() / 2), xytext=(3, 0),
                              textcoords="offset points", va="center", fontsize=7)
            else:
                axes.annotate(text, (patch.get_x() + patch.get_width() / 2, patch.get_height()), xytext=(0, 2),
                              textcoords="offset points", ha="center", fontsize=7)
    labels = [f"{c}\n{n}" if counts else c for c, n in zip(categories, counts or categories)]
    if horizontal:
        axes.set_yticks(list(positions), labels, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlabel(ylabel)
        axes.margins(x=0.15)
    else:
        axes.set_xticks(list(positions), labels, fontsize=8)
        axes.set_ylabel(ylabel)
        axes.margins(y=0.15)
    axes.set_title(title, fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    if len(names) > 1:
        axes.legend(fontsize=7, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
