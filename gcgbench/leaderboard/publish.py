"""Leaderboard tables shaped like the papers' (md, LaTeX, HTML, CSV) and plots of headline metrics (PNG).

One table per family file: rows are models (one per model, source and protocol), columns are
(task, metric) pairs grouped by task as GLaMM's tables group val/test or RefCOCO/RefCOCO+/RefCOCOg.
Values are ×100 with one decimal; the best value of each column is bold; every row says whether its
numbers were measured by gcgbench or reported in a paper (with a numbered citation).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from gcgbench.api.errors import GcgbenchError
from gcgbench.leaderboard.files import Entry, Leaderboard
from gcgbench.leaderboard.from_results import is_sample_model


EMERGENT = "emergent"
# backends whose runs read grounding out of attention (a&s); reported rows say so by fingerprint `method`
AAS_BACKENDS = ("llava-as", "difflmm", "aas")
AAS_METHOD = "attend-and-segment"


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
                 "mask_recall_strict": "Recall (strict)", "ciou": "cIoU", "giou": "gIoU", "ar": "AR",
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

    @property
    def protocols(self) -> list[str]:
        return sorted({row.protocol for row in self.rows})

    def best(self, column: Column) -> float | None:
        """Best value among rows on the real split: sample-data rows are not comparable, never best."""
        values = [v for row in self.rows if not is_sample_model(row.model) and (v := row.value(column)) is not None]
        return max(values) if values else None

    def is_best(self, row: Row, column: Column) -> bool:
        value, best = row.value(column), self.best(column)
        return (not is_sample_model(row.model) and value is not None and best is not None
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


def build_table(board: Leaderboard) -> PaperTable:
    """The paper-shaped table of one leaderboard file."""
    layout = LAYOUTS.get(board.family)
    order = {task: i for i, task in enumerate(TASK_ORDER)}
    versions: dict[str, set[str]] = {}
    for entry in board.entries:
        versions.setdefault(entry.task, set()).add(entry.task_version)
    columns: dict[tuple[str, str, str], Column] = {}
    rows: dict[tuple[str, str, str], Row] = {}
    citations: list[str] = []
    for entry in sorted(board.entries, key=lambda e: (order.get(e.task, len(order)), e.task, e.task_version)):
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
    return PaperTable(board.family, layout.title if layout else board.family, ordered_columns, ordered_rows,
                      citations, headline)


def is_emergent(entry: Entry) -> bool:
    """An a&s row: measured by llava-as / difflmm / aas, or reported with fingerprint method attend-and-segment."""
    fingerprint = entry.fingerprint or {}
    return fingerprint.get("method") == AAS_METHOD or (entry.source == "measured"
                                                       and fingerprint.get("name") in AAS_BACKENDS)


def emergent_board(boards: Sequence[Leaderboard]) -> Leaderboard:
    """The emergent-grounding section: every a&s row of the GCG, RES and PNG files, side by side (GCG mask
    recall and mIoU, RES cIoU, PNG AR, and the a&s point accuracy of RES/PNG)."""
    entries = [e for board in boards if board.family in ("gcg", "res", "png") for e in board.entries if is_emergent(e)]
    return Leaderboard(Path(f"{EMERGENT}.json"), EMERGENT, entries)


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
    value = row.value(column)
    if value is None:
        return "-"
    return f"{value:.1f}" if is_points(row.cells[column], column.metric) else f"{100 * value:.1f}"


def is_points(entry: Entry, metric: str) -> bool:
    """Whether `metric` of `entry` is in points, not a fraction (MME: `metric_config.points_metrics`, as the vqa
    task and the seeded entries record it, e.g. "perception, cognition, *_score")."""
    listed = [name.strip() for name in str(entry.metric_config.get("points_metrics", "")).split(",") if name.strip()]
    return any(metric == name or (name.startswith("*") and metric.endswith(name[1:])) for name in listed)


def _grouped(table: PaperTable) -> bool:
    """Whether some task has several metric columns (then headers are task over metric)."""
    return any(n > 1 for _, n in _groups(table))


def _header_labels(table: PaperTable) -> list[str]:
    """One header per column: "val METEOR" where tasks have several metrics, else the task ("RefCOCO val")."""
    return [f"{c.task_label} {c.label}" if _grouped(table) else c.task_label for c in table.columns]


def render_markdown(tables: Sequence[PaperTable]) -> str:
    parts = []
    for table in tables:
        show_protocol = len(table.protocols) > 1
        head = ["Model", "Source"] + (["Protocol"] if show_protocol else []) + _header_labels(table)
        lines = [f"### {table.title} (×100)", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] * (2 + show_protocol) + ["---:"] * len(table.columns)) + "|"]
        for row in table.rows:
            cells = [f"**{_cell(row, c)}**" if table.is_best(row, c) else _cell(row, c) for c in table.columns]
            model = row.model.replace("*", "\\*").replace("|", "\\|")
            lines.append("| " + " | ".join([model, _source(row)] + ([row.protocol] if show_protocol else []) + cells) + " |")
        lines.append("")
        lines += [f"[{i}] {citation}" for i, citation in enumerate(table.citations, 1)]
        lines.append("Bold: best in column. measured: scored by gcgbench; reported: as published. "
                     "(sample): scored on the bundled synthetic sample, not comparable, never bold.")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "†": r"$^\dagger$",
                 "‡": r"$^\ddagger$", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(character, character) for character in text)


def render_latex(tables: Sequence[PaperTable]) -> str:
    """booktabs tables (\\usepackage{booktabs}), one per family; reported rows marked with their citation."""
    parts = []
    for table in tables:
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
            source = f"reported [{row.citation}]" if row.source == "reported" else "measured"
            lines.append(" & ".join([latex_escape(row.model), source] + ([latex_escape(row.protocol)] if show_protocol
                                                                         else []) + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\par\vspace{2pt}", r"{\footnotesize"]
        lines += [rf"[{i}] {latex_escape(c)}\\" for i, c in enumerate(table.citations, 1)]
        lines += [r"Bold: best in column; measured: scored by gcgbench; reported: as published.}", r"\end{table}"]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def render_csv(tables: Sequence[PaperTable]) -> str:
    """One block per family: model, source, protocol, citation, then one ×100 column per (task, metric)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for table in tables:
        writer.writerow(["family", "model", "source", "protocol", "citation"]
                        + [f"{c.task}@{c.version}:{c.metric}" for c in table.columns])
        for row in table.rows:
            citation = table.citations[row.citation - 1] if row.citation else ""
            writer.writerow([table.family, row.model, row.source, row.protocol, citation]
                            + ["" if row.value(c) is None else _cell(row, c) for c in table.columns])
        writer.writerow([])
    return buffer.getvalue()


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 4px}th,td{padding:3px 8px;border-bottom:1px solid #ddd}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.reported td{color:#555;font-style:italic}tr.measured td{background:#eef7ee}
b{color:#000}.cite{font-size:12px;color:#555}img.plot{max-width:100%;margin:8px 0 24px}"""


def render_html(tables: Sequence[PaperTable], plots: dict[str, bytes] | None = None) -> str:
    """A self-contained page: every family's table (and its plot as a data-URI PNG when given)."""
    body = []
    for table in tables:
        show_protocol = len(table.protocols) > 1
        lead = 2 + show_protocol
        body.append(f"<h2>{html.escape(table.title)} (×100)</h2>")
        body.append(f'<table class="leaderboard" data-family="{html.escape(table.family)}">')
        if _grouped(table):
            body.append("<tr>" + "<th></th>" * lead + "".join(
                f'<th colspan="{n}">{html.escape(label)}</th>' for label, n in _groups(table)) + "</tr>")
        labels = [c.label for c in table.columns] if _grouped(table) else [c.task_label for c in table.columns]
        body.append("<tr><th>Model</th><th>Source</th>" + ("<th>Protocol</th>" if show_protocol else "")
                    + "".join(f"<th>{html.escape(label)}</th>" for label in labels) + "</tr>")
        for row in table.rows:
            cells = []
            for column in table.columns:
                text, interval = _cell(row, column), row.interval(column)
                title = f' title="95% CI {100 * interval[0]:.1f}–{100 * interval[1]:.1f}"' if interval else ""
                text = f"<b>{text}</b>" if table.is_best(row, column) else text
                cells.append(f'<td class="num"{title}>{text}</td>')
            protocol = f"<td>{html.escape(row.protocol)}</td>" if show_protocol else ""
            body.append(f'<tr class="{row.source}"><td>{html.escape(row.model)}</td><td>{html.escape(_source(row))}'
                        f"</td>{protocol}{''.join(cells)}</tr>")
        body.append("</table>")
        body += [f'<div class="cite">[{i}] {html.escape(c)}</div>' for i, c in enumerate(table.citations, 1)]
        body.append('<div class="cite">Bold: best in column. Green rows: measured by gcgbench; italic: reported.</div>')
        if plots and table.family in plots:
            data = base64.b64encode(plots[table.family]).decode("ascii")
            body.append(f'<img class="plot" alt="{html.escape(table.family)} plot" src="data:image/png;base64,{data}">')
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>gcgbench leaderboards</title>"
            f"<style>{CSS}</style></head><body><h1>gcgbench leaderboards</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def plot_png(table: PaperTable) -> bytes | None:
    """Horizontal bars of the headline metric per task (×100) with 95% intervals where measured; measured
    bars solid, reported bars hatched. None when the table has no headline column."""
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
    figure, axes = pyplot.subplots(n_rows, n_columns, figsize=(3.6 * n_columns, height * n_rows), squeeze=False)
    mixed = len(table.protocols) > 1
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
        axis.set_yticks(list(range(len(present))), labels, fontsize=7)
        axis.set_title(f"{column.task_label} {column.label}", fontsize=9)
        axis.tick_params(axis="x", labelsize=7)
        axis.margins(x=0.12)
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    figure.suptitle(f"{table.title} (×100; green: measured, hatched: reported)", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    pyplot.close(figure)
    return buffer.getvalue()


RENDERERS = {"md": render_markdown, "latex": render_latex, "csv": render_csv}
EXTENSIONS = {"md": "md", "latex": "tex", "csv": "csv", "html": "html"}


def publish(boards: Sequence[Leaderboard], fmt: str, output: Path | None = None, plots: bool = True) -> tuple[str, list[Path]]:
    """Render every board in `fmt`; with `output` (a folder) write `leaderboards.<ext>` and, with `plots`,
    `<family>.png` per family. Returns (the rendered text, the files written)."""
    if fmt not in EXTENSIONS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(EXTENSIONS)}")
    families = list(LAYOUTS)
    ordered = sorted(boards, key=lambda b: (families.index(b.family) if b.family in families else len(families), b.family))
    tables = [build_table(board) for board in ordered if board.entries]
    emergent = emergent_board(ordered)
    if emergent.entries:
        tables.append(build_table(emergent))
    images: dict[str, bytes] = {}
    if plots and (output is not None or fmt == "html"):
        images = {t.family: image for t in tables if (image := plot_png(t)) is not None}
    text = render_html(tables, images) if fmt == "html" else RENDERERS[fmt](tables)
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
