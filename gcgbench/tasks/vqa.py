"""The VQA-style suites of LLaVA-1.5's evaluation (`params.suite`): VQAv2, GQA, TextVQA, VizWiz, POPE, MME,
MMBench, ScienceQA-IMG, SEED-Bench, read from LLaVA's `playground/data/eval/` layout (gcgbench.data.llava_eval).

Requests are of kind "answer": the prompt is the task file's `{question}<LLaVA suffix>`, multiple-choice
options ride along in `inputs["options"]`. Scores come from gcgbench.metrics.vqa / multiple_choice / mmbench,
every metric key lower snake case (`answer_type/yes/no` -> `answer_type_yes_no`, `adversarial/f1` ->
`adversarial_f1`); fractions, except MME's scores (0-200 per subtask, perception 0-2000, cognition 0-800).
Intervals resample the suite's cluster: the image (POPE, VQA suites), the circular group (MMBench), the
image's question pair (MME).

What differs between suites is one small class each (`gcgbench.tasks.vqa_suites`). Splits whose answers an
evaluation server holds (`params.scoring: server`: VQAv2 test-dev, VizWiz test,
MMBench test) score nothing locally; `submission_files` gives the upload file exactly as LLaVA's
`scripts/convert_*_for_submission.py` writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import Doc, Prediction, Request
from gcgbench.data import llava_eval as le
from gcgbench.metrics import stats, vqa
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals
from gcgbench.tasks.vqa_suites import SUITES, Suite

FOLDER_ROLES = ("images", "benchmark")
SERVER = "server"


@dataclass(frozen=True)
class VqaTask(SpecTask):
    """One VQA-style split. Params: `suite`, optional `protocol`, `scoring: server`, POPE `categories`,
    ScienceQA `split`, SEED `data_type`. File roles as in the task files (`images`/`benchmark` are folders)."""

    request_kind = "answer"

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        return tuple(self.suite.protocols)

    @property
    def suite(self) -> Suite:
        name = self.spec.params.get("suite")
        if name not in SUITES:
            raise InputError(self.spec.source, "params.suite", f"unknown VQA suite {name!r}; known: "
                                                               f"{', '.join(sorted(SUITES))}")
        return SUITES[name]

    @property
    def on_server(self) -> bool:
        return self.spec.params.get("scoring") == SERVER or self.suite.always_on_server

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        files = [paths.file(self.spec, role) for role in self.spec.files if role not in FOLDER_ROLES]
        if "benchmark" in self.spec.files and paths.file(self.spec, "benchmark").is_dir():
            files += sorted(paths.file(self.spec, "benchmark").rglob("*.txt"))  # MME's ground truth
        return files

    def docs(self, paths: DataPaths) -> list[Doc]:
        return self.suite.docs(lambda role: paths.file(self.spec, role), self.spec.files,
                               le.prompt_suffix(self.spec.prompt), self.spec.params)

    def requests(self, doc: Doc) -> Request:
        prompt = self.spec.prompt.format(question=doc.inputs["question"])
        return Request(doc.doc_id, "answer", prompt, doc.image_path, doc.height, doc.width, doc.inputs)

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        """What scores perfectly: a human answer with full VQA credit, the label, the right letter; "" where
        only the server has the answers."""
        return Prediction(doc.doc_id, self.suite.perfect_answer(doc))

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        return le.read_vqa_predictions(path, docs, self.name, self.suite.llava_key)

    def submission_files(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> dict[str, bytes]:
        if not self.on_server:
            return {}
        return {self.upload_name(): self.suite.upload(docs, predictions)}

    def upload_name(self) -> str:
        """`<task>_upload.json`, or for MMBench `.xlsx` (`.tsv` where openpyxl is not installed)."""
        return f"{self.name}_upload{self.suite.upload_suffix()}"

    def protocol(self, options: ScoringOptions, predictions: Mapping[str, Prediction]) -> str:
        """`--protocol`, else `official` for an official VQA results file (its answers are what the server
        scores, already processed), else the task file's `params.protocol`, else `llava`."""
        from_results = bool(predictions) and all(p.extras.get("format") == le.VQA_RESULTS for p in predictions.values())
        protocol = options.protocol or ("official" if from_results else None) or self.spec.params.get("protocol") or "llava"
        allowed = self.suite.protocols
        if protocol not in allowed:
            raise InputError("--protocol", None, f"{self.suite.name} is scored under {', '.join(allowed)}, not {protocol!r}")
        return protocol

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no questions to score")
        missing = [doc.doc_id for doc in docs if doc.doc_id not in predictions]
        if missing:
            raise InputError(self.name, None, f"{len(missing)} questions have no prediction (first: {missing[0]!r})")
        suite, protocol = self.suite, self.protocol(options, predictions)
        config = {"suite": suite.name, "protocol": protocol, "prompt": self.spec.prompt,
                  "scorer": suite.upstream, "bootstrap": bootstrap_config(options), **suite.metric_config()}
        if self.on_server:
            notes = [f"answers are held by the evaluation server: upload {self.upload_name()} (gcgbench run --output "
                     f"writes it under submissions/) to get the scores"]
            if self.upload_name().endswith(".tsv"):
                notes.append("openpyxl is not installed, so the MMBench upload is the .tsv of the .xlsx LLaVA writes "
                             "(same columns); `pip install openpyxl` for the .xlsx the server takes")
            return TaskResult(self.name, self.version, {}, len(docs), {**config, "scoring": SERVER}, notes=notes)
        scored, notes = suite.scored_docs(docs)
        records = [suite.record(doc, predictions[doc.doc_id].text) for doc in scored]
        result = suite.score(records, f"{self.name} predictions", protocol)
        names = {key: metric_key(key) for key in result.metrics}
        if len(set(names.values())) != len(names):
            raise ValueError(f"{self.name}: two metrics share a snake_case key: {sorted(names.values())}")
        order = [key for key in self.spec.metrics if key in names.values()] + \
            [names[key] for key in result.metrics if names[key] not in self.spec.metrics]
        values = {names[key]: float(value) for key, value in result.metrics.items()}
        per_record = result.per_record
        clusters = stats.cluster_indices([str(key) for key in per_record.cluster_keys])

        def statistic(indices: np.ndarray) -> dict[str, float]:
            return {names[key]: value for key, value in vqa.aggregate(per_record, indices).items()}

        return TaskResult(
            task=self.name, version=self.version, metrics={key: values[key] for key in order},
            n_samples=len(scored), metric_config={**config, "headline": names[result.headline], "unit": suite.unit},
            intervals=bootstrap_intervals(clusters, statistic, order, options),
            per_sample=_per_sample(suite, scored, predictions, per_record), notes=notes,
        )


def metric_key(name: str) -> str:
    """`answer_type/yes/no` -> `answer_type_yes_no`, `OCR/score` -> `ocr_score`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _per_sample(suite: Suite, docs: Sequence[Doc], predictions: Mapping[str, Prediction],
                per_record: vqa.PerRecordScores) -> list[dict[str, Any]]:
    """One row per doc: the prediction, the score of its unit, and for pairs/groups the doc's own verdict."""
    unit_scores = dict(zip(per_record.unit_ids, per_record.scores.tolist()))
    rows = []
    for doc in docs:
        text = predictions[doc.doc_id].text
        rows.append({"doc_id": doc.doc_id, "prediction": text,
                     "score": unit_scores.get(suite.unit_of(doc)),   # None: not scored (unbalanced GQA)
                     **suite.row_extras(doc, text)})
    return rows
