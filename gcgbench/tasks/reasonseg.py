"""ReasonSeg (LISA): reasoning segmentation on val, test, and test's short-query / long-query subsets.

Docs: one per image of the split folder (`gcgbench.data.reasonseg`), doc_id = the image's stem,
`truth["image_id"]` = the stem (the bootstrap cluster; one doc per image). The query is the one
LISA's `ValDataset` scores, `text[0].strip()`; the subsets keep `is_sentence` false (short) or true
(long), as LISA's paper splits the test table. The request is a "segment" request with
`inputs={"expression": query, "is_sentence": ...}` and LISA's prompt for that form (`ValDataset`):
the task file's `prompt` for phrases, `params.sentence_prompt` for sentences.

How each backend turns the request into a mask is its own RES path (`ANSWER_PATHS`, recorded in
results): GLaMM, a LISA-architecture model, gets the task prompt (LISA's) and a teacher-forced answer
holding [SEG] (LISA's validation forces "[SEG].", GLaMM's backend default is "It is [SEG]." — its
`res_answer` argument, recorded in the fingerprint), the first [SEG] mask; the others use their RES path.

Metrics (`gcgbench.metrics.reasonseg`): gIoU and cIoU of LISA `train_ds.py::validate` — the RES
"lisa" arithmetic, with the ground truth's "ignore" pixels left out of both prediction and target
(default); `--protocol flmm` averages as F-LMM's `scripts/reason_seg.py` does (U = 0 scores 0).
The first predicted mask is scored (LISA scores `pred_masks[0]`); no mask is an empty prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import RLE, Doc, Phrase, Prediction, Request
from gcgbench.data.predictions import read_predictions
from gcgbench.data.reasonseg import SPLITS, ReasonSegSample, annotations_sha256, read_reasonseg
from gcgbench.metrics import reasonseg
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.metrics.stats import cluster_indices
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.res import prediction_mask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals

SUBSETS = {"all": None, "short": False, "long": True}  # subset -> the is_sentence it keeps
ANSWER_PATHS = {
    "glamm": "LISA-style: the task prompt, then res_answer teacher-forced (default 'It is [SEG].', GLaMM's; LISA's "
             "validation forces '[SEG].': --model-args res_answer='[SEG].'), first [SEG] mask",
    "flmm": "F-LMM RES path: the query teacher-forced after F-LMM's description prompt, mask head + SAM refiner",
    "llava-as": "attend-and-segment RES path: res_template (default 'Describe the \"{expression}\".'; 'task' = the "
                "task prompt), res_rule, SAM mask at the attention peak",
    "difflmm": "attend-and-segment RES path of llava-as, over DiffLMM's vision path",
    "replay": "the replayed prediction file's first mask",
    "oracle": "the ground-truth target mask",
}


IOU_FORMULAS = {
    "lisa": "LISA validate: fl32(I) / (fl32(U) + 1e-5) + [U == 0]; gIoU = sum / (N + 1e-5); cIoU = sum I / (sum U + 1e-10)",
    "flmm": "F-LMM scripts/reason_seg.py: I / (U + 1e-12), 0 at U == 0; gIoU = mean; cIoU = sum I / sum U",
}


@dataclass(frozen=True)
class ReasonSegTask(SpecTask):
    """A ReasonSeg split. Files: `split_folder` (LISA's `reason_seg/ReasonSeg/<split>`, with the task file's
    `alternatives`, `ReasonSeg/<split>`). Params: `split` (val | test), `subset`
    (all | short | long), `sentence_prompt` (the prompt of `is_sentence` queries; `prompt` is for the others)."""

    request_kind = "segment"

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        return tuple(reasonseg.PROTOCOLS)

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return []  # hundreds of per-image JSON files: one combined sha256 goes into metric_config instead

    def docs(self, paths: DataPaths) -> list[Doc]:
        split, keep = self._params()
        samples = read_reasonseg(paths.file(self.spec, "split_folder"))
        chosen = [s for s in samples if keep is None or s.is_sentence == keep]
        digest = annotations_sha256(samples)
        return [_doc(sample, digest) for sample in chosen]

    def requests(self, doc: Doc) -> Request:
        text = doc.inputs["expression"]
        template = self.spec.params.get("sentence_prompt") if doc.inputs["is_sentence"] else self.spec.prompt
        if not isinstance(template, str):
            raise InputError(self.spec.source, "params.sentence_prompt", "a reasonseg task needs a string sentence_prompt")
        return Request(doc.doc_id, "segment", template.format(expression=text), doc.image_path, doc.height, doc.width,
                       {"expression": text, "is_sentence": doc.inputs["is_sentence"]})

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        text = doc.inputs["expression"]
        return Prediction(doc.doc_id, text, (Phrase(text, doc.phrases[0].masks),))

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        return read_predictions(path, docs, self.name)  # LISA scores in memory: no upstream prediction files

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no images to score")
        samples = []
        for doc in docs:
            if doc.doc_id not in predictions:
                raise InputError(self.name, f"doc {doc.doc_id}", "no prediction for this image")
            samples.append(reasonseg.ReasonSegSample(doc.doc_id, doc.truth["image_id"],
                                                     prediction_mask(predictions[doc.doc_id]), doc.phrases[0].masks[0],
                                                     RLE.from_json(doc.truth["ignore"])))
        try:
            stats = reasonseg.compute_stats(samples, self.protocol(options))
        except MaskSizeError as error:
            raise InputError(self.name, None, str(error)) from None
        metrics = reasonseg.aggregate(stats)
        intervals = bootstrap_intervals(cluster_indices(list(stats.image_ids)),
                                        lambda indices: reasonseg.aggregate(stats, indices), reasonseg.METRICS, options)
        rows = []
        for doc, row in zip(docs, stats.per_sample()):
            row.pop("sample_id")
            rows.append({"doc_id": doc.doc_id, **row, "is_sentence": doc.inputs["is_sentence"],
                         "expression": doc.inputs["expression"],
                         "predicted_masks": len(predictions[doc.doc_id].masks())})
        return TaskResult(task=self.name, version=self.version, metrics={k: float(metrics[k]) for k in reasonseg.METRICS},
                          n_samples=len(docs), metric_config=self._metric_config(docs, options, stats.protocol),
                          intervals=intervals,
                          per_sample=rows, notes=_notes(docs, predictions))

    def protocol(self, options: ScoringOptions) -> str:
        """`--protocol`, else the task file's `params.protocol`, else "lisa"; InputError when unknown."""
        protocol = options.protocol or self.spec.params.get("protocol") or "lisa"
        if protocol not in reasonseg.PROTOCOLS:
            raise InputError("--protocol", None, f"unknown ReasonSeg protocol {protocol!r}; choose one of "
                                                 f"{', '.join(reasonseg.PROTOCOLS)}")
        return protocol

    def _params(self) -> tuple[str, bool | None]:
        split, subset = self.spec.params.get("split"), self.spec.params.get("subset", "all")
        if split not in SPLITS:
            raise InputError(self.spec.source, "params.split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
        if subset not in SUBSETS:
            raise InputError(self.spec.source, "params.subset", f"must be one of {', '.join(SUBSETS)}, got {subset!r}")
        return split, SUBSETS[subset]

    def _metric_config(self, docs: Sequence[Doc], options: ScoringOptions, protocol: str) -> dict[str, Any]:
        split, keep = self._params()
        return {
            "protocol": protocol,
            "split": split,
            "subset": self.spec.params.get("subset", "all"),
            "is_sentence": keep,
            "query": "text[0].strip() of each image's JSON (LISA utils/dataset.py ValDataset, val mode)",
            "prompts": {"phrase": self.spec.prompt, "sentence": self.spec.params.get("sentence_prompt")},
            "answer_paths": ANSWER_PATHS,
            "gt_mask": "LISA get_mask_from_json: 'flag' shapes dropped, largest first, cv2.polylines + fillPoly; "
                       "'ignore' pixels (255) excluded from prediction and target",
            "prediction_mask": "first predicted mask; no mask = empty prediction",
            "iou": IOU_FORMULAS[protocol],
            "annotations_sha256": docs[0].truth["annotations_sha256"] if docs else None,
            "bootstrap": bootstrap_config(options),
        }


def _doc(sample: ReasonSegSample, digest: str) -> Doc:
    return Doc(
        doc_id=sample.stem, image_path=sample.image_file, height=sample.height, width=sample.width,
        inputs={"expression": sample.text, "is_sentence": sample.is_sentence},
        phrases=(Phrase(sample.text, (sample.target,)),),
        truth={"image_id": sample.stem, "ignore": sample.ignore.to_json(), "texts": list(sample.texts),
               "json_file": sample.json_file, "gt_issue": sample.gt_issue, "annotations_sha256": digest},
    )


def _notes(docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> list[str]:
    notes = []
    masks = [len(predictions[doc.doc_id].masks()) for doc in docs]
    if none := sum(count == 0 for count in masks):
        notes.append(f"{none} prediction(s) have no mask and count as empty masks")
    if several := sum(count > 1 for count in masks):
        notes.append(f"{several} prediction(s) have several masks; only the first is scored")
    if issues := sorted({doc.truth["gt_issue"] for doc in docs if doc.truth.get("gt_issue")}):
        notes.append(f"{sum(bool(d.truth.get('gt_issue')) for d in docs)} annotation(s) read with issues: {'; '.join(issues)}")
    return notes
