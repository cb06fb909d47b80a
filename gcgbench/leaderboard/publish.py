"""Leaderboard tables shaped like the papers' (md, LaTeX, HTML, CSV) and plots of headline metrics (PNG).

One table per family file: rows are models (one per model, source and protocol), columns are
(task, metric) pairs grouped by task as GLaMM's tables group val/test or RefCOCO/RefCOCO+/RefCOCOg.
Values are ×100 with one decimal; the best value of each column is bold; every row says whether its
numbers were measured by gcgbench or reported in a paper (with a numbered citation).

Runs on the bundled synthetic sample (`<model> (sample)`) are never ranked with the rest: they get their
own tables after the rankings (never bold, never plotted). The CSV is one tidy long table of every entry.
Names (models, protocols, tasks, citations) are data: each format escapes them (Markdown: `markdown_escape`,
LaTeX: `latex_escape`, HTML: jinja2 autoescaping, plots: matplotlib's math parser off, CSV: quoted fields).
"""

from __future__ import annotations

import base64
import csv
import io
import math
from pathlib import Path
from typing import Sequence

from gcgbench.html import pages
from gcgbench.leaderboard.plots import plot_png
from gcgbench.leaderboard.emergent import emergent_board
from gcgbench.leaderboard.entry import is_points_metric
from gcgbench.leaderboard.files import Leaderboard
from gcgbench.leaderboard.from_results import is_sample_model
from gcgbench.leaderboard.tables import LAYOUTS, TASK_ORDER, Column, PaperTable, Row, build_table




def _groups(table: PaperTable) -> list[tuple[str, int]]:
    """(task label, number of columns) runs, for grouped headers."""
    groups: list[tuple[str, int]] = []
    for column in table.columns:
        if groups and groups[-1][0] == column.task_label:
            groups[-1] = (column.task_label, groups[-1][1] + 1)
        else:
            groups.append((column.task_label, 1))
    return groups


def _source(row: Row) -> str:
    return f"reported [{row.citation}]" if row.source == "reported" else "measured"


def _cell(row: Row, column: Column) -> str:
    """×100 with one decimal ("-" when missing); MME's point-scale metrics as they are."""
    value, entry = row.value(column), row.cells.get(column)
    if value is None or entry is None:
        return "-"
    return f"{value if is_points_metric(column.metric, entry.metric_config) else 100 * value:.1f}"


def _grouped(table: PaperTable) -> bool:
    """Whether some task has several metric columns (then headers are task over metric)."""
    return any(n > 1 for _, n in _groups(table))


def _header_labels(table: PaperTable) -> list[str]:
    """One header per column: "val METEOR" where tasks have several metrics, else the task ("RefCOCO val")."""
    return [f"{c.task_label} {c.label}" if _grouped(table) else c.task_label for c in table.columns]


MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
MARKDOWN_PUNCTUATION = set("\\`*_[]|~")


def markdown_escape(text: str) -> str:
    """`text` shown as it is in Markdown (CommonMark/GFM): `&`, `<`, `>` as entities (no raw HTML, autolinks
    or entities get through), and the characters of emphasis, code, links, tables and strikethrough
    backslash-escaped. Names are one line (the entry schema refuses control characters)."""
    return "".join(MARKDOWN_ENTITIES.get(c) or (f"\\{c}" if c in MARKDOWN_PUNCTUATION else c) for c in text)


def _markdown_tables(tables: Sequence[PaperTable]) -> list[str]:
    parts = []
    for table in tables:
        show_protocol = len(table.protocols) > 1
        head = ["Model", "Source"] + (["Protocol"] if show_protocol else []) + [
            markdown_escape(label) for label in _header_labels(table)]
        lines = [f"### {markdown_escape(table.title)} (×100)", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] * (2 + show_protocol) + ["---:"] * len(table.columns)) + "|"]
        for row in table.rows:
            cells = [f"**{_cell(row, c)}**" if table.is_best(row, c) else _cell(row, c) for c in table.columns]
            lines.append("| " + " | ".join([markdown_escape(row.model), _source(row)] + (
                [markdown_escape(row.protocol)] if show_protocol else []) + cells) + " |")
        lines.append("")
        lines += [f"[{i}] {markdown_escape(citation)}  " for i, citation in enumerate(table.citations, 1)]
        lines.append("Bold: best in column. measured: scored by gcgbench; reported: as published." if not table.sample
                     else "Scored on the bundled synthetic sample: a smoke test of the pipeline, not comparable with "
                          "published numbers, never bold.")
        parts.append("\n".join(lines) + "\n")
    return parts


def render_markdown(tables: Sequence[PaperTable], sample_tables: Sequence[PaperTable] = ()) -> str:
    parts = _markdown_tables(tables)
    if sample_tables:
        parts.append("## Runs on the bundled synthetic sample (not ranked)\n")
        parts += _markdown_tables(sample_tables)
    return "\n".join(parts)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "†": r"$^\dagger$",
                 "‡": r"$^\ddagger$", "×": r"$\times$",
                 "[": "{[}", "]": "{]}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}


def latex_escape(text: str) -> str:
    """`text` as LaTeX prints it: every special character spelled out (`[` braced, so a row starting with
    one is not read as the optional argument of the previous row's `\\\\`)."""
    return "".join(LATEX_SPECIAL.get(character, character) for character in text)


def render_latex(tables: Sequence[PaperTable], sample_tables: Sequence[PaperTable] = ()) -> str:
    """booktabs tables (\\usepackage{booktabs}), one per family; reported rows marked with their citation;
    runs on the bundled sample in tables of their own after the rankings."""
    parts = []
    for table in [*tables, *sample_tables]:
        show_protocol = len(table.protocols) > 1
        lead = 2 + show_protocol
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)} ($\times$100).}}",
                 r"\begin{tabular}{" + "l" * lead + "r" * len(table.columns) + "}", r"\toprule"]
        if _grouped(table):
            lines.append(" & " * (lead - 1) + " & " + " & ".join(
                rf"\multicolumn{{{n}}}{{c}}{{{latex_escape(label)}}}" for label, n in _groups(table)) + r" \\")
            labels = [latex_escape(c.label) for c in table.columns]
        else:
            labels = [latex_escape(c.task_label) for c in table.columns]
        lines.append(" & ".join(["Model", "Source"] + (["Protocol"] if show_protocol else []) + labels) + r" \\")
        lines.append(r"\midrule")
        for row in table.rows:
            cells = [rf"\textbf{{{_cell(row, c)}}}" if table.is_best(row, c) else _cell(row, c) for c in table.columns]
            lines.append(" & ".join([latex_escape(row.model), _source(row)] + ([latex_escape(row.protocol)]
                                                                               if show_protocol else []) + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\par\vspace{2pt}", r"{\footnotesize"]
        lines += [rf"{{[}}{i}{{]}} {latex_escape(c)}\\" for i, c in enumerate(table.citations, 1)]  # not \\[1]
        lines.append(r"Bold: best in column; measured: scored by gcgbench; reported: as published.}" if not table.sample
                     else r"Scored on the bundled synthetic sample: not comparable with published numbers.}")
        lines.append(r"\end{table}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


CSV_COLUMNS = ("family", "task", "version", "protocol", "model", "source", "metric", "value", "low", "high", "n",
               "citation")


def render_csv(boards: Sequence[Leaderboard]) -> str:
    """One tidy long table: a row per (entry, metric), columns `CSV_COLUMNS`. Values and interval bounds are
    as the files hold them (fractions; MME points as they are), at full precision; empty where missing.
    Every entry is a row, runs on the bundled sample too (their model name ends in " (sample)")."""
    order = {task: i for i, task in enumerate(TASK_ORDER)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for board in boards:
        layout = LAYOUTS.get(board.family)
        for entry in sorted(board.entries, key=lambda e: (order.get(e.task, len(order)), e.task, e.task_version,
                                                          e.protocol, e.source != "reported", e.model)):
            listed = [m for m in (layout.metrics if layout else ()) if m in entry.metrics]
            for metric in listed + sorted(set(entry.metrics) - set(listed)):
                value, interval = entry.metrics[metric], entry.intervals.get(metric) or {}
                writer.writerow([board.family, entry.task, entry.task_version, entry.protocol, entry.model,
                                 entry.source, metric, "" if math.isnan(value) else repr(value),
                                 _bound(interval.get("low")), _bound(interval.get("high")),
                                 "" if entry.n is None else entry.n, entry.citation or ""])
    return buffer.getvalue()


def _bound(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def render_html(tables: Sequence[PaperTable], plots: dict[str, bytes] | None = None,
                sample_tables: Sequence[PaperTable] = ()) -> str:
    """A self-contained page (templates/leaderboards.html, autoescaped): every family's table, its plot as a
    data-URI PNG when given, then the runs on the bundled sample in tables of their own."""
    plots = plots or {}

    def view(table: PaperTable) -> dict:
        rows = []
        for row in table.rows:
            cells = []
            for column in table.columns:
                interval = row.interval(column)
                cells.append({"text": _cell(row, column), "best": table.is_best(row, column),
                              "title": f"95% CI {100 * interval[0]:.1f}–{100 * interval[1]:.1f}" if interval else None})
            rows.append({"model": row.model, "source": row.source, "source_label": _source(row),
                         "protocol": row.protocol, "cells": cells})
        image = plots.get(table.family) if not table.sample else None
        return {"title": table.title, "family": table.family, "protocol_column": len(table.protocols) > 1,
                "groups": _groups(table) if _grouped(table) else None,
                "labels": [c.label for c in table.columns] if _grouped(table) else [c.task_label for c in table.columns],
                "rows": rows, "citations": table.citations, "sample": table.sample,
                "plot": "data:image/png;base64," + base64.b64encode(image).decode("ascii") if image else None}

    return pages.render("leaderboards.html", tables=[view(t) for t in tables],
                        sample_tables=[view(t) for t in sample_tables])


EXTENSIONS = {"md": "md", "latex": "tex", "csv": "csv", "html": "html"}


def publish(boards: Sequence[Leaderboard], fmt: str, output: Path | None = None, plots: bool = True,
            sample_runs: bool = True) -> tuple[str, list[Path]]:
    """Render every board in `fmt`; with `output` (a folder) write `leaderboards.<ext>` and, with `plots`,
    `<family>.png` per family. Runs on the bundled sample are never ranked or plotted: they follow in tables
    of their own (rows of their own in the CSV), or are left out with `sample_runs=False`.
    Returns (the rendered text, the files written)."""
    if fmt not in EXTENSIONS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(EXTENSIONS)}")
    families = list(LAYOUTS)
    ordered = sorted(boards, key=lambda b: (families.index(b.family) if b.family in families else len(families), b.family))
    tables = [t for board in ordered if (t := build_table(board)).rows]
    sample_tables = [t for board in ordered if (t := build_table(board, sample=True)).rows] if sample_runs else []
    emergent = emergent_board(ordered)
    if (table := build_table(emergent)).rows:
        tables.append(table)
    if sample_runs and (table := build_table(emergent, sample=True)).rows:
        sample_tables.append(table)
    images: dict[str, bytes] = {}
    if plots and (output is not None or fmt == "html"):
        images = {t.family: image for t in tables if (image := plot_png(t)) is not None}
    if fmt == "html":
        text = render_html(tables, images, sample_tables)
    elif fmt == "csv":
        text = render_csv(ordered if sample_runs else [_without_sample_runs(board) for board in ordered])
    else:
        text = (render_markdown if fmt == "md" else render_latex)(tables, sample_tables)
    written: list[Path] = []
    if output is not None:
        output = Path(output)
        output.mkdir(parents=True, exist_ok=True)
        target = output / f"leaderboards.{EXTENSIONS[fmt]}"
        target.write_text(text, encoding="utf-8")
        written.append(target)
        if plots:
            for family, image in images.items():
                (output / f"{family}.png").write_bytes(image)
                written.append(output / f"{family}.png")
    return text, written


def _without_sample_runs(board: Leaderboard) -> Leaderboard:
    return Leaderboard(board.path, board.family, [e for e in board.entries if not is_sample_model(e.model)],
                       board.migrated_from)
