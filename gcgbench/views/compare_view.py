"""The HTML page of `gcgbench compare`: the paired differences, the diagnoses side by side, and a viewer of
the samples where the runs differ most (`templates/compare.html.j2`, autoescaped).

A sample's difference is its per-sample score in a run minus RUN_A's (GCG: the image's official recall,
TP / GT phrases; RES: the expression's IoU; PNG: the narrative's mean phrase IoU); with three or more runs a
card is ranked by its largest |difference|. Each card shows every run side by side: the image with the run's
masks filled in its phrases' colours and the ground truth outlined (`report.render_overlay`), the answer
with the same colours (`report.answer_html`), and the run's buckets for the sample. Cards sort by the
difference (select box) and filter by task and bucket (`compare.html#bucket=wrong_place&sort=asc`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from gcgbench.views import run_report as report
from gcgbench.views.compare import Comparison
from gcgbench.views.diagnose.gcg import BUCKETS
from gcgbench.views.diagnose.plots import bars
from gcgbench.html.pages import render
from gcgbench.views.diagnose.render import points

DEFAULT_MAX_SAMPLES = 100
OTHER_BUCKETS = {"matched": "matched (GCG)", "iou_50": "IoU ≥ 0.5", "failure": "IoU < 0.5", "empty_mask": "empty mask"}


def _number(value: float) -> float:
    return 0.0 if value is None or math.isnan(value) else float(value)


def sample_cards(comparison: Comparison, task: str, max_samples: int, max_side: int) -> list[dict[str, Any]]:
    """The `max_samples` samples of `task` with the largest |difference|, each with every run's panel."""
    from markupsafe import Markup

    readers, diagnoses = comparison.readers, comparison.diagnoses[task]
    docs = readers[0].docs(task)
    order = list(diagnoses[0].doc_scores)
    ranked = []
    for doc_id in order:
        base = _number(diagnoses[0].doc_scores.get(doc_id))
        differences = [_number(d.doc_scores.get(doc_id)) - base for d in diagnoses[1:]]
        largest = max(differences, key=abs)
        ranked.append((abs(largest), largest, differences, doc_id))
    ranked.sort(key=lambda item: (-item[0], item[3]))
    chosen = ranked[:max_samples]
    predictions = [reader.predictions(task, [docs[doc_id] for *_, doc_id in chosen if doc_id in docs])
                   for reader in readers]
    cards = []
    for magnitude, largest, differences, doc_id in chosen:
        doc = docs.get(doc_id)
        panels = []
        for number, (reader, diagnosis, found) in enumerate(zip(readers, diagnoses, predictions)):
            prediction = found.get(doc_id)
            masks = [] if prediction is None else [
                (mask, report.colour_of(index)) for index, phrase in enumerate(prediction.phrases) for mask in phrase.masks
            ] + [(mask, report.EXTRA_COLOUR) for mask in prediction.extra_masks]
            uri, width, height = None, 0, 0
            if doc is not None:
                pixels = report.render_overlay(doc.image_path, doc.height, doc.width,
                                               [(m, c) for m, c in masks if m.size == (doc.height, doc.width)],
                                               doc.masks(), max_side)
                uri, (height, width) = report.png_data_uri(pixels), pixels.shape[:2]
                zoom = max(1, report.MIN_DISPLAY // max(height, width))
                height, width = height * zoom, width * zoom
            panels.append({"label": comparison.labels[number], "image": uri, "width": width, "height": height,
                           "answer": Markup(report.answer_html(prediction)),
                           "score": diagnosis.doc_scores.get(doc_id),
                           "difference": None if number == 0 else differences[number - 1],
                           "buckets": _panel_buckets(diagnosis, doc_id)})
        buckets = sorted({b for d in diagnoses for b in d.doc_buckets.get(doc_id, [])})
        cards.append({"task": task, "doc_id": doc_id, "difference": largest, "magnitude": magnitude,
                      "buckets": buckets, "panels": panels,
                      "expression": (doc.inputs.get("expression") or doc.inputs.get("caption")) if doc else None})
    return cards


def _panel_buckets(diagnosis, doc_id: str) -> list[dict[str, str]]:
    """What the viewer lists under a run's panel: per GT phrase its bucket (GCG), else the sample's labels."""
    if diagnosis.gcg is not None:
        image = next((i for i in diagnosis.gcg.images if i.doc_id == doc_id), None)
        if image is None:
            return []
        return [{"text": label.text, "bucket": label.bucket or "matched"} for label in image.labels]
    return [{"text": "", "bucket": bucket} for bucket in diagnosis.doc_buckets.get(doc_id, [])]


def delta_rows(comparison: Comparison) -> list[dict[str, Any]]:
    return [{"task": d.task, "metric": d.metric, "run": d.run, "baseline_value": points(d.baseline_value),
             "value": points(d.value), "delta": points(d.delta, signed=True),
             "interval": "" if d.low is None else f"{points(d.low, signed=True)} … {points(d.high, signed=True)}",
             "verdict": d.verdict} for d in comparison.deltas]


def bucket_sections(comparison: Comparison) -> list[dict[str, Any]]:
    """Per task, the diagnoses side by side: a table (one column per run) and a grouped bar chart."""
    sections = []
    labels = comparison.labels
    for task, diagnoses in comparison.diagnoses.items():
        family = diagnoses[0].family
        if family == "gcg":
            names = [n for n in BUCKETS if any(d.summary["buckets"][n]["count"] for d in diagnoses)] or list(BUCKETS)[:5]
            rows = [[n.replace("_", " ")] + [f"{d.summary['buckets'][n]['count']} ({points(d.summary['buckets'][n]['share'])}; "
                                             f"fix {points(d.summary['buckets'][n]['delta_recall'], signed=True)})"
                                             for d in diagnoses] for n in names]
            rows.append(["matched / GT phrases"] + [f"{d.summary['matched']} / {d.summary['labels']}" for d in diagnoses])
            rows.append(["hallucinated phrases"] + [str(d.summary["hallucinated"]["total"]) for d in diagnoses])
            chart = bars(f"{task}: missed GT phrases by bucket (% of GT phrases)", [n.replace("_", " ") for n in names],
                         {label: [100 * d.summary["buckets"][n]["share"] for n in names]
                          for label, d in zip(labels, diagnoses)}, "% of GT phrases", horizontal=True)
            title = f"{task}: where each run's misses went (count (share; recall its fix adds))"
        elif family == "res":
            groups = [g["group"] for g in diagnoses[0].summary["breakdowns"]["expression_length"]]
            rows = [["failures (IoU < 0.5)"] + [str(d.summary["failures"]["count"]) for d in diagnoses],
                    ["of which empty masks"] + [f"{d.summary['failures']['empty_masks']} "
                                                f"({points(d.summary['failures']['empty_share'])})" for d in diagnoses]]
            for name in ("expression_length", "object_size", "location_word"):
                for index, group in enumerate(diagnoses[0].summary["breakdowns"][name]):
                    rows.append([f"mean IoU, {group['group']}"] + [
                        points(_group(d.summary["breakdowns"][name], group["group"], "mean_iou")) for d in diagnoses])
            chart = bars(f"{task}: mean IoU by expression length", groups,
                         {label: [100 * _number(_group(d.summary["breakdowns"]["expression_length"], g, "mean_iou"))
                                  for g in groups] for label, d in zip(labels, diagnoses)}, "mean IoU (%)")
            title = f"{task}: failures and IoU breakdowns side by side"
        else:
            groups = [g["group"] for g in diagnoses[0].summary["breakdowns"]["segment_count"]]
            rows = [[f"AR, {name.replace('_', ' ')}: {g['group']}"] + [
                points(_group(d.summary["breakdowns"][name], g["group"], "ar")) for d in diagnoses]
                for name in ("bucket", "segment_count", "object_size") for g in diagnoses[0].summary["breakdowns"][name]]
            chart = bars(f"{task}: AR by number of GT segments", groups,
                         {label: [100 * _number(_group(d.summary["breakdowns"]["segment_count"], g, "ar")) for g in groups]
                          for label, d in zip(labels, diagnoses)}, "AR (%)")
            title = f"{task}: AR breakdowns side by side"
        sections.append({"title": title, "columns": ["", *labels], "rows": rows, "chart": chart})
    return sections


def _group(groups: Sequence[dict[str, Any]], name: str, key: str) -> float | None:
    return next((g[key] for g in groups if g["group"] == name), None)


def write_page(comparison: Comparison, target: Path, max_samples: int = DEFAULT_MAX_SAMPLES, max_side: int = 256) -> Path:
    cards = [card for task in comparison.tasks for card in sample_cards(comparison, task, max_samples, max_side)]
    bucket_names = sorted({b for card in cards for b in card["buckets"]},
                          key=lambda b: (list(BUCKETS).index(b) if b in BUCKETS else len(BUCKETS), b))
    page = render("compare.html.j2", title="gcgbench compare: " + " vs ".join(comparison.labels),
                  runs=[{"label": label, "path": str(reader.path)} for label, reader in zip(comparison.labels, comparison.readers)],
                  deltas=delta_rows(comparison), sections=bucket_sections(comparison), cards=cards,
                  tasks=comparison.tasks, notes=comparison.notes, resamples=comparison.resamples,
                  buckets=[{"name": b, "label": BUCKETS.get(b, OTHER_BUCKETS.get(b, b)).split(":")[0]} for b in bucket_names])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
