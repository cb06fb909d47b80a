"""Generalized referring expression segmentation on gRefCOCO (GRES / ReLA): val, testA, testB.

Docs: one per sentence of every ref of the split (`gcgbench.data.grefcoco`), doc_id
`"<ref_id>_<sent_id>"` as our RefCOCO tasks, `truth["image_id"]` the COCO image (the bootstrap
cluster). A ref may name one object, several (the truth is their union) or none (`no_target`: an
all-zero truth). Each is asked as a "segment" request with `inputs={"expression": sentence}` and the
task file's prompt (the LISA RefCOCO prompt, as LISA-style GRES models such as GSVA are asked);
each backend answers through its own RES path (`reasonseg.ANSWER_PATHS`).

Scoring (`gcgbench.metrics.gres`, ReLA's `ReferEvaluator`): the first predicted mask; an empty mask
(or none) means "no target". `ScoringOptions.min_mask_area` (`--min-mask-area N`) lets a backend
that always draws something say "nothing": masks with fewer than N pixels then count as "no target"
(default 1). It is recorded in `metric_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import Doc, Phrase, Prediction, Request
from gcgbench.data.grefcoco import SPLITS, GrefExpression, read_grefcoco
from gcgbench.data.predictions import read_predictions
from gcgbench.metrics import gres
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.metrics.stats import cluster_indices
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.reasonseg import ANSWER_PATHS
from gcgbench.tasks.res import prediction_mask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals


@dataclass(frozen=True)
class GresTask(SpecTask):
    """A gRefCOCO split. Files: `refs` (grefs(unc).json), `instances`, `images`. Params: `split`."""

    request_kind = "segment"

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        return ("rela",)

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return [paths.file(self.spec, "refs"), paths.file(self.spec, "instances")]

    def docs(self, paths: DataPaths) -> list[Doc]:
        expressions = read_grefcoco(*self.annotation_files(paths), paths.file(self.spec, "images"), self._split())
        return [_doc(expression) for expression in expressions]

    def requests(self, doc: Doc) -> Request:
        expression = doc.inputs["expression"]
        return Request(doc.doc_id, "segment", self.spec.prompt.format(expression=expression), doc.image_path,
                       doc.height, doc.width, {"expression": expression})

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        expression = doc.inputs["expression"]
        masks = () if doc.truth["no_target"] else doc.phrases[0].masks  # "nothing" is no mask at all
        return Prediction(doc.doc_id, expression, (Phrase(expression, masks),))

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        return read_predictions(path, docs, self.name)

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no referring expressions to score")
        min_area = min_mask_area(options)
        samples = []
        for doc in docs:
            if doc.doc_id not in predictions:
                raise InputError(self.name, f"doc {doc.doc_id}", "no prediction for this referring expression")
            samples.append(gres.GresSample(doc.doc_id, doc.truth["image_id"], prediction_mask(predictions[doc.doc_id]),
                                           doc.phrases[0].masks[0], bool(doc.truth["no_target"])))
        try:
            stats = gres.compute_stats(samples, min_area)
        except MaskSizeError as error:
            raise InputError(self.name, None, str(error)) from None
        metrics = gres.aggregate(stats)
        intervals = bootstrap_intervals(cluster_indices(list(stats.image_ids)),
                                        lambda indices: gres.aggregate(stats, indices), gres.METRICS, options)
        rows = []
        for doc, row in zip(docs, stats.per_sample()):
            row.pop("sample_id")
            rows.append({"doc_id": doc.doc_id, **row, "targets": len(doc.truth["ann_ids"]),
                         "expression": doc.inputs["expression"], "predicted_masks": len(predictions[doc.doc_id].masks())})
        return TaskResult(task=self.name, version=self.version, metrics={k: float(metrics[k]) for k in gres.METRICS},
                          n_samples=len(docs), metric_config=self._metric_config(stats, options), intervals=intervals,
                          per_sample=rows, notes=_notes(docs, predictions, stats, options))

    def _split(self) -> str:
        split = self.spec.params.get("split")
        if split not in SPLITS:
            raise InputError(self.spec.source, "params.split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
        return split

    def _metric_config(self, stats: gres.GresStats, options: ScoringOptions) -> dict[str, Any]:
        return {
            "protocol": "rela",
            "split": self._split(),
            "min_mask_area": stats.min_mask_area,
            "no_target_rule": f"a prediction whose first mask has fewer than {stats.min_mask_area} pixel(s) "
                              "(or no mask) says 'no target'",
            "nt_counts": gres.counts(stats),
            "precision_thresholds": list(gres.PRECISION_THRESHOLDS),
            "precision_comparison": ">=",
            "expression_selection": "every sentence of every ref whose split equals the task split (ReLA G_REFER)",
            "expression_text": "sent, stripped, lower case (ReLA feeds raw to BERT)",
            "gt_mask": "union of the referred non-crowd annotations (pycocotools), empty for no-target, at image size "
                       "(ReLA scores at its 480x480 input size)",
            "answer_paths": ANSWER_PATHS,
            "bootstrap": bootstrap_config(options),
        }


def min_mask_area(options: ScoringOptions) -> int:
    """`options.min_mask_area`, else the default 1; InputError when not an integer >= 1."""
    value = getattr(options, "min_mask_area", None)
    value = gres.DEFAULT_MIN_MASK_AREA if value is None else value
    try:
        return gres.check_min_mask_area(value)
    except ValueError as error:
        raise InputError("--min-mask-area", None, str(error)) from None


def _doc(expression: GrefExpression) -> Doc:
    return Doc(
        doc_id=expression.record_id, image_path=expression.image_file, height=expression.height,
        width=expression.width, inputs={"expression": expression.expression},
        phrases=(Phrase(expression.expression, (expression.mask,)),),
        truth={"image_id": expression.image_id, "ref_id": expression.ref_id, "sent_id": expression.sent_id,
               "sentence_index": expression.sentence_index, "ann_ids": list(expression.ann_ids),
               "no_target": expression.no_target, "split": expression.split, "raw": expression.raw,
               "gt_issue": expression.gt_issue, "crowd_left_out": expression.crowd_left_out},
    )


def _notes(docs: Sequence[Doc], predictions: Mapping[str, Prediction], stats: gres.GresStats,
           options: ScoringOptions) -> list[str]:
    notes = []
    if options.protocol not in (None, "rela"):  # a run over several families may pass e.g. --protocol flmm
        notes.append(f"--protocol {options.protocol} does not apply: gRefCOCO has one protocol, rela (ReLA's evaluator)")
    if not stats.gt_nt.any():
        notes.append("no no-target expression in this split: N-acc and T-acc are 0 as ReLA sets them")
    if crowd := sum(bool(doc.truth.get("crowd_left_out")) for doc in docs):
        notes.append(f"{crowd} expression(s) refer to crowd annotations, left out of the truth as ReLA leaves them out")
    if several := sum(len(predictions[doc.doc_id].masks()) > 1 for doc in docs):
        notes.append(f"{several} prediction(s) have several masks; only the first is scored")
    if issues := sorted({doc.truth["gt_issue"] for doc in docs if doc.truth.get("gt_issue")}):
        notes.append(f"{sum(bool(d.truth.get('gt_issue')) for d in docs)} ground-truth mask(s) with issues: "
                     f"{'; '.join(issues)}")
    return notes
