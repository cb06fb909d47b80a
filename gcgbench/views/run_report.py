"""`gcgbench report RUN_DIR`: one static, self-contained HTML page for looking at a run's samples.

Per doc: the image (downscaled to `max_side`) with each predicted phrase's mask filled in its colour
(alpha 0.5) and the ground-truth masks outlined in white, the answer with each phrase highlighted in the
same colour, and the doc's per-sample scores. Docs are sorted worst first (per family: RES IoU, GCG
mIoU then recall, PNG mean phrase IoU, captioning CIDEr) and a select box filters them by task
(`report.html#task=NAME` opens filtered). CSS and JS are inline and images are data-URI PNGs, so the
file can be mailed or attached to a CI run as it is. The page is `templates/report.html` (jinja2,
autoescaped: answers, ids and values from the run are text, never markup).
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.data.sample import sample_root
from gcgbench.api.types import RLE, Doc, Prediction
from gcgbench.leaderboard import files, from_results
from gcgbench.html import pages
from gcgbench.leaderboard.rows import read_rows
from gcgbench.runner.run_dir import RunDir
from gcgbench.tasks.registry import get_task
from gcgbench.grounding import heatmaps

# distinct on the sample scenes' red/green/blue/yellow shapes and gray/beige/white backgrounds
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 200, 255), (255, 0, 160), (255, 140, 0), (120, 60, 255), (0, 170, 90),
    (230, 30, 30), (150, 90, 30), (0, 90, 200), (200, 200, 0), (255, 105, 180),
)
EXTRA_COLOUR = (90, 90, 90)  # masks no phrase claims
TRUTH_OUTLINE = (255, 255, 255)
ALPHA = 0.5
MIN_DISPLAY = 160  # images smaller than this are shown enlarged by an integer factor


@dataclass
class Card:
    """One doc on the page."""

    task: str
    doc_id: str
    sort_key: tuple[float, ...]
    score_label: str
    image_uri: str | None
    width: int
    height: int
    answer_html: Any  # markupsafe.Markup from templates/report_answer.html
    scores_html: Any  # markupsafe.Markup from templates/report_scores.html
    notes: list[str] = field(default_factory=list)
    heatmaps_html: Any = ""  # markupsafe.Markup from templates/report_heatmaps.html


def colour_of(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def blend(base: np.ndarray, colour: Sequence[int], alpha: float = ALPHA) -> np.ndarray:
    """(1 − α)·base + α·colour, rounded: what a mask pixel of `colour` looks like over `base` (uint8)."""
    mixed = (1.0 - alpha) * base.astype(np.float64) + alpha * np.asarray(colour, dtype=np.float64)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def thumbnail_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * scale)), max(1, round(width * scale))


def render_overlay(image_path: str | None, height: int, width: int, masks: Sequence[tuple[RLE, tuple[int, int, int]]],
                   truth: Sequence[RLE] = (), max_side: int = 256) -> np.ndarray:
    """The downscaled image (gray when missing) with `masks` filled and `truth` outlined, (h, w, 3) uint8."""
    from PIL import Image

    size_h, size_w = thumbnail_size(height, width, max_side)
    canvas = None
    if image_path and Path(image_path).is_file():
        try:
            with Image.open(image_path) as opened:
                opened.draft("RGB", (size_w, size_h))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that suffices
                canvas = np.asarray(opened.convert("RGB").resize((size_w, size_h), Image.BILINEAR))
        except OSError:
            canvas = None
    canvas = np.full((size_h, size_w, 3), 160, np.uint8) if canvas is None else canvas.copy()
    for rle, colour in masks:
        region = _small_mask(rle, size_h, size_w)
        canvas[region] = blend(canvas[region], colour)
    for rle in truth:
        region = _small_mask(rle, size_h, size_w)
        inner = region.copy()
        inner[1:, :] &= region[:-1, :]
        inner[:-1, :] &= region[1:, :]
        inner[:, 1:] &= region[:, :-1]
        inner[:, :-1] &= region[:, 1:]
        canvas[region & ~inner] = TRUTH_OUTLINE
    return canvas


def _small_mask(rle: RLE, height: int, width: int) -> np.ndarray:
    """The mask sampled at the thumbnail's pixel centres (nearest neighbour), bool (height, width)."""
    mask = rle.decode().astype(bool)
    if mask.shape == (height, width):
        return mask
    rows = np.minimum(((np.arange(height) + 0.5) * mask.shape[0] / height).astype(np.int64), mask.shape[0] - 1)
    columns = np.minimum(((np.arange(width) + 0.5) * mask.shape[1] / width).astype(np.int64), mask.shape[1] - 1)
    return mask[np.ix_(rows, columns)]


def png_data_uri(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def answer_html(prediction: Prediction | None):
    """The answer with each phrase wrapped in a span of its colour; phrases not found in the text (or
    overlapping an earlier one) follow as coloured chips (templates/report_answer.html, as Markup)."""
    if prediction is None:
        return pages.fragment("report_answer.html", missing=True)
    text, spans, chips = prediction.text, [], []
    for index, phrase in enumerate(prediction.phrases):
        start, end = phrase.start, phrase.end
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
                and text[start:end] == phrase.text):
            start = text.lower().find(phrase.text.lower()) if phrase.text else -1
            end = start + len(phrase.text)
        if start < 0 or any(start < e and s < end for s, e, _ in spans):
            chips.append(_phrase(phrase.text, index))
        else:
            spans.append((start, end, index))
    parts, position = [], 0
    for start, end, index in sorted(spans):
        parts.append({"text": text[position:start], "colour": None})
        parts.append(_phrase(text[start:end], index))
        position = end
    parts.append({"text": text[position:], "colour": None})
    return pages.fragment("report_answer.html", missing=False, parts=parts, chips=chips,
                          extra=len(prediction.extra_masks), extra_colour=EXTRA_COLOUR)


def _phrase(text: str, index: int) -> dict[str, Any]:
    red, green, blue = colour_of(index)
    ink = "#000" if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else "#fff"
    return {"text": text, "colour": (red, green, blue), "ink": ink}


def sort_key(family: str, rows: Sequence[Mapping[str, Any]]) -> tuple[tuple[float, ...], str]:
    """(key, label): lower is worse. RES IoU; GCG mIoU then recall; PNG mean phrase IoU; captioning CIDEr."""
    def number(value: Any) -> float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan

    if family == "gcg" and rows:
        row = rows[0]
        labels = number(row.get("gt_labels"))
        recall = number(row.get("recall_matches")) / labels if labels else math.nan
        return (number(row.get("miou")), recall), f"mIoU {number(row.get('miou')):.3f} · recall {recall:.3f}"
    if family == "png" and rows:
        ious = [0.0 if r.get("iou") is None else number(r["iou"]) for r in rows]
        return (float(np.mean(ious)),), f"mean IoU {np.mean(ious):.3f} ({len(ious)} phrases)"
    for name in ("iou", "miou", "cider", "meteor", "score"):
        if rows and name in rows[0]:
            value = number(rows[0][name])
            return (value,), f"{name} {value:.3f}"
    return (math.nan,), "no score"


def scores_html(rows: Sequence[Mapping[str, Any]]):
    """The doc's per-sample rows as a small table (numbers to 3 decimals; ids left out), as Markup."""
    skip = {"doc_id", "image_id", "narrative_id", "phrase_id", "expression", "text"}
    shown = [{"text": str(row["text"]) if "text" in row else None,
              "cells": [(name, f"{value:.3f}" if isinstance(value, float) else json.dumps(value))
                        for name, value in row.items() if name not in skip]} for row in rows]
    return pages.fragment("report_scores.html", rows=shown)


def load_docs(task: str, config: Mapping[str, Any], data_root: Path | None) -> tuple[dict[str, Doc], str | None]:
    """The task's docs by id, from `data_root` or the run's own data root; ({}, why) when unreadable."""
    overrides = config.get("data_overrides") or {}
    if data_root is not None:
        paths = DataPaths(Path(data_root), overrides)
    elif config.get("data_root") and Path(config["data_root"]).is_dir():
        paths = DataPaths(Path(config["data_root"]), overrides, bool(config.get("sample_data")))
    elif config.get("sample_data"):
        paths = DataPaths(sample_root(), overrides, True)
    else:
        return {}, f"{task}: data root {config.get('data_root')!r} not found (pass --data-root): no images"
    try:
        return {doc.doc_id: doc for doc in get_task(task).docs(paths)}, None
    except (InputError, OSError, KeyError, ValueError) as error:
        return {}, f"{task}: cannot read the task's docs ({error}): no images or ground truth"


def build_cards(run_dir: Path, results: Mapping[str, Any], task: str, data_root: Path | None, max_side: int,
                truth: bool, notes: list[str]) -> list[Card]:
    """The cards of one task, in the rows' doc order."""
    family = files.family_of(task)
    rows = read_rows(run_dir, task)
    if rows is None:
        notes.append(f"{task}: no samples/{task}.jsonl: skipped")
        return []
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row.get("doc_id")), []).append(row)
    predictions = RunDir(run_dir).read_predictions(task)
    if not predictions:
        notes.append(f"{task}: no predictions/{task}.jsonl: scores only, no masks")
    docs, problem = load_docs(task, results.get("config") or {}, data_root)
    if problem:
        notes.append(problem)
    cards = []
    for doc_id, doc_rows in grouped.items():
        doc, prediction = docs.get(doc_id), predictions.get(doc_id)
        masks = [] if prediction is None else [
            (mask, colour_of(index)) for index, phrase in enumerate(prediction.phrases) for mask in phrase.masks
        ] + [(mask, EXTRA_COLOUR) for mask in prediction.extra_masks]
        size = (doc.height, doc.width) if doc else (masks[0][0].size if masks else None)
        uri, height, width = None, 0, 0
        if size is not None:
            pixels = render_overlay(doc.image_path if doc else None, size[0], size[1],
                                    [(m, c) for m, c in masks if m.size == tuple(size)],
                                    doc.masks() if (doc and truth) else (), max_side)
            uri, (height, width) = png_data_uri(pixels), pixels.shape[:2]
            zoom = max(1, MIN_DISPLAY // max(height, width))  # tiny images shown enlarged, pixelated (exact colours)
            height, width = height * zoom, width * zoom
        key, label = sort_key(family, doc_rows)
        heat = heatmaps_html(prediction, doc, size, notes) if prediction is not None and size is not None else ""
        cards.append(Card(task, doc_id, key, label, uri, width, height, answer_html(prediction), scores_html(doc_rows),
                          heatmaps_html=heat))
    return cards


HEAT_SIDE = 96
HEAT_ALPHA = 0.55


def heatmaps_html(prediction: Prediction, doc: Doc | None, size: Sequence[int], notes: list[str]) -> Any:
    """One small image per phrase with an a&s heatmap (`extras.heatmaps`, aligned with the phrases): the
    heatmap over the image (α = 0.55), the attention point as a white cross, captioned with the phrase
    (templates/report_heatmaps.html, as Markup; "" when the prediction has none)."""
    from PIL import Image

    stored = (prediction.extras or {}).get("heatmaps")
    if not isinstance(stored, list):
        return ""
    points = (prediction.extras or {}).get("points") or []
    base = render_overlay(doc.image_path if doc else None, size[0], size[1], [], (), HEAT_SIDE)
    height, width = base.shape[:2]
    figures = []
    for index, (phrase, heat) in enumerate(zip(prediction.phrases, stored)):
        if heat is None:
            continue
        try:
            values = heatmaps.decode(heat)
        except ValueError as error:
            notes.append(f"doc {prediction.doc_id}: heatmap {index} skipped ({error})")
            continue
        colour = np.asarray(Image.fromarray(heatmaps.colourize(values)).resize((width, height), Image.BILINEAR))
        pixels = np.clip(np.rint((1 - HEAT_ALPHA) * base + HEAT_ALPHA * colour), 0, 255).astype(np.uint8)
        point = points[index] if index < len(points) else None
        if isinstance(point, list) and len(point) == 2:
            x, y = int(point[0] * width / size[1]), int(point[1] * height / size[0])
            pixels[max(0, y - 2):y + 3, min(width - 1, max(0, x))] = TRUTH_OUTLINE
            pixels[min(height - 1, max(0, y)), max(0, x - 2):x + 3] = TRUTH_OUTLINE
        figures.append({"uri": png_data_uri(pixels), "width": width, "height": height,
                        "phrase": _phrase(phrase.text, index)})
    return pages.fragment("report_heatmaps.html", figures=figures) if figures else ""


def render_page(results: Mapping[str, Any], cards: Sequence[Card], notes: Sequence[str], title: str) -> str:
    """The whole page (templates/report.html); every value from the run is escaped by the template."""
    summary = []
    for task, metrics in (results.get("results") or {}).items():
        shown = ", ".join(f"{name} {100 * value:.1f}" for name, value in metrics.items()
                          if isinstance(value, (int, float)) and not math.isnan(value))
        summary.append({"task": task, "n": (results.get("n_samples") or {}).get(task), "scores": shown})
    config = results.get("config") or {}
    return pages.render("report.html", title=title, model=str(config.get("model")), git_hash=str(config.get("git_hash")),
                        summary=summary, tasks=sorted({card.task for card in cards}), notes=list(notes), cards=cards)


def build_report(run_dir: Path, output: Path | None = None, data_root: Path | None = None, max_side: int = 256,
                 tasks: Sequence[str] | None = None, truth: bool = True) -> Path:
    """Write the report of a run directory (default `RUN_DIR/report.html`); returns its path."""
    results, results_path = from_results.read_results(run_dir)
    run_dir = results_path.parent
    if max_side < 16:
        raise InputError("--max-side", None, f"must be at least 16 pixels, got {max_side}")
    if data_root is not None and not Path(data_root).is_dir():
        raise InputError(data_root, None, "--data-root folder not found")
    chosen = list(results["results"]) if tasks is None else list(tasks)
    unknown = [task for task in chosen if task not in results["results"]]
    if unknown:
        raise InputError(results_path, None, f"no results for {', '.join(unknown)}")
    notes: list[str] = []
    cards = [card for task in chosen for card in build_cards(run_dir, results, task, data_root, max_side, truth, notes)]
    cards.sort(key=lambda card: tuple(math.inf if math.isnan(v) else v for v in card.sort_key))
    target = Path(output) if output is not None else run_dir / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_page(results, cards, notes, f"gcgbench report: {run_dir.name}"), encoding="utf-8")
    return target
