"""Panoptic Narrative Grounding: segment every grounded noun phrase of a given narrative.

A doc is one narrative (`gcgbench.data.png`); the backend gets a `segment_phrases` request: the image, the
prompt and the narrative with the character span of each grounded phrase (F-LMM teacher-forces the
narrative as the answer to "Please give me a description of the image." and reads one mask per grounded
phrase, `flmm/datasets/png.py`, `configs/*/…_png.py`) and answers one Phrase per requested phrase, in order.
A phrase with no mask counts as an empty prediction; several masks of one phrase are merged (union).

Metrics (gcgbench.metrics.png, fractions): `ar` (average recall over IoU thresholds 0…0.99999, step 1e-5),
`ar_things`, `ar_stuff`, `ar_singular`, `ar_plural`, `acc_0.5`, and `pixel_acc` under the F-LMM protocol.
Protocols (`options.protocol`, default the task file's `params.protocol`, else `official`):
`official` (BCV-Uniandes/PNG `baseline/test_net.py`: plural = more than one segment, thing = the last
segment's category, grounded utterances flagged `noun: false` are not phrases) and `flmm` (F-LMM
`scripts/multiprocess_eval_png.py`: the JSON `plural` flag, plurals counted as things).

The official AR is a left Riemann sum that stops one step short of 1, so a perfect prediction
(the `oracle` backend) scores AR = 0.99999, not 1.0 — as upstream's own code scores ground truth.
Narratives with no grounded phrase are docs with nothing to score: they are counted in `notes`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import RLE, Doc, Phrase, Prediction, Request
from gcgbench.data.png import read_aas_png_predictions, read_png_docs
from gcgbench.data.predictions import read_predictions
from gcgbench.metrics import png, stats
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals, point_accuracy_metric

SHOWN_IDS = 5


@dataclass(frozen=True)
class PngTask(SpecTask):
    """A PNG split. Files: `narratives` (png_coco_*.json), `panoptic` (COCO panoptic json),
    `panoptic_masks` (folder of panoptic PNGs), `images`."""

    request_kind = "segment_phrases"

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        return tuple(png.PNG_PROTOCOLS)

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        return [paths.file(self.spec, "narratives"), paths.file(self.spec, "panoptic")]

    def docs(self, paths: DataPaths) -> list[Doc]:
        return read_png_docs(*self.annotation_files(paths), paths.file(self.spec, "panoptic_masks"),
                             paths.file(self.spec, "images"))

    def requests(self, doc: Doc) -> Request:
        inputs = {"caption": doc.inputs["caption"], "phrases": [dict(p) for p in doc.inputs["phrases"]]}
        if "utterances" in doc.inputs:          # the narrative as upstream encodes it: utterance by utterance
            inputs["utterances"] = list(doc.inputs["utterances"])
        prompt = self.spec.prompt.format(caption=inputs["caption"])
        return Request(doc.doc_id, "segment_phrases", prompt, doc.image_path, doc.height, doc.width, inputs)

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        """The narrative with every grounded phrase answered by its GT union mask."""
        phrases = tuple(Phrase(p.text, p.masks, p.start, p.end) for p in doc.phrases)
        return Prediction(doc.doc_id, doc.inputs["caption"], phrases)

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        """A gcgbench JSONL or run directory, or a&s's `--output-json` file (a JSON list of narratives)."""
        path = Path(path)
        if path.is_file() and _starts_with(path, "["):
            return read_aas_png_predictions(path, docs)
        return read_predictions(path, docs, self.name)

    def protocol(self, options: ScoringOptions) -> str:
        chosen = options.protocol or self.spec.params.get("protocol") or png.DEFAULT_PROTOCOL
        if chosen not in png.PNG_PROTOCOLS:
            raise InputError("--protocol", None, f"unknown PNG protocol {chosen!r}; choose one of {', '.join(png.PNG_PROTOCOLS)}")
        return chosen

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        protocol = self.protocol(options)
        collected = _collect_phrases(docs, predictions, protocol, self.name)
        if not collected.phrases:
            raise InputError(self.name, None, f"no grounded phrase to score in {len(docs)} narrative(s)")
        try:
            result = png.evaluate(collected.phrases, protocol)
        except (MaskSizeError, ValueError) as error:
            raise InputError(self.name, None, str(error)) from None
        metrics = {name: float(value) for name, value in result.metrics.items()}
        points = point_accuracy_metric(self.name, collected.pointed)
        clusters = stats.cluster_indices([str(phrase.image_id) for phrase in collected.phrases])
        intervals = bootstrap_intervals(
            clusters, lambda indices: png.aggregate(result.stats, indices), list(metrics), options
        )
        rows = []
        for row, text in zip(result.stats.per_sample(), collected.texts):
            doc_id = row.pop("narrative_id")
            rows.append({"doc_id": doc_id, "text": text, **row})
        config = _metric_config(result, options)
        if points:
            metrics.update(points)
            config["point_accuracy"] = ("a&s: fraction of scored phrases whose attention point (extras.points, in "
                                        "phrase order) lies in the union of the phrase's segments; no point = miss "
                                        "(aas/eval_instance_seg.py)")
        return TaskResult(
            task=self.name,
            version=self.version,
            metrics=metrics,
            n_samples=len(docs),
            metric_config=config,
            intervals=intervals,
            per_sample=rows,
            notes=collected.notes(len(docs)),
        )


@dataclass
class _Collected:
    """The phrases to score, in doc order, and what happened on the way (for notes)."""

    phrases: list[png.PngPhrase]
    texts: list[str]
    events: Counter
    unscored_docs: list[str]
    pointed: list[tuple[Prediction, int, tuple[RLE, ...]]] = field(default_factory=list)  # point accuracy items

    def notes(self, n_docs: int) -> list[str]:
        notes = [f"{len(self.phrases)} grounded phrase(s) scored from {n_docs - len(self.unscored_docs)} of {n_docs} narratives"]
        if self.unscored_docs:
            notes.append(
                f"{len(self.unscored_docs)} narrative(s) have no grounded phrase and are not scored (the official "
                f"dataloader drops them; F-LMM replaces each with a random other narrative): {_shown(self.unscored_docs)}"
            )
        messages = {
            "non_noun": "grounded utterance(s) flagged noun=false are not phrases under the official protocol "
                        "(data/pre_process.py) and are not scored",
            "missing": "requested phrase(s) have no predicted phrase (the prediction has fewer phrases): scored as empty masks",
            "no_mask": "predicted phrase(s) have no mask: scored as empty masks",
            "merged": "predicted phrase(s) have several masks: their union is scored",
            "extra": "predicted phrase(s) beyond those requested are ignored",
            "text_mismatch": "predicted phrase(s) paired by position have a text other than the requested phrase's",
            "rebuilt": "narrative caption(s) do not contain their utterances in order: the caption was rebuilt "
                       "as the utterances joined by spaces",
        }
        for key, message in messages.items():
            if self.events[key]:
                notes.append(f"{self.events[key]} {message}")
        return notes


def _collect_phrases(
    docs: Sequence[Doc], predictions: Mapping[str, Prediction], protocol: str, task_name: str
) -> _Collected:
    collected = _Collected([], [], Counter(), [])
    for doc in docs:
        prediction = predictions.get(doc.doc_id)
        if prediction is None:
            raise InputError(task_name, None, f"no prediction for doc {doc.doc_id!r}")
        collected.events["rebuilt"] += bool(doc.truth.get("caption_rebuilt"))
        if not doc.phrases:
            collected.unscored_docs.append(doc.doc_id)
            continue
        predicted = prediction.phrases
        collected.events["missing"] += max(0, len(doc.phrases) - len(predicted))
        collected.events["extra"] += max(0, len(predicted) - len(doc.phrases))
        for index, (truth, info) in enumerate(zip(doc.phrases, doc.truth["phrases"])):
            if protocol == "official" and not info["noun"]:
                collected.events["non_noun"] += 1
                continue
            mask = None
            if index < len(predicted):
                collected.events["text_mismatch"] += predicted[index].text != truth.text
                mask = _phrase_mask(predicted[index], doc, index, collected.events)
            collected.phrases.append(png.PngPhrase(
                narrative_id=doc.doc_id,
                image_id=doc.truth["image_id"],
                phrase_id=index,
                prediction=mask,
                truth=truth.masks[0],
                segment_is_thing=tuple(bool(flag) for flag in info["segment_is_thing"]),
                plural_flag=bool(info["plural"]),
            ))
            collected.texts.append(truth.text)
            collected.pointed.append((prediction, index, (truth.masks[0],)))
    return collected


def _phrase_mask(phrase: Phrase, doc: Doc, index: int, events: Counter) -> RLE | None:
    """The phrase's one mask, the union of several, or None when it has none."""
    if not phrase.masks:
        events["no_mask"] += 1
        return None
    for mask in phrase.masks:
        if mask.size != (doc.height, doc.width):
            raise InputError(
                f"prediction for doc {doc.doc_id!r}", f"phrases[{index}]",
                f"RLE size {list(mask.size)} != image size {[doc.height, doc.width]} (height, width)",
            )
    if len(phrase.masks) == 1:
        return phrase.masks[0]
    from pycocotools import mask as mask_utils

    events["merged"] += 1
    merged = mask_utils.merge([mask.to_coco() for mask in phrase.masks], intersect=0)
    return RLE(doc.height, doc.width, merged["counts"].decode("ascii"))


def _metric_config(result: png.PngResult, options: ScoringOptions) -> dict[str, Any]:
    official = result.protocol == "official"
    return {
        **result.metric_config(),
        "iou": "I / U in float32, 0/0 = NaN (a miss)" if official else "I / (U + 1e-12) in float32",
        "plural": "more than one GT segment" if official else "JSON 'plural' flag",
        "thing": "isthing of the last segment's category" if official else "plural, or isthing of the single segment",
        "non_noun_grounded_phrases": "not scored" if official else "scored",
        "mask_resolution": "full image resolution, binary masks",
        "phrase_masks": "union of a phrase's predicted masks; no mask = empty prediction",
        "unscored_narratives": "narratives with no grounded phrase contribute nothing",
        "bootstrap": bootstrap_config(options),
    }


def _starts_with(path: Path, character: str) -> bool:
    """Whether the file's first non-blank character is `character` (a JSON list vs JSONL objects)."""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] == character.encode()


def _shown(ids: Sequence[str]) -> str:
    return ", ".join(ids[:SHOWN_IDS]) + (" ..." if len(ids) > SHOWN_IDS else "")
