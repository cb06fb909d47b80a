"""The paper-style table of a leaderboard family: its layout (columns, headline), the columns and rows built from
the entries, and which cell is best. `publish` renders it as Markdown, LaTeX, CSV or HTML; `plots` draws it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gcgbench.leaderboard.emergent import EMERGENT
from gcgbench.leaderboard.entry import Entry
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
