"""`gcgbench diagnose RUN_DIR`: diagnosis.json plus one HTML page per task, from the files a run already has.

Per task family (others are skipped with a note): GCG buckets and breakdowns (`diagnose.gcg`, needs the
phrase-similarity model the run used: `--text-model`, else the run's recorded `text_model_option`); RES
breakdowns (`diagnose.res`); PNG AR breakdowns (`diagnose.png`). Runs are read through `RunReader`, so
`run`, `score` and `replay` folders (predictions made elsewhere, e.g. GLaMM's) all diagnose alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.views.diagnose import gcg as gcg_diagnosis
from gcgbench.views.diagnose import png as png_diagnosis
from gcgbench.views.diagnose import res as res_diagnosis
from gcgbench.views.run_reader import RunReader
from gcgbench.metrics.text_similarity import phrase_encoder
from gcgbench.views.diagnose.render import diagnosis_page

FAMILIES = ("gcg", "res", "png")
SCHEMA_VERSION = 1


@dataclass
class TaskDiagnosis:
    """One task of one run, diagnosed: the JSON summary, and per doc the buckets the viewer filters by."""

    task: str
    family: str
    summary: dict[str, Any]
    doc_buckets: dict[str, list[str]] = field(default_factory=dict)  # doc id -> bucket of each missed item
    doc_scores: dict[str, float] = field(default_factory=dict)  # doc id -> the per-sample score compared
    notes: list[str] = field(default_factory=list)
    gcg: gcg_diagnosis.GcgDiagnosis | None = None


def text_model_of(reader: RunReader, task: str, text_model: str | None) -> str:
    chosen = text_model or reader.metric_config(task).get("text_model_option")
    if not chosen:
        raise InputError("--text-model", None, f"{reader.path}: {task} records no phrase-similarity model; pass "
                                               "--text-model (a local bert-base-uncased folder, or minilm)")
    return str(chosen)


def diagnose_task(reader: RunReader, task: str, text_model: str | None = None) -> TaskDiagnosis:
    """Diagnose one task of a run (InputError when the family has no diagnosis or a file is unreadable)."""
    reader.require_task(task)
    family = reader.family(task)
    if family == "gcg":
        return _gcg(reader, task, text_model)
    if family == "res":
        return _res(reader, task)
    if family == "png":
        return _png(reader, task)
    raise InputError(task, None, f"no diagnosis for the {family} family (diagnose knows {', '.join(FAMILIES)})")


def _gcg(reader: RunReader, task: str, text_model: str | None) -> TaskDiagnosis:
    docs = reader.scored_docs(task)
    predictions = reader.predictions(task, docs)
    encoder = phrase_encoder(text_model_of(reader, task, text_model))
    diagnosis = gcg_diagnosis.diagnose_gcg(docs, predictions, gcg_diagnosis.split_similarity(encoder, docs, predictions))
    summary = diagnosis.summary()
    notes = []
    recorded = reader.metric_config(task).get("text_similarity_model")
    if recorded and recorded != diagnosis.similarity_model:
        notes.append(f"the run scored with {recorded}; this diagnosis uses {diagnosis.similarity_model}")
    stored = {str(row["doc_id"]): row for row in reader.rows(task)}
    differ = [image.doc_id for image in diagnosis.images
              if stored.get(image.doc_id, {}).get("recall_matches") not in (None, image.official_matches)]
    if differ:
        notes.append(f"{len(differ)} image(s) recount a different official TP than the run's rows (first: "
                     f"{differ[0]}): the buckets explain the recomputed recall {100 * summary['mask_recall']:.1f}")
    stored_recall = reader.metrics(task).get("mask_recall")
    summary["stored_mask_recall"] = stored_recall
    summary["per_image"] = [{
        "doc_id": image.doc_id, "official_matches": image.official_matches, "max_matching_matches": image.max_matching_matches,
        "exception": image.exception, "hallucinated": list(image.hallucinated),
        "labels": [{"text": label.text, "bucket": label.bucket, "area": label.area, "best_iou": label.best_iou,
                    "best_similarity": label.best_similarity} for label in image.labels],
    } for image in diagnosis.images]
    return TaskDiagnosis(
        task, "gcg", summary,
        doc_buckets={image.doc_id: [label.bucket or "matched" for label in image.labels] for image in diagnosis.images},
        doc_scores={image.doc_id: image.official_matches / len(image.labels) if image.labels else math.nan
                    for image in diagnosis.images},
        notes=notes, gcg=diagnosis,
    )


def _docs_or_note(reader: RunReader, task: str, notes: list[str], left_out: str) -> dict:
    """The task's docs, or {} with a note saying which breakdowns are left out without ground truth."""
    try:
        return reader.docs(task)
    except InputError as error:
        notes.append(f"no ground truth ({error}): {left_out} are left out")
        return {}


def _res(reader: RunReader, task: str) -> TaskDiagnosis:
    rows = reader.rows(task)
    notes: list[str] = []
    docs = _docs_or_note(reader, task, notes, "object size and empty-mask share")
    try:
        predictions = reader.predictions(task, [docs[d] for d in (str(r["doc_id"]) for r in rows) if d in docs])
    except InputError:
        predictions = None
    samples = res_diagnosis.diagnose_res(rows, docs, predictions)
    summary = res_diagnosis.summarise_res(samples)
    summary["samples"] = [{"doc_id": s.doc_id, "expression": s.expression, "iou": s.iou, "gt_area": s.gt_area,
                           "predicted_area": s.predicted_area, "location_word": s.location_word} for s in samples]
    return TaskDiagnosis(task, "res", summary,
                         doc_buckets={s.doc_id: res_diagnosis.sample_buckets(s) for s in samples},
                         doc_scores={s.doc_id: s.iou for s in samples}, notes=notes)


def _png(reader: RunReader, task: str) -> TaskDiagnosis:
    rows = reader.rows(task)
    notes: list[str] = []
    docs = _docs_or_note(reader, task, notes, "segment count and area")
    summary = png_diagnosis.diagnose_png(rows, docs, reader.protocol(task) if reader.protocol(task) != "default"
                                         else "official")
    buckets: dict[str, list[str]] = {}
    ious: dict[str, list[float]] = {}
    for phrase in summary["phrases"]:
        iou = phrase["iou"]
        buckets.setdefault(phrase["doc_id"], []).append("iou_50" if iou > 0.5 else "failure")
        ious.setdefault(phrase["doc_id"], []).append(0.0 if math.isnan(iou) else iou)
    return TaskDiagnosis(task, "png", summary, doc_buckets=buckets,
                         doc_scores={doc: sum(v) / len(v) for doc, v in ious.items()}, notes=notes)


def diagnose_run(run_dir: Path, output: Path | None = None, data_root: Path | None = None,
                 text_model: str | None = None, tasks: Sequence[str] | None = None) -> tuple[Path, list[Path]]:
    """Write `diagnosis.json` and `<task>.html` into `output` (default RUN_DIR/diagnosis); returns the paths.
    Tasks of families without a diagnosis are skipped when not asked for by name."""

    reader = RunReader.open(run_dir, data_root)
    chosen = list(tasks) if tasks else [t for t in reader.tasks if reader.family(t) in FAMILIES]
    if not chosen:
        raise InputError(reader.results_path, None, f"no task of a diagnosed family ({', '.join(FAMILIES)}) in this run")
    diagnoses = [diagnose_task(reader, task, text_model) for task in chosen]
    target = Path(output) if output is not None else reader.path / "diagnosis"
    target.mkdir(parents=True, exist_ok=True)
    skipped = {t: "not asked for" if reader.family(t) in FAMILIES else f"no diagnosis for the {reader.family(t)} family"
               for t in reader.tasks if t not in chosen}
    payload = {"schema_version": SCHEMA_VERSION, "run": str(reader.path), "model": reader.label, "skipped": skipped,
               "tasks": {d.task: {"family": d.family, "version": reader.version(d.task),
                                  "protocol": reader.protocol(d.task), "stored_metrics": reader.metrics(d.task),
                                  "notes": d.notes, **d.summary} for d in diagnoses}}
    json_path = target / "diagnosis.json"
    json_path.write_text(json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    pages = []
    for diagnosis in diagnoses:
        page = target / f"{diagnosis.task}.html"
        page.write_text(diagnosis_page(reader, diagnosis), encoding="utf-8")
        pages.append(page)
    return json_path, pages


def json_safe(value: Any) -> Any:
    """NaN and infinities as None, recursively (JSON has neither)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
