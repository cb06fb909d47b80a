"""Grounded conversation generation on GranD-f (GLaMM `eval/gcg/evaluate.py` protocol).

Headline metrics, all fractions as the official script computes them: `meteor`, `cider` (caption
quality over the whole split in one call), `ap50`, `miou`, `mask_recall` (official, quirks kept) and
`mask_recall_max_matching` (ours: no early stop). Every metric gets a 95% bootstrap interval resampling images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import Doc, Phrase, Prediction, Request
from gcgbench.data.grandf import read_gcg_docs, read_glamm_prediction_dir
from gcgbench.data.predictions import read_predictions
from gcgbench.metrics import captions, gcg
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.metrics.text_similarity import PhraseEncoder, phrase_encoder
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals

METRICS = ("meteor", "cider", "ap50", "miou", "mask_recall", "mask_recall_max_matching")


@dataclass(frozen=True)
class GcgTask(SpecTask):
    """A GranD-f split. Files: `captions` (COCO caption GT), `masks` (COCO instance GT), `images`."""

    request_kind = "grounded_caption"

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return [paths.file(self.spec, "captions"), paths.file(self.spec, "masks")]

    def docs(self, paths: DataPaths) -> list[Doc]:
        return read_gcg_docs(*self.annotation_files(paths), paths.file(self.spec, "images"))

    def requests(self, doc: Doc) -> Request:
        return Request(doc.doc_id, "grounded_caption", self.spec.prompt, doc.image_path, doc.height, doc.width)

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        """The GT caption with each GT label grounded by its GT mask (labels without a mask stay ungrounded)."""
        caption = doc.truth["caption"]
        phrases = []
        for phrase in doc.phrases:
            start = caption.find(phrase.text)
            span = (start, start + len(phrase.text)) if start >= 0 else (None, None)
            phrases.append(Phrase(phrase.text, phrase.masks, *span))
        return Prediction(doc.doc_id, caption, tuple(phrases), extra_masks=doc.extra_masks)

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        return read_predictions(path, docs, self.name, folder_reader=read_glamm_prediction_dir)

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no images to score")
        encoder = phrase_encoder(options.text_model)
        try:
            with phase("mask matching"):
                masks = gcg.score_gcg_masks(docs, predictions, encoder)
        except MaskSizeError as error:
            raise InputError(self.name, None, str(error)) from None
        references = {doc.doc_id: list(doc.truth["captions"]) for doc in docs}
        texts = {doc.doc_id: predictions[doc.doc_id].text for doc in docs}
        caption_scores = captions.score_captions(
            references, texts, ("meteor", "cider"),
            references_source=f"{self.name} ground truth", predictions_source="predictions",
            meteor=options.meteor, tokenizer=options.tokenizer,
        )
        metrics = {**caption_scores.corpus, **masks.metrics()}
        metrics = {name: float(metrics[name]) for name in METRICS}

        def statistic(indices: np.ndarray) -> dict[str, float]:
            # docs, mask statistics and caption scores share one order, so an image index means the same in each
            return {**captions.aggregate(caption_scores, indices), **gcg.aggregate(masks.table, indices)}

        return TaskResult(
            task=self.name,
            version=self.version,
            metrics=metrics,
            n_samples=len(docs),
            metric_config=self._metric_config(encoder, options),
            intervals=bootstrap_intervals(len(docs), statistic, METRICS, options),
            per_sample=_per_sample(docs, masks, caption_scores),
            notes=_notes(masks),
        )

    def _metric_config(self, encoder: PhraseEncoder, options: ScoringOptions) -> dict[str, Any]:
        return {
            "protocol": "glamm",
            "iou_threshold": 0.5,
            "text_similarity_threshold": 0.5,
            "text_similarity_model": encoder.name,
            "text_model_option": options.text_model,
            "ap": "COCOeval segm, category 1, score 1.0, stats[1] (IoU 0.5, area all, maxDets 100)",
            "captions": "pycocoevalcap PTBTokenizer; METEOR 1.5 (-l en -norm); CIDEr-D (n=4, sigma=6) over the split",
            "caption_implementations": {"tokenizer": options.tokenizer, "meteor": options.meteor},
            "bootstrap": bootstrap_config(options),
        }


def _per_sample(docs: Sequence[Doc], masks: gcg.GcgMaskResult, caption_scores: captions.CaptionResult) -> list[dict[str, Any]]:
    rows = []
    for index, (doc, image) in enumerate(zip(docs, masks.per_image)):
        rows.append({
            "doc_id": doc.doc_id,
            "miou": image.miou,
            "recall_matches": image.recall_matches,
            "recall_matches_max_matching": image.recall_matches_max_matching,
            "gt_labels": image.n_gt_labels,
            "recall_exception": image.recall_exception,
            **{name: float(values[index]) for name, values in caption_scores.per_image.items()},
        })
    return rows


def _notes(masks: gcg.GcgMaskResult) -> list[str]:
    notes = []
    if masks.no_predicted_masks:
        notes.append("no predicted mask in the whole split: the official script crashes in loadRes; AP50 reported as 0")
    failed = masks.recall_exception_images
    if failed:
        notes.append(
            f"{len(failed)} image(s) raise IndexError in the official recall matching (a mask without a phrase "
            f"or a label without a mask was matched); as officially, they count 0 true positives: {', '.join(failed[:5])}"
            + (" ..." if len(failed) > 5 else "")
        )
    return notes
