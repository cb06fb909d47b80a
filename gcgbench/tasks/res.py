"""Referring expression segmentation on RefCOCO, RefCOCO+ and RefCOCOg (every split).

Docs: one per referring sentence of the split (`gcgbench.data.refer`), doc_id `"<ref_id>_<sent_id>"`,
`truth["image_id"]` the COCO image (the bootstrap cluster). Each is asked as a "segment" request
with `inputs={"expression": sentence}` and the task file's prompt. A prediction answers with one
phrase carrying one mask; its first mask (phrase masks, then extra masks — LISA/GLaMM score
`pred_masks[0]`) is scored, and no mask at all is an empty prediction.

Protocols (`ScoringOptions.protocol`, else the task file's `params.protocol`, else "lisa"); the
metric formulas are `gcgbench.metrics.res`:

* "lisa" — LISA `utils/dataset.py::ValDataset` + `train_ds.py::validate`, and GLaMM
  `eval/referring_seg/infer_and_evaluate.py`: every sentence of every ref of the split is scored.
  (GLaMM's loader draws a random ≤ 3 sentences per image with no seed; "lisa" scores them all.)
* "glamm" — GLaMM `eval/referring_seg/infer_and_evaluate.py` as it runs: LISA's metrics over the ≤ 3
  sentences per image its `ReferSegmDataset` draws, drawn here with the run's `--seed`
  (`gcgbench.data.refer.glamm_selection`; the glamm backend's `glamm-multiturn` protocol asks them in one
  conversation per image with the same draw).
* "flmm" — F-LMM `scripts/multiprocess_eval_refcoco.py`: mmdet `RefCocoDataset(text_mode=
  'select_first')` + `RefSegMetric`. Docs stay every sentence; `score` keeps, per annotation, the
  first sentence of the LAST ref (pickle order) whose split equals the task's split exactly —
  mmdet keys objects by `ann_id` and `ann.update(ref)` leaves the last ref's sentences on the shared
  annotation. F-LMM feeds that sentence as `raw.lower()`; our requests carry `sent` (differs only in
  punctuation and casing), which `metric_config` records.

Ground truth is the union of the referred annotation's polygons for both protocols (see
`gcgbench.data.refer` for LISA's sum-of-polygons quirk, not reproduced).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import RLE, Doc, Phrase, Prediction, Request
from gcgbench.data.predictions import read_predictions
from gcgbench.data.refer import ReferExpression, check_split, flmm_selection, glamm_selection, read_refer_expressions
from gcgbench.metrics import res
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.metrics.stats import cluster_indices
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals, point_accuracy_metric

METRICS = ("ciou", "giou", *(f"precision_{threshold}" for threshold in res.PRECISION_THRESHOLDS))
SELECTION = {
    "lisa": "every sentence of every ref whose split matches as refer.py getRefIds does (LISA/GLaMM)",
    "flmm": "per ann_id, sentence 0 of the last ref with split == task split (mmdet text_mode='select_first')",
    "glamm": "per image, <= 3 sentences drawn with the run seed (GLaMM ReferSegmDataset, data.refer.glamm_selection)",
}
PROTOCOLS = ("lisa", "flmm", "glamm")
METRIC_PROTOCOL = {"lisa": "lisa", "flmm": "flmm", "glamm": "lisa"}   # glamm = LISA's formulas on its selection
POINT_ACCURACY_NOTE = ("a&s: fraction of scored expressions whose attention point (extras.points[0]) lies in the "
                       "ground-truth mask; no point = miss (aas/eval_instance_seg.py)")


@dataclass(frozen=True)
class ResTask(SpecTask):
    """A RefCOCO-family split. Files: `refs` (refer pickle), `instances` (COCO instances), `images`.
    Params: `dataset`, `split_by` (unc | umd | google), `split`, optional default `protocol`."""

    request_kind = "segment"

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        return PROTOCOLS

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return [paths.file(self.spec, "refs"), paths.file(self.spec, "instances")]

    def docs(self, paths: DataPaths) -> list[Doc]:
        split, split_by = self._split()
        expressions = read_refer_expressions(*self.annotation_files(paths), paths.file(self.spec, "images"), split, split_by)
        return [_doc(expression) for expression in expressions]

    def requests(self, doc: Doc) -> Request:
        expression = doc.inputs["expression"]
        return Request(doc.doc_id, "segment", self.spec.prompt.format(expression=expression), doc.image_path,
                       doc.height, doc.width, {"expression": expression})

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        expression = doc.inputs["expression"]
        return Prediction(doc.doc_id, expression, (Phrase(expression, doc.phrases[0].masks),))

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        # GLaMM and LISA score RES in memory and write no prediction files, so there is no upstream layout
        return read_predictions(path, docs, self.name)

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        protocol = self.protocol(options)
        if protocol == "flmm":
            scored = flmm_selection(docs, self._split()[0])
        elif protocol == "glamm":
            scored = glamm_selection(docs, options.seed)
        else:
            scored = list(docs)
        if not scored:
            raise InputError(self.name, None, "the split has no referring expressions to score")
        samples = []
        for doc in scored:
            if doc.doc_id not in predictions:
                raise InputError(self.name, f"doc {doc.doc_id}", "no prediction for this referring expression")
            samples.append(res.ResSample(doc.doc_id, doc.truth["image_id"], prediction_mask(predictions[doc.doc_id]),
                                         doc.phrases[0].masks[0]))
        try:
            result = res.evaluate(samples, METRIC_PROTOCOL[protocol])
        except MaskSizeError as error:
            raise InputError(self.name, None, str(error)) from None
        stats = result.stats
        intervals = bootstrap_intervals(
            cluster_indices(list(stats.image_ids)), lambda indices: res.aggregate(stats, indices), METRICS, options,
        )
        metrics = {name: float(result.metrics[name]) for name in METRICS}
        metrics.update(point_accuracy_metric(self.name, [(predictions[d.doc_id], 0, d.phrases[0].masks) for d in scored]))
        config = self._metric_config(result, options, protocol)
        if "point_accuracy" in metrics:
            config["point_accuracy"] = POINT_ACCURACY_NOTE
        return TaskResult(
            task=self.name,
            version=self.version,
            metrics=metrics,
            n_samples=len(scored),
            metric_config=config,
            intervals=intervals,
            per_sample=_per_sample(scored, predictions, stats),
            notes=_notes(docs, scored, predictions, protocol),
        )

    def protocol(self, options: ScoringOptions) -> str:
        """The scoring protocol: the option, else the task file's `params.protocol`, else "lisa"."""
        protocol = options.protocol or self.spec.params.get("protocol") or res.DEFAULT_PROTOCOL
        if protocol not in PROTOCOLS:
            raise InputError("--protocol", None, f"unknown RES protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        return protocol

    def _split(self) -> tuple[str, str]:
        split, split_by = self.spec.params.get("split"), self.spec.params.get("split_by")
        if not isinstance(split, str) or not isinstance(split_by, str):
            raise InputError(self.spec.source, "params", "a res task needs string params 'split' and 'split_by'")
        check_split(split, split_by, self.spec.source)
        return split, split_by

    def _metric_config(self, result: res.ResResult, options: ScoringOptions, protocol: str) -> dict[str, Any]:
        split, split_by = self._split()
        return {
            **result.metric_config(),
            "dataset": self.spec.params.get("dataset"),
            "split_by": split_by,
            "split": split,
            "protocol": protocol,
            "metric_formulas": result.protocol,
            "expression_selection": SELECTION[protocol],
            "expression_text": "refer sent, stripped, lower case (LISA/GLaMM; F-LMM feeds raw.lower())",
            "gt_mask": "union of the referred annotation's polygons (pycocotools frPyObjects + merge)",
            "prediction_mask": "first predicted mask; no mask = empty prediction",
            "bootstrap": bootstrap_config(options),
        }


def prediction_mask(prediction: Prediction) -> RLE | None:
    """The mask that is scored: the prediction's first mask, None when it has none."""
    masks = prediction.masks()
    return masks[0] if masks else None


def _doc(expression: ReferExpression) -> Doc:
    return Doc(
        doc_id=expression.record_id,
        image_path=expression.image_file,
        height=expression.height,
        width=expression.width,
        inputs={"expression": expression.expression},
        phrases=(Phrase(expression.expression, (expression.mask,)),),
        truth={
            "image_id": expression.image_id,
            "ref_id": expression.ref_id,
            "sent_id": expression.sent_id,
            "sentence_index": expression.sentence_index,
            "ann_id": expression.ann_id,
            "category_id": expression.category_id,
            "split": expression.split,
            "raw": expression.raw,
            "gt_issue": expression.gt_issue,
        },
    )


def _per_sample(scored: Sequence[Doc], predictions: Mapping[str, Prediction], stats: res.ResStats) -> list[dict[str, Any]]:
    rows = []
    for doc, row in zip(scored, stats.per_sample()):
        row.pop("sample_id")  # the doc id
        rows.append({"doc_id": doc.doc_id, **row, "expression": doc.inputs["expression"],
                     "predicted_masks": len(predictions[doc.doc_id].masks())})
    return rows


def _notes(docs: Sequence[Doc], scored: Sequence[Doc], predictions: Mapping[str, Prediction], protocol: str) -> list[str]:
    notes = []
    if protocol == "flmm":
        notes.append(f"flmm protocol: {len(scored)} of {len(docs)} sentences scored (the first sentence of each object)")
    if protocol == "glamm":
        notes.append(f"glamm protocol: {len(scored)} of {len(docs)} sentences scored (<= 3 per image, drawn with --seed)")
    masks = [len(predictions[doc.doc_id].masks()) for doc in scored]
    if none := sum(count == 0 for count in masks):
        notes.append(f"{none} prediction(s) have no mask and count as empty masks")
    if several := sum(count > 1 for count in masks):
        notes.append(f"{several} prediction(s) have several masks; only the first is scored")
    issues = sorted({doc.truth["gt_issue"] for doc in scored if doc.truth.get("gt_issue")})
    if issues:
        affected = sum(bool(doc.truth.get("gt_issue")) for doc in scored)
        notes.append(f"{affected} ground-truth mask(s) built with issues: {'; '.join(issues)}")
    return notes
