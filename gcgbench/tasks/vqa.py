"""The VQA-style suites of LLaVA-1.5's evaluation (`params.suite`): VQAv2, GQA, TextVQA, VizWiz, POPE, MME,
MMBench, ScienceQA-IMG, SEED-Bench, read from LLaVA's `playground/data/eval/` layout (gcgbench.data.llava_eval).

Requests are of kind "answer": the prompt is the task file's `{question}<LLaVA suffix>`, multiple-choice
options ride along in `inputs["options"]`. Scores come from gcgbench.metrics.vqa / multiple_choice / mmbench,
every metric key lower snake case (`answer_type/yes/no` -> `answer_type_yes_no`, `adversarial/f1` ->
`adversarial_f1`); fractions, except MME's scores (0-200 per subtask, perception 0-2000, cognition 0-800).
Intervals resample the suite's cluster: the image (POPE, VQA suites), the circular group (MMBench), the
image's question pair (MME).

Splits whose answers an evaluation server holds (`params.scoring: server`: VQAv2 test-dev, VizWiz test,
MMBench test) score nothing locally; `submission_files` gives the upload file exactly as LLaVA's
`scripts/convert_*_for_submission.py` writes it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskResult
from gcgbench.api.types import Doc, Prediction, Request
from gcgbench.data import llava_eval as le
from gcgbench.data import llava_eval_suites as les
from gcgbench.metrics import mmbench, stats, vqa
from gcgbench.metrics import multiple_choice as mc
from gcgbench.metrics.vqa_normalize import (
    evalai_normalize,
    vqa_accuracy,
    vqav2_question_score,
)
from gcgbench.tasks.base import SpecTask
from gcgbench.tasks.scoring import bootstrap_config, bootstrap_intervals

FOLDER_ROLES = ("images", "benchmark")
SERVER = "server"
PROTOCOLS = {"vqav2": ("llava", "official", "lmms_eval"), "vizwiz": ("llava", "lmms_eval")}
LLAVA_KEYS: dict[str, Callable[[dict], str]] = {
    "textvqa": lambda row: le.textvqa_key(row["question_id"], row["prompt"]),
    "mme": lambda row: les.mme_key(row["question_id"], row["prompt"]),
}
SCORERS = {  # suite -> (metric function, what one resampled unit is)
    "vqav2": (vqa.score_vqav2, "question, clustered by image"),
    "textvqa": (vqa.score_textvqa, "question, clustered by image"),
    "gqa": (vqa.score_gqa, "balanced question, clustered by image"),
    "pope": (mc.score_pope, "question, clustered by image"),
    "mme": (mc.score_mme, "image question pair"),
    "mmbench": (mmbench.score_mmbench, "circular group"),
    "scienceqa": (mc.score_scienceqa, "problem"),
    "seed": (mc.score_seed, "question, clustered by image"),
}
UPSTREAM = {
    "vqav2": "VQAv2 vqaEval.py accuracy (leave-one-out over 10 humans) on the EvalAI-normalised prediction "
             "(LLaVA convert_vqav2_for_submission.py); per answer type and question type",
    "textvqa": "LLaVA m4c_evaluator.py TextVQAAccuracyEvaluator (EvalAI-normalised, 10 answers)",
    "gqa": "GQA eval.py exact match after LLaVA convert_gqa_for_eval.py (rstrip('.').lower()), balanced questions",
    "pope": "LLaVA eval_pope.py per category (yes positive); bare metrics average the categories",
    "mme": "MME eval_tool/calculation.py: per subtask acc + acc+ (×100 each), perception / cognition sums",
    "mmbench": "VLMEvalKit circular evaluation, exact matching (no GPT judge)",
    "scienceqa": "LLaVA eval_science_qa.py answer parsing; IMG subset",
    "seed": "LLaVA convert_seed_for_submission.py exact letter match",
}

MME_SCALE = ("fractions: <subtask>_acc, <subtask>_acc_plus; MME points: <subtask>_score (0-200), "
             "perception (0-2000), cognition (0-800)")


@dataclass(frozen=True)
class VqaTask(SpecTask):
    """One VQA-style split. Params: `suite`, optional `protocol`, `scoring: server`, POPE `categories`,
    ScienceQA `split`, SEED `data_type`. File roles as in the task files (`images`/`benchmark` are folders)."""

    request_kind = "answer"

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        return tuple(PROTOCOLS.get(self.suite, ("llava",)))

    @property
    def suite(self) -> str:
        suite = self.spec.params.get("suite")
        if suite not in (*SCORERS, "vizwiz"):
            raise InputError(self.spec.source, "params.suite", f"unknown VQA suite {suite!r}; known: "
                                                               f"{', '.join(sorted((*SCORERS, 'vizwiz')))}")
        return suite

    @property
    def on_server(self) -> bool:
        return self.spec.params.get("scoring") == SERVER or self.suite == "vizwiz"

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        files = [paths.file(self.spec, role) for role in self.spec.files if role not in FOLDER_ROLES]
        if "benchmark" in self.spec.files and paths.file(self.spec, "benchmark").is_dir():
            files += sorted(paths.file(self.spec, "benchmark").rglob("*.txt"))  # MME's ground truth
        return files

    def docs(self, paths: DataPaths) -> list[Doc]:
        def file(role: str) -> Path:
            return paths.file(self.spec, role)

        suffix, suite, params = le.prompt_suffix(self.spec.prompt), self.suite, self.spec.params
        if suite == "vqav2" and "annotations" in self.spec.files:
            return le.read_vqav2_val(file("questions"), file("annotations"), file("images"))
        if suite in ("vqav2", "vizwiz"):
            extra = {"upload_questions": str(file("test_questions"))} if "test_questions" in self.spec.files else {}
            return le.read_llava_questions(file("questions"), file("images"), suffix, f"LLaVA {suite} question file", extra)
        if suite == "gqa":
            return le.read_gqa(file("questions"), file("annotations"), file("images"), suffix)
        if suite == "textvqa":
            return le.read_textvqa(file("questions"), file("annotations"), file("images"), suffix)
        if suite == "pope":
            labels = {category: file(f"labels_{category}") for category in params.get("categories", ())}
            return le.read_pope(file("questions"), labels, file("images"), suffix)
        if suite == "mme":
            return les.read_mme(file("questions"), file("benchmark"), suffix)
        if suite == "mmbench":
            return les.read_mmbench(file("questions"))
        if suite == "scienceqa":
            return les.read_scienceqa(file("questions"), file("problems"), file("splits"), file("images"), suffix,
                                      params.get("split", "test"))
        return les.read_seed(file("questions"), file("annotations"), file("images"), suffix,
                             params.get("data_type", "image"))

    def requests(self, doc: Doc) -> Request:
        prompt = self.spec.prompt.format(question=doc.inputs["question"])
        return Request(doc.doc_id, "answer", prompt, doc.image_path, doc.height, doc.width, doc.inputs)

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        """What scores perfectly: a human answer with full VQA credit, the label, the right letter; "" where
        only the server has the answers."""
        truth, suite = doc.truth, self.suite
        if suite == "vqav2" and "answers" in truth:
            answer = _full_credit(truth["answers"], truth["multiple_choice_answer"],
                                  lambda c, gt: vqav2_question_score(c, gt, "llava"))
        elif suite == "textvqa":
            answer = _full_credit(truth["answers"], "", lambda c, gt: vqa_accuracy(
                evalai_normalize(c), [evalai_normalize(a) for a in gt]))
        elif suite == "pope":
            answer = truth["label"]
        elif suite == "scienceqa":
            answer = les.SCIENCEQA_LETTERS[truth["answer"]]
        else:
            answer = truth.get("answer") or ""
        return Prediction(doc.doc_id, answer)

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        return le.read_vqa_predictions(path, docs, self.name, LLAVA_KEYS.get(self.suite))

    def submission_files(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> dict[str, bytes]:
        if not self.on_server:
            return {}
        if self.suite == "vqav2":
            return {self.upload_name(): le.vqav2_upload(docs, predictions)}
        if self.suite == "vizwiz":
            return {self.upload_name(): le.vizwiz_upload(docs, predictions)}
        return {self.upload_name(): les.mmbench_upload(docs, predictions)}

    def upload_name(self) -> str:
        """`<task>_upload.json`, or for MMBench `.xlsx` (`.tsv` where openpyxl is not installed)."""
        if self.suite != "mmbench":
            return f"{self.name}_upload.json"
        return f"{self.name}_upload{'.xlsx' if les.can_write_xlsx() else '.tsv'}"

    def protocol(self, options: ScoringOptions, predictions: Mapping[str, Prediction]) -> str:
        """`--protocol`, else `official` for an official VQA results file (its answers are what the server
        scores, already processed), else the task file's `params.protocol`, else `llava`."""
        from_results = bool(predictions) and all(p.extras.get("format") == le.VQA_RESULTS for p in predictions.values())
        protocol = options.protocol or ("official" if from_results else None) or self.spec.params.get("protocol") or "llava"
        allowed = PROTOCOLS.get(self.suite, ("llava",))
        if protocol not in allowed:
            raise InputError("--protocol", None, f"{self.suite} is scored under {', '.join(allowed)}, not {protocol!r}")
        return protocol

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        if not docs:
            raise InputError(self.name, None, "the split has no questions to score")
        missing = [doc.doc_id for doc in docs if doc.doc_id not in predictions]
        if missing:
            raise InputError(self.name, None, f"{len(missing)} questions have no prediction (first: {missing[0]!r})")
        protocol = self.protocol(options, predictions)
        config = {"suite": self.suite, "protocol": protocol, "prompt": self.spec.prompt,
                  "scorer": UPSTREAM.get(self.suite, "evaluation server"), "bootstrap": bootstrap_config(options)}
        if self.suite == "mme":
            config["scale"] = MME_SCALE
            config["points_metrics"] = "perception, cognition, *_score"  # printed as they are, not ×100
        if self.on_server:
            notes = [f"answers are held by the evaluation server: upload {self.upload_name()} (gcgbench run --output "
                     f"writes it under submissions/) to get the scores"]
            if self.upload_name().endswith(".tsv"):
                notes.append("openpyxl is not installed, so the MMBench upload is the .tsv of the .xlsx LLaVA writes "
                             "(same columns); `pip install openpyxl` for the .xlsx the server takes")
            return TaskResult(self.name, self.version, {}, len(docs), {**config, "scoring": SERVER}, notes=notes)
        scored, notes = _complete_mme_pairs(docs) if self.suite == "mme" else (list(docs), [])
        scorer, unit = SCORERS[self.suite]
        records = [_record(self.suite, doc, predictions[doc.doc_id].text) for doc in scored]
        keywords = {"protocol": protocol} if self.suite == "vqav2" else {}
        result = scorer(records, source=f"{self.name} predictions", **keywords)
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
            n_samples=len(scored), metric_config={**config, "headline": names[result.headline], "unit": unit},
            intervals=bootstrap_intervals(clusters, statistic, order, options),
            per_sample=_per_sample(self.suite, scored, predictions, per_record), notes=notes,
        )


def metric_key(name: str) -> str:
    """`answer_type/yes/no` -> `answer_type_yes_no`, `OCR/score` -> `ocr_score`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _full_credit(answers: Sequence[str], preferred: str, score: Callable[[str, Sequence[str]], float]) -> str:
    """The preferred answer, else the most frequent human answer, that scores 1.0 (else the best-scoring)."""
    candidates = ([preferred] if preferred else []) + [a for a, _ in Counter(answers).most_common()]
    return max(candidates, key=lambda candidate: score(candidate, answers))


def _record(suite: str, doc: Doc, text: str) -> Any:
    truth = doc.truth
    if suite == "vqav2":
        return vqa.VQARecord(doc.doc_id, truth["image_id"], text, tuple(truth["answers"]), truth["answer_type"],
                             truth["question_type"])
    if suite == "textvqa":
        return vqa.VQARecord(doc.doc_id, truth["image_id"], text, tuple(truth["answers"]))
    if suite == "gqa":
        return vqa.GQARecord(doc.doc_id, truth["image_id"], text, truth["answer"], truth["structural"],
                             truth["semantic"], truth["is_balanced"])
    if suite == "pope":
        return mc.POPERecord(doc.doc_id, truth["image_id"], truth["category"], text, truth["label"])
    if suite == "mme":
        return mc.MMERecord(doc.doc_id, truth["image_id"], truth["subtask"], text, truth["answer"])
    if suite == "mmbench":
        if truth["answer"] is None:
            raise InputError(doc.doc_id, None, "MMBench row without an answer: a test split is scored by the server")
        return mmbench.MMBenchRecord(truth["index"], text, truth["answer"], doc.inputs["options"], truth["category"],
                                     truth["l2_category"], truth["question"], truth["split"])
    if suite == "scienceqa":
        return mc.ScienceQARecord(doc.doc_id, text, truth["answer"], truth["num_choices"], truth["has_image"],
                                  truth["image_id"])
    return mc.SEEDRecord(doc.doc_id, text, truth["answer"], truth["question_type"], truth["data_type"],
                         truth["image_id"])


def _unit_of(suite: str, doc: Doc) -> Any:
    if suite == "mme":
        return (doc.truth["subtask"], doc.truth["image_id"])
    if suite == "mmbench":
        return doc.truth["index"] % mmbench.CIRCULAR_OFFSET
    return doc.doc_id


def _per_sample(suite: str, docs: Sequence[Doc], predictions: Mapping[str, Prediction],
                per_record: vqa.PerRecordScores) -> list[dict[str, Any]]:
    """One row per doc: the prediction, the score of its unit, and for pairs/groups the doc's own verdict."""
    unit_scores = dict(zip(per_record.unit_ids, per_record.scores.tolist()))
    rows = []
    for doc in docs:
        text = predictions[doc.doc_id].text
        row: dict[str, Any] = {"doc_id": doc.doc_id, "prediction": text,
                               "score": unit_scores.get(_unit_of(suite, doc))}  # None: not scored (unbalanced GQA)
        if suite == "mme":
            row["correct"] = mc.parse_mme_answer(text.strip()) == doc.truth["answer"].lower()
        elif suite == "mmbench":
            row["choice"] = mmbench.mmbench_extract_choice(text.strip(), doc.inputs["options"])
            row["correct"] = row["choice"] == doc.truth["answer"]
        rows.append(row)
    return rows


def _complete_mme_pairs(docs: Sequence[Doc]) -> tuple[list[Doc], list[str]]:
    """MME scores image pairs; a pair cut in half by --limit is left out, and a note says so."""
    counts = Counter(doc.truth["image_id"] for doc in docs)
    kept = [doc for doc in docs if counts[doc.truth["image_id"]] == 2]
    if len(kept) == len(docs):
        return kept, []
    if not kept:
        raise InputError("--limit", None, "MME scores question pairs; no image has both of its questions in this subset")
    return kept, [f"{len(docs) - len(kept)} question(s) whose image pair is incomplete in this subset were not scored"]
