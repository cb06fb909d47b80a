"""Region captioning (GLaMM `eval/region_captioning`) and image captioning: METEOR and CIDEr-D.

`params.mode` picks the reader: `region` (one doc per region, box in `inputs["region"]` as [x, y, w, h]
pixels; GLaMM RefCOCOg val and Visual Genome test) or `image` (one doc per image of a COCO captions file).
The backend is asked for free text (Request kind `caption`) and the split is scored in ONE
pycocoevalcap call (`gcgbench.metrics.captions.score_captions`: PTB tokenizer, METEOR 1.5, CIDEr-D), as
GLaMM's `evaluate.py` does through COCOEvalCap. Intervals resample pictures (`truth["image_id"]`), so the
regions of one photo stay together.

Files: `annotations` (the COCO caption file), `images` (the folder its `file_name`s are relative to).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import Doc, Prediction, Request
from gcgbench.data.captioning import (
    is_caption_results_file,
    read_caption_results,
    read_caption_results_dir,
    read_image_caption_docs,
    read_region_caption_docs,
)
from gcgbench.data.predictions import read_predictions
from gcgbench.metrics import captions, stats
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals

MODES = ("region", "image")
METRICS = ("meteor", "cider")


@dataclass(frozen=True)
class CaptioningTask(SpecTask):
    """A captioning split; `spec.params["mode"]` is `region` or `image`."""

    request_kind = "caption"

    @property
    def mode(self) -> str:
        mode = self.spec.params.get("mode")
        if mode not in MODES:
            raise InputError(self.spec.source, "params.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
        return mode

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return [paths.file(self.spec, "annotations")]

    def docs(self, paths: DataPaths) -> list[Doc]:
        reader = read_region_caption_docs if self.mode == "region" else read_image_caption_docs
        return reader(paths.file(self.spec, "annotations"), paths.file(self.spec, "images"))

    def requests(self, doc: Doc) -> Request:
        """The task's prompt; GLaMM's region prompt has a literal `<bbox>` where the backend puts the box."""
        try:
            prompt = self.spec.prompt.format_map(doc.inputs)
        except (KeyError, IndexError, ValueError) as error:
            raise InputError(self.spec.source, "prompt", f"cannot fill the template from the doc inputs ({error!r})") from None
        return Request(doc.doc_id, "caption", prompt, doc.image_path, doc.height, doc.width, dict(doc.inputs))

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        """The first reference caption (METEOR 1 where it has words; CIDEr-D as the split's IDF gives it)."""
        return Prediction(doc.doc_id, doc.truth["captions"][0])

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        """gcgbench JSONL or run folder, or GLaMM's results: one `[{"image_id", "caption"}]` file or its folder."""
        path = Path(path)
        if path.is_file() and is_caption_results_file(path):
            return read_caption_results([path], docs)
        return read_predictions(path, docs, self.name, folder_reader=read_caption_results_dir)

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no docs to score")
        missing = [doc.doc_id for doc in docs if doc.doc_id not in predictions]
        if missing:
            raise InputError("predictions", None, f"{len(missing)} of {len(docs)} docs have no prediction (first: {missing[0]!r})")
        references = {doc.doc_id: list(doc.truth["captions"]) for doc in docs}
        texts = {doc.doc_id: predictions[doc.doc_id].text for doc in docs}
        result = captions.score_captions(
            references, texts, METRICS,
            references_source=f"{self.name} ground truth", predictions_source="predictions",
            meteor=options.meteor, tokenizer=options.tokenizer,
        )
        metrics = {name: float(result.corpus[name]) for name in METRICS}
        clusters = stats.cluster_indices([str(doc.truth["image_id"]) for doc in docs])

        def statistic(indices: np.ndarray) -> dict[str, float]:
            # docs and caption scores share one order, so a record index means the same doc in both
            return captions.aggregate(result, indices)

        return TaskResult(
            task=self.name,
            version=self.version,
            metrics=metrics,
            n_samples=len(docs),
            metric_config=self._metric_config(options, n_pictures=len(clusters)),
            intervals=bootstrap_intervals(clusters, statistic, METRICS, options),
            per_sample=[
                {"doc_id": doc.doc_id, "image_id": doc.truth["image_id"],
                 **{name: float(result.per_image[name][index]) for name in METRICS}}
                for index, doc in enumerate(docs)
            ],
            notes=_notes(docs, texts),
        )

    def _metric_config(self, options: ScoringOptions, n_pictures: int) -> dict[str, Any]:
        config: dict[str, Any] = {
            "protocol": "glamm" if self.mode == "region" else "coco-caption",
            "mode": self.mode,
            "references": "every caption annotation of the doc's image id (COCOEvalCap imgToAnns), file order",
            "captions": "pycocoevalcap PTBTokenizer; METEOR 1.5 (-l en -norm); CIDEr-D (n=4, sigma=6) over the split",
            "caption_implementations": {"tokenizer": options.tokenizer, "meteor": options.meteor},
            "intervals": "METEOR recomputed from resampled statistics; CIDEr-D as the mean of per-doc scores "
                         "with the full split's IDF (approximate)",
            "bootstrap": {**bootstrap_config(options), "cluster": "image file (regions of one picture together)",
                          "clusters": n_pictures},
        }
        if self.mode == "region":
            config["region"] = "bbox [x, y, w, h] in pixels of the annotation whose id equals the image id (GLaMM eval/ddp.py)"
        return config


def _notes(docs: Sequence[Doc], texts: Mapping[str, str]) -> list[str]:
    notes = []
    empty = [doc.doc_id for doc in docs if not texts[doc.doc_id].strip()]
    if empty:
        notes.append(f"{len(empty)} empty prediction(s) score 0: {', '.join(empty[:5])}" + (" ..." if len(empty) > 5 else ""))
    return notes
