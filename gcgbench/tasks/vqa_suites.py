"""One small class per VQA-style suite of LLaVA-1.5's evaluation: how its docs are read, what scores perfectly,
which upstream scorer it reproduces, what one bootstrap unit is, and (for server-scored splits) the upload.

`VqaTask` (gcgbench.tasks.vqa) holds what every suite shares; `SUITES[name]` is the suite a task file's
`params.suite` names. Readers live in gcgbench.data.llava_eval / llava_eval_suites, scorers in
gcgbench.metrics.vqa / multiple_choice / mmbench.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction
from gcgbench.data import llava_eval as le
from gcgbench.data import llava_eval_suites as les
from gcgbench.data import llava_uploads as uploads
from gcgbench.metrics import mmbench, vqa
from gcgbench.metrics import multiple_choice as mc
from gcgbench.metrics.vqa_normalize import evalai_normalize, vqa_accuracy, vqav2_question_score

FileOf = Callable[[str], Path]


class Suite:
    """What differs between suites. `scorer(records, source=..., **keywords)` is the upstream metric;
    `unit` is what one bootstrap resample draws; `protocols` the scoring protocols offered (first = default)."""

    name: ClassVar[str]
    unit: ClassVar[str] = "question, clustered by image"
    upstream: ClassVar[str] = "evaluation server"
    protocols: ClassVar[tuple[str, ...]] = ("llava",)
    always_on_server: ClassVar[bool] = False      # no local ground truth in the LLaVA layout
    llava_key: ClassVar[Callable[[dict], str] | None] = None   # how LLaVA's answers file names a question

    def docs(self, file: FileOf, files: Mapping[str, str], suffix: str, params: Mapping[str, Any]) -> list[Doc]:
        raise NotImplementedError

    def record(self, doc: Doc, text: str) -> Any:
        raise NotImplementedError

    def score(self, records: Sequence[Any], source: str, protocol: str) -> vqa.SuiteResult:
        raise NotImplementedError

    def perfect_answer(self, doc: Doc) -> str:
        return doc.truth.get("answer") or ""

    def unit_of(self, doc: Doc) -> Any:
        return doc.doc_id

    def row_extras(self, doc: Doc, text: str) -> dict[str, Any]:
        return {}

    def scored_docs(self, docs: Sequence[Doc]) -> tuple[list[Doc], list[str]]:
        return list(docs), []

    def metric_config(self) -> dict[str, Any]:
        return {}

    def upload(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> bytes:
        raise InputError(self.name, None, "this suite has no evaluation-server upload")

    def upload_suffix(self) -> str:
        return ".json"


def _full_credit(answers: Sequence[str], preferred: str, score: Callable[[str, Sequence[str]], float]) -> str:
    """The preferred answer, else the most frequent human answer, that scores 1.0 (else the best-scoring)."""
    candidates = ([preferred] if preferred else []) + [a for a, _ in Counter(answers).most_common()]
    return max(candidates, key=lambda candidate: score(candidate, answers))


class VqaV2(Suite):
    name = "vqav2"
    upstream = ("VQAv2 vqaEval.py accuracy (leave-one-out over 10 humans) on the EvalAI-normalised prediction "
                "(LLaVA convert_vqav2_for_submission.py); per answer type and question type")
    protocols = ("llava", "official", "lmms_eval")

    def docs(self, file, files, suffix, params):
        if "annotations" in files:
            return le.read_vqav2_val(file("questions"), file("annotations"), file("images"))
        extra = {"upload_questions": str(file("test_questions"))} if "test_questions" in files else {}
        return le.read_llava_questions(file("questions"), file("images"), suffix, "LLaVA vqav2 question file", extra)

    def record(self, doc, text):
        truth = doc.truth
        return vqa.VQARecord(doc.doc_id, truth["image_id"], text, tuple(truth["answers"]), truth["answer_type"],
                             truth["question_type"])

    def score(self, records, source, protocol):
        return vqa.score_vqav2(records, source=source, protocol=protocol)

    def perfect_answer(self, doc):
        truth = doc.truth
        if "answers" not in truth:
            return super().perfect_answer(doc)
        return _full_credit(truth["answers"], truth["multiple_choice_answer"],
                            lambda c, gt: vqav2_question_score(c, gt, "llava"))

    def upload(self, docs, predictions):
        return uploads.vqav2_upload(docs, predictions)


class TextVqa(Suite):
    name = "textvqa"
    upstream = "LLaVA m4c_evaluator.py TextVQAAccuracyEvaluator (EvalAI-normalised, 10 answers)"
    llava_key = staticmethod(lambda row: le.textvqa_key(row["question_id"], row["prompt"]))

    def docs(self, file, files, suffix, params):
        return le.read_textvqa(file("questions"), file("annotations"), file("images"), suffix)

    def record(self, doc, text):
        return vqa.VQARecord(doc.doc_id, doc.truth["image_id"], text, tuple(doc.truth["answers"]))

    def score(self, records, source, protocol):
        return vqa.score_textvqa(records, source=source)

    def perfect_answer(self, doc):
        answers = doc.truth["answers"]
        return _full_credit(answers, "", lambda c, gt: vqa_accuracy(evalai_normalize(c), [evalai_normalize(a) for a in gt]))


class Gqa(Suite):
    name = "gqa"
    unit = "balanced question, clustered by image"
    upstream = "GQA eval.py exact match after LLaVA convert_gqa_for_eval.py (rstrip('.').lower()), balanced questions"

    def docs(self, file, files, suffix, params):
        return le.read_gqa(file("questions"), file("annotations"), file("images"), suffix)

    def record(self, doc, text):
        truth = doc.truth
        return vqa.GQARecord(doc.doc_id, truth["image_id"], text, truth["answer"], truth["structural"],
                             truth["semantic"], truth["is_balanced"])

    def score(self, records, source, protocol):
        return vqa.score_gqa(records, source=source)


class VizWiz(Suite):
    """LLaVA evaluates the VizWiz test split only, whose answers the EvalAI server holds."""

    name = "vizwiz"
    protocols = ("llava", "lmms_eval")
    always_on_server = True

    def docs(self, file, files, suffix, params):
        extra = {"upload_questions": str(file("test_questions"))} if "test_questions" in files else {}
        return le.read_llava_questions(file("questions"), file("images"), suffix, "LLaVA vizwiz question file", extra)

    def upload(self, docs, predictions):
        return uploads.vizwiz_upload(docs, predictions)


class Pope(Suite):
    name = "pope"
    upstream = "LLaVA eval_pope.py per category (yes positive); bare metrics average the categories"

    def docs(self, file, files, suffix, params):
        labels = {category: file(f"labels_{category}") for category in params.get("categories", ())}
        return le.read_pope(file("questions"), labels, file("images"), suffix)

    def record(self, doc, text):
        truth = doc.truth
        return mc.POPERecord(doc.doc_id, truth["image_id"], truth["category"], text, truth["label"])

    def score(self, records, source, protocol):
        return mc.score_pope(records, source=source)

    def perfect_answer(self, doc):
        return doc.truth["label"]


class Mme(Suite):
    name = "mme"
    unit = "image question pair"
    upstream = "MME eval_tool/calculation.py: per subtask acc + acc+ (×100 each), perception / cognition sums"
    llava_key = staticmethod(lambda row: les.mme_key(row["question_id"], row["prompt"]))
    SCALE = ("fractions: <subtask>_acc, <subtask>_acc_plus; MME points: <subtask>_score (0-200), "
             "perception (0-2000), cognition (0-800)")

    def docs(self, file, files, suffix, params):
        return les.read_mme(file("questions"), file("benchmark"), suffix)

    def record(self, doc, text):
        truth = doc.truth
        return mc.MMERecord(doc.doc_id, truth["image_id"], truth["subtask"], text, truth["answer"])

    def score(self, records, source, protocol):
        return mc.score_mme(records, source=source)

    def unit_of(self, doc):
        return (doc.truth["subtask"], doc.truth["image_id"])

    def row_extras(self, doc, text):
        return {"correct": mc.parse_mme_answer(text.strip()) == doc.truth["answer"].lower()}

    def scored_docs(self, docs):
        """MME scores image pairs; a pair cut in half by --limit is left out, and a note says so."""
        counts = Counter(doc.truth["image_id"] for doc in docs)
        kept = [doc for doc in docs if counts[doc.truth["image_id"]] == 2]
        if len(kept) == len(docs):
            return kept, []
        if not kept:
            raise InputError("--limit", None, "MME scores question pairs; no image has both of its questions in this subset")
        return kept, [f"{len(docs) - len(kept)} question(s) whose image pair is incomplete in this subset were not scored"]

    def metric_config(self):
        return {"scale": self.SCALE, "points_metrics": "perception, cognition, *_score"}  # printed as they are


class MmBench(Suite):
    name = "mmbench"
    unit = "circular group"
    upstream = "VLMEvalKit circular evaluation, exact matching (no GPT judge)"

    def docs(self, file, files, suffix, params):
        return les.read_mmbench(file("questions"))

    def record(self, doc, text):
        truth = doc.truth
        if truth["answer"] is None:
            raise InputError(doc.doc_id, None, "MMBench row without an answer: a test split is scored by the server")
        return mmbench.MMBenchRecord(truth["index"], text, truth["answer"], doc.inputs["options"], truth["category"],
                                     truth["l2_category"], truth["question"], truth["split"])

    def score(self, records, source, protocol):
        return mmbench.score_mmbench(records, source=source)

    def unit_of(self, doc):
        return doc.truth["index"] % mmbench.CIRCULAR_OFFSET

    def row_extras(self, doc, text):
        choice = mmbench.mmbench_extract_choice(text.strip(), doc.inputs["options"])
        return {"choice": choice, "correct": choice == doc.truth["answer"]}

    def upload(self, docs, predictions):
        return uploads.mmbench_upload(docs, predictions)

    def upload_suffix(self):
        """`.xlsx` as LLaVA writes it, `.tsv` (same columns) where openpyxl is not installed."""
        return ".xlsx" if uploads.can_write_xlsx() else ".tsv"


class ScienceQa(Suite):
    name = "scienceqa"
    unit = "problem"
    upstream = "LLaVA eval_science_qa.py answer parsing; IMG subset"

    def docs(self, file, files, suffix, params):
        return les.read_scienceqa(file("questions"), file("problems"), file("splits"), file("images"), suffix,
                                  params.get("split", "test"))

    def record(self, doc, text):
        truth = doc.truth
        return mc.ScienceQARecord(doc.doc_id, text, truth["answer"], truth["num_choices"], truth["has_image"],
                                  truth["image_id"])

    def score(self, records, source, protocol):
        return mc.score_scienceqa(records, source=source)

    def perfect_answer(self, doc):
        return les.SCIENCEQA_LETTERS[doc.truth["answer"]]


class Seed(Suite):
    name = "seed"
    upstream = "LLaVA convert_seed_for_submission.py exact letter match"

    def docs(self, file, files, suffix, params):
        return les.read_seed(file("questions"), file("annotations"), file("images"), suffix,
                             params.get("data_type", "image"))

    def record(self, doc, text):
        truth = doc.truth
        return mc.SEEDRecord(doc.doc_id, text, truth["answer"], truth["question_type"], truth["data_type"],
                             truth["image_id"])

    def score(self, records, source, protocol):
        return mc.score_seed(records, source=source)


SUITES: dict[str, Suite] = {suite.name: suite for suite in (VqaV2(), TextVqa(), Gqa(), VizWiz(), Pope(), Mme(), MmBench(),
                                                             ScienceQa(), Seed())}
