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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from gcgbench.html import pages
from gcgbench.leaderboard.plots import plot_png
from gcgbench.leaderboard.emergent import EMERGENT, emergent_board
from gcgbench.leaderboard.entry import Entry, is_points_metric
from gcgbench.leaderboard.files import Leaderboard
from gcgbench.leaderboard.from_results import is_sample_model




@dataclass(frozen=True)
class Layout:
    title: str
    metrics: tuple[str, ...]  # columns per task, in order; metrics not listed are left out
    headline: str  # what the plots show


LAYOUTS = {
    "gcg": Layout("Grounded conversation generation (GranD-f)", ("meteor", "cider", "ap50", "miou", "mask_recall"),
                  "mask_recall"),
    "res": Layout("Referring expression segmentation (cIoU)", ("ciou",), "ciou"),
    "png": Layout("Panoptic narrative grounding (average recall)",
                  ("ar", "ar_things", "ar_stuff", "ar_singular", "ar_plural"), "ar"),
    "captioning": Layout("Region captioning", ("meteor", "cider"), "cider"),
    "reasonseg": Layout("Reasoning segmentation (ReasonSeg)", ("giou", "ciou"), "giou"),
    "gres": Layout("Generalized referring segmentation (gRefCOCO)", ("giou", "ciou", "n_acc", "t_acc"), "giou"),
    "vqa": Layout("VQA suites, LLaVA-1.5's evaluation (MME in points)",
                  ("accuracy", "img_accuracy", "f1", "perception", "cognition"), "accuracy"),
    EMERGENT: Layout("Emergent grounding: attend-and-segment on LMMs trained without grounding supervision",
                     ("mask_recall", "miou", "ciou", "ar", "point_accuracy"), "mask_recall"),
}
METRIC_LABELS = {"meteor": "METEOR", "cider": "CIDEr", "ap50": "AP50", "miou": "mIoU", "mask_recall": "Recall",
                 "mask_recall_max_matching": "Recall (max matching)", "ciou": "cIoU", "giou": "gIoU", "ar": "AR",
                 "ar_things": "AR things", "ar_stuff": "AR stuff", "ar_singular": "AR singular",
                 "ar_plural": "AR plural", "acc_0.5": "Acc@0.5", "rouge_l": "ROUGE-L", "n_acc": "N-acc",
                 "t_acc": "T-acc", "point_accuracy": "PointAcc"}
TASK_ORDER = ("gcg_val", "gcg_test", "res_refcoco_val", "res_refcoco_testA", "res_refcoco_testB", "res_refcoco+_val",
              "res_refcoco+_testA", "res_refcoco+_testB", "res_refcocog_val", "res_refcocog_test", "png_val",
              "regcap_refcocog_val", "regcap_vg_test", "reasonseg_val", "reasonseg_test_short", "reasonseg_test_long",
              "reasonseg_test", "gres_grefcoco_val", "gres_grefcoco_testA", "gres_grefcoco_testB")
DATASET_LABELS = (("grefcoco", "gRefCOCO"), ("refcocog", "RefCOCOg"), ("refcoco+", "RefCOCO+"), ("refcoco", "RefCOCO"), ("vg", "VG"))
FAMILY_PREFIXES = ("gcg", "res", "png", "regcap", "reasonseg", "gres")   # task names "<family>_<split>": the label drops the family


@dataclass(frozen=True)
class Column:
    task: str
    version: str
    metric: str
    task_label: str

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)


@dataclass
class Row:
    model: str
    source: str
    protocol: str
    citation: int | None  # 1-based number in the table's citation list
    cells: dict[Column, Entry] = field(default_factory=dict)

    def value(self, column: Column) -> float | None:
        entry = self.cells.get(column)
        value = None if entry is None else entry.metrics.get(column.metric)
        return None if value is None or math.isnan(value) else value

    def interval(self, column: Column) -> tuple[float, float] | None:
        entry = self.cells.get(column)
        found = None if entry is None else entry.intervals.get(column.metric)
        if not found or found.get("low") is None or found.get("high") is None:
            return None
        return float(found["low"]), float(found["high"])


@dataclass
class PaperTable:
    family: str
    title: str
    columns: list[Column]
    rows: list[Row]
    citations: list[str]
    headline: str
    sample: bool = False  # runs on the bundled synthetic sample: not comparable, never best, never plotted

    @property
    def protocols(self) -> list[str]:
        return sorted({row.protocol for row in self.rows})

    def best(self, column: Column) -> float | None:
        """Best value among rows on the real split: sample-data rows are not comparable, never best."""
        values = [v for row in self.rows if not is_sample_model(row.model) and (v := row.value(column)) is not None]
        return max(values) if values else None

    def is_best(self, row: Row, column: Column) -> bool:
        value, best = row.value(column), self.best(column)
        return (not self.sample and not is_sample_model(row.model) and value is not None and best is not None
                and round(100 * value, 1) == round(100 * best, 1))


def task_label(task: str) -> str:
    """gcg_val -> val, res_refcoco+_testA -> RefCOCO+ testA, regcap_vg_test -> VG test, reasonseg_test_short ->
    test short, gres_grefcoco_val -> gRefCOCO val; other tasks (the VQA suites: gqa_testdev, mme) keep their name."""
    if task.split("_", 1)[0] not in FAMILY_PREFIXES:
        return task
    rest = task.split("_", 1)[1] if "_" in task else task
    for prefix, label in DATASET_LABELS:
        if rest.startswith(prefix + "_"):
            return f"{label} {rest[len(prefix) + 1:]}"
    return rest.replace("_", " ")


def build_table(board: Leaderboard, sample: bool = False) -> PaperTable:
    """The paper-shaped table of one leaderboard file: its entries on the real splits, or with `sample` only
    its runs on the bundled synthetic sample (a table of their own, titled so)."""
    layout = LAYOUTS.get(board.family)
    order = {task: i for i, task in enumerate(TASK_ORDER)}
    chosen = [entry for entry in board.entries if is_sample_model(entry.model) == sample]
    versions: dict[str, set[str]] = {}
    for entry in chosen:
        versions.setdefault(entry.task, set()).add(entry.task_version)
    columns: dict[tuple[str, str, str], Column] = {}
    rows: dict[tuple[str, str, str], Row] = {}
    citations: list[str] = []
    for entry in sorted(chosen, key=lambda e: (order.get(e.task, len(order)), e.task, e.task_version)):
        label = task_label(entry.task) + (f" v{entry.task_version}" if len(versions[entry.task]) > 1 else "")
        if board.family == EMERGENT and entry.task.startswith(("gcg_", "png_")):
            label = f"{entry.task.split('_')[0].upper()} {label}"        # the section mixes families
        metrics = layout.metrics if layout else tuple(entry.metrics)
        for metric in metrics:
            if metric in entry.metrics:
                columns.setdefault((entry.task, entry.task_version, metric),
                                   Column(entry.task, entry.task_version, metric, label))
        if entry.citation and entry.citation not in citations:
            citations.append(entry.citation)
        row = rows.setdefault((entry.model, entry.source, entry.protocol), Row(
            entry.model, entry.source, entry.protocol, citations.index(entry.citation) + 1 if entry.citation else None))
        for metric in metrics:
            column = columns.get((entry.task, entry.task_version, metric))
            if column is not None:
                row.cells[column] = entry
    ordered_columns = sorted(columns.values(), key=lambda c: (
        order.get(c.task, len(order)), c.task, c.version,
        layout.metrics.index(c.metric) if layout and c.metric in layout.metrics else 0))
    headline = layout.headline if layout else (ordered_columns[0].metric if ordered_columns else "")

    def mean_headline(row: Row) -> float:
        values = [v for c in ordered_columns if c.metric == headline and (v := row.value(c)) is not None]
        return sum(values) / len(values) if values else -1.0

    # as the papers print them: published rows first, by source paper, weakest to strongest; then ours
    ordered_rows = sorted(rows.values(), key=lambda r: (r.source != "reported", r.citation or 0, mean_headline(r)))
    title = layout.title if layout else board.family
    if sample:
        title += ": runs on the bundled synthetic sample (not comparable with the tables above)"
    return PaperTable(board.family, title, ordered_columns, ordered_rows, citations, headline, sample)


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
