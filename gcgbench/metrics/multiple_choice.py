"""Closed-answer suites: POPE, MME (yes/no), ScienceQA-IMG, SEED-Bench (multiple choice); MMBench is in
:mod:`gcgbench.metrics.mmbench`.

Same conventions as :mod:`gcgbench.metrics.vqa` (``SuiteResult``, ``PerRecordScores``, ``aggregate``,
``InputError`` for bad records, ``ValueError`` for no records, NaN for groups empty in a resample).
Metrics are fractions in [0, 1], except MME scores, which are on MME's own 0-200-per-subtask scale.

LLaVA strips every decoded answer (``outputs = ...batch_decode(...)[0].strip()`` in
``llava/eval/model_vqa_loader.py``, ``model_vqa_mmbench.py``, ``model_vqa_science.py``) before its eval
scripts parse it, so the scorers here apply ``str.strip()`` first; the ``parse_*`` functions themselves are
faithful to the eval scripts and do not strip.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Literal, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.metrics.vqa import (
    Grouping,
    PerRecordScores,
    SuiteResult,
    accuracy_and_group_means,
    finish,
    group_means,
    require_records,
    require_text,
    require_unique,
)

# ----------------------------------------------------------------------------------------------------
# POPE
# ----------------------------------------------------------------------------------------------------

POPE_METRICS = ("accuracy", "precision", "recall", "f1", "yes_ratio")


@dataclass(frozen=True)
class POPERecord:
    """One POPE question; ``category`` is the split file (``coco_pope_{adversarial,popular,random}``)."""

    question_id: Hashable
    image: str
    category: str
    prediction: str
    label: str  # 'yes' | 'no'


def parse_pope_answer(text: str) -> Literal["yes", "no"]:
    """LLaVA ``llava/eval/eval_pope.py``: keep the text before the first ``.``, delete ``,``, split on single
    spaces; ``no`` if a word is exactly ``No``, ``no`` or ``not``, else **yes** (so ``NO``, ``Not``, ``no!``
    and the empty string all count as yes)."""
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def _ratio(numerator: int, denominator: int) -> float:
    # eval_pope.py divides without guards; 0/0 -> 0.0 here, like sklearn's zero_division and lmms-eval.
    return numerator / denominator if denominator else 0.0


def _aggregate_pope(per_record: PerRecordScores, indices: np.ndarray) -> dict[str, float]:
    predicted_yes = per_record.values["predicted_yes"][indices]
    label_yes = per_record.values["label_yes"][indices]
    grouping = per_record.groupings["category"]
    codes = grouping.codes[indices]
    metrics: dict[str, float] = {}
    for code, category in enumerate(grouping.names):
        mask = codes == code
        count = int(mask.sum())
        if count == 0:
            metrics |= {f"{category}/{name}": float("nan") for name in POPE_METRICS}
            continue
        yes, positive = predicted_yes[mask], label_yes[mask]
        true_pos = int(np.sum(yes & positive))
        true_neg = int(np.sum(~yes & ~positive))
        precision = _ratio(true_pos, int(yes.sum()))
        recall = _ratio(true_pos, int(positive.sum()))
        metrics[f"{category}/accuracy"] = (true_pos + true_neg) / count
        metrics[f"{category}/precision"] = precision
        metrics[f"{category}/recall"] = recall
        metrics[f"{category}/f1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics[f"{category}/yes_ratio"] = int(yes.sum()) / count
    for name in POPE_METRICS:
        metrics[name] = float(np.mean([metrics[f"{category}/{name}"] for category in grouping.names]))
    return metrics


def score_pope(records: Sequence[POPERecord], *, source: object) -> SuiteResult:
    """POPE as LLaVA ``eval_pope.py``, per category, with "yes" as the positive class:
    accuracy = (TP+TN)/N, precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R),
    yes_ratio = #predicted yes / N (from predictions, not from labels as lmms-eval does).
    Keys ``<category>/<metric>``; the bare ``<metric>`` is the unweighted mean over categories, and the
    headline is ``f1``. Cluster key: image (the same image appears in all three categories)."""
    require_records(records, "POPE")
    require_unique(source, (record.question_id for record in records), "question_id")
    predicted_yes, label_yes = [], []
    for record in records:
        where = f"question_id={record.question_id!r}"
        if record.label not in ("yes", "no"):
            raise InputError(source, where, f"label must be 'yes' or 'no', got {record.label!r}")
        if not isinstance(record.category, str) or not record.category:
            raise InputError(source, where, "category must be a non-empty string")
        prediction = require_text(source, where, "prediction", record.prediction)
        predicted_yes.append(parse_pope_answer(prediction.strip()) == "yes")
        label_yes.append(record.label == "yes")
    predicted = np.asarray(predicted_yes, dtype=bool)
    labels = np.asarray(label_yes, dtype=bool)
    per_record = PerRecordScores(
        suite="pope",
        unit_ids=tuple(record.question_id for record in records),
        cluster_keys=tuple(record.image for record in records),
        scores=(predicted == labels).astype(np.float64),
        aggregator=_aggregate_pope,
        groupings={"category": Grouping.from_labels([record.category for record in records])},
        values={"predicted_yes": predicted, "label_yes": labels},
    )
    return finish("pope", "f1", per_record)


# ----------------------------------------------------------------------------------------------------
# MME
# ----------------------------------------------------------------------------------------------------

# eval_type_dict of MME's eval_tool/calculation.py (also lmms-eval tasks/mme/utils.py).
MME_PERCEPTION = (
    "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR",
)
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


@dataclass(frozen=True)
class MMERecord:
    """One MME question. Every image of a subtask has exactly two questions (one 'Yes', one 'No')."""

    question_id: Hashable
    image: str
    subtask: str
    prediction: str
    answer: str  # 'Yes' | 'No' (case-insensitive)


def parse_mme_answer(text: str) -> Literal["yes", "no", "other"]:
    """MME ``eval_tool/calculation.py`` ``parse_pred_ans`` on the lowercased text: exactly ``yes``/``no``,
    else ``yes`` if ``yes`` occurs in the first 4 characters, else ``no`` if ``no`` does, else ``other``
    (so ``Not sure`` -> no, ``None`` -> no, ``The answer is yes`` -> other, which always counts wrong)."""
    lowered = text.lower()
    if lowered in ("yes", "no"):
        return lowered  # type: ignore[return-value]
    prefix = lowered[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def _aggregate_mme(per_record: PerRecordScores, indices: np.ndarray) -> dict[str, float]:
    grouping = per_record.groupings["subtask"]
    accuracy = group_means("", grouping, per_record.scores, indices)
    accuracy_plus = group_means("", grouping, per_record.values["both_correct"], indices)
    metrics: dict[str, float] = {}
    for subtask in grouping.names:
        acc, acc_plus = accuracy[f"/{subtask}"], accuracy_plus[f"/{subtask}"]
        metrics[f"{subtask}/acc"] = acc
        metrics[f"{subtask}/acc_plus"] = acc_plus
        metrics[f"{subtask}/score"] = 100.0 * acc + 100.0 * acc_plus
    for total_name, members in (("perception", MME_PERCEPTION), ("cognition", MME_COGNITION)):
        present = [metrics[f"{subtask}/score"] for subtask in members if subtask in grouping.names]
        metrics[total_name] = float(sum(present)) if present else float("nan")
    return metrics


def score_mme(records: Sequence[MMERecord], *, source: object) -> SuiteResult:
    """MME as ``eval_tool/calculation.py``, per subtask: acc = correct questions / questions ('other'
    is wrong), acc+ = images with both questions right / images, score = 100·acc + 100·acc+ (max 200).
    ``perception`` (headline, max 2000) and ``cognition`` (max 800) sum the scores of the official
    subtasks present in the records (NaN if none). The unit (and cluster) is an image pair, grouped by
    (subtask, image) instead of upstream's "two consecutive lines"; a pair that is not exactly two
    questions is an InputError. Per-unit ``scores`` is the pair's accuracy (0, 0.5, 1)."""
    require_records(records, "MME")
    require_unique(source, (record.question_id for record in records), "question_id")
    known = set(MME_PERCEPTION) | set(MME_COGNITION)
    pairs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for record in records:
        where = f"question_id={record.question_id!r}"
        if record.subtask not in known:
            raise InputError(source, where, f"unknown MME subtask {record.subtask!r}")
        answer = require_text(source, where, "answer", record.answer).lower()
        if answer not in ("yes", "no"):
            raise InputError(source, where, f"answer must be 'Yes' or 'No', got {record.answer!r}")
        prediction = require_text(source, where, "prediction", record.prediction)
        pairs[(record.subtask, record.image)].append(float(parse_mme_answer(prediction.strip()) == answer))
    for (subtask, image), correct in pairs.items():
        if len(correct) != 2:
            where = f"subtask={subtask!r} image={image!r}"
            raise InputError(source, where, f"expected 2 questions, got {len(correct)}")
    keys = tuple(pairs)
    correct_per_pair = np.asarray([sum(pairs[key]) for key in keys], dtype=np.float64)
    per_record = PerRecordScores(
        suite="mme",
        unit_ids=keys,
        cluster_keys=keys,
        scores=correct_per_pair / 2.0,
        aggregator=_aggregate_mme,
        groupings={"subtask": Grouping.from_labels([subtask for subtask, _ in keys])},
        values={"both_correct": (correct_per_pair == 2.0).astype(np.float64)},
    )
    return finish("mme", "perception", per_record)


# ----------------------------------------------------------------------------------------------------
# ScienceQA-IMG
# ----------------------------------------------------------------------------------------------------

SCIENCEQA_OPTIONS = ("A", "B", "C", "D", "E")
_SCIENCEQA_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")  # '.' is any character, as upstream
SCIENCEQA_FAILED = "FAILED"


@dataclass(frozen=True)
class ScienceQARecord:
    """One ScienceQA problem: ``answer`` is the index of the correct choice; ``has_image`` marks the IMG
    subset (LLaVA tests ``'<image>' in prompt``)."""

    question_id: Hashable
    prediction: str
    answer: int
    num_choices: int
    has_image: bool
    image: str = ""  # cluster key; the question id when empty


def parse_scienceqa_answer(text: str) -> str:
    """LLaVA ``llava/eval/eval_science_qa.py``: the text itself if it is one of ``A``-``E``; its first
    character if it looks like ``"B. ..."``; else the single match of ``The answer is ([A-Z]).``;
    otherwise ``FAILED`` (no match, two matches, or ``The answer is B`` at the very end)."""
    if text in SCIENCEQA_OPTIONS:
        return text
    if len(text) >= 3 and text[0] in SCIENCEQA_OPTIONS and text[1:3] == ". ":
        return text[0]
    found = _SCIENCEQA_ANSWER_IS.findall(text)
    return found[0] if len(found) == 1 else SCIENCEQA_FAILED


def _aggregate_scienceqa(per_record: PerRecordScores, indices: np.ndarray) -> dict[str, float]:
    scores, has_image = per_record.scores[indices], per_record.values["has_image"][indices]
    image_accuracy = float(np.mean(scores[has_image])) if has_image.any() else float("nan")
    return {"accuracy": float(np.mean(scores)), "img_accuracy": image_accuracy}


def score_scienceqa(records: Sequence[ScienceQARecord], *, source: object) -> SuiteResult:
    """ScienceQA: correct iff :func:`parse_scienceqa_answer` gives a letter among the first ``num_choices``
    options whose position equals ``answer`` (FAILED is wrong; upstream's random fallback is dead code).
    ``accuracy`` over all records, ``img_accuracy`` (headline, "IMG-Accuracy") over ``has_image``."""
    require_records(records, "ScienceQA")
    require_unique(source, (record.question_id for record in records), "question_id")
    correct = []
    for record in records:
        where = f"question_id={record.question_id!r}"
        if not 2 <= record.num_choices <= len(SCIENCEQA_OPTIONS) or not 0 <= record.answer < record.num_choices:
            raise InputError(source, where, f"answer {record.answer} / num_choices {record.num_choices} out of range")
        letter = parse_scienceqa_answer(require_text(source, where, "prediction", record.prediction).strip())
        valid = SCIENCEQA_OPTIONS[: record.num_choices]
        correct.append(letter in valid and valid.index(letter) == record.answer)
    per_record = PerRecordScores(
        suite="scienceqa",
        unit_ids=tuple(record.question_id for record in records),
        cluster_keys=tuple(record.image or record.question_id for record in records),
        scores=np.asarray(correct, dtype=np.float64),
        aggregator=_aggregate_scienceqa,
        values={"has_image": np.asarray([bool(record.has_image) for record in records], dtype=bool)},
    )
    return finish("scienceqa", "img_accuracy", per_record)


# ----------------------------------------------------------------------------------------------------
# SEED-Bench
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SEEDRecord:
    """One SEED-Bench question; ``question_type`` is the type name (or id) and ``data_type`` is
    ``image`` or ``video`` (LLaVA scores video questions on their middle frame)."""

    question_id: Hashable
    prediction: str
    answer: str  # 'A' | 'B' | 'C' | 'D'
    question_type: str
    data_type: str
    image: str = ""  # cluster key; the question id when empty


def score_seed(records: Sequence[SEEDRecord], *, source: object) -> SuiteResult:
    """SEED-Bench as LLaVA ``scripts/convert_seed_for_submission.py``: correct iff the (stripped)
    prediction text ``==`` the answer letter, no further parsing. ``accuracy`` = correct / all questions
    (headline; a pooled mean, not a mean of type accuracies), ``data_type/image`` and
    ``data_type/video`` (LLaVA's ``eval_only_type``), ``question_type/<t>``."""
    require_records(records, "SEED-Bench")
    require_unique(source, (record.question_id for record in records), "question_id")
    correct = []
    for record in records:
        where = f"question_id={record.question_id!r}"
        answer = require_text(source, where, "answer", record.answer)
        if not record.data_type or not record.question_type:
            raise InputError(source, where, "question_type and data_type must be given")
        correct.append(require_text(source, where, "prediction", record.prediction).strip() == answer)
    per_record = PerRecordScores(
        suite="seed",
        unit_ids=tuple(record.question_id for record in records),
        cluster_keys=tuple(record.image or record.question_id for record in records),
        scores=np.asarray(correct, dtype=np.float64),
        aggregator=accuracy_and_group_means,
        groupings={
            "data_type": Grouping.from_labels([str(record.data_type) for record in records]),
            "question_type": Grouping.from_labels([str(record.question_type) for record in records]),
        },
    )
    return finish("seed", "accuracy", per_record)
