"""Open-ended VQA suites: VQAv2, TextVQA, VizWiz, GQA, plus the scaffolding every VQA-style suite shares.

Every ``score_*`` function takes typed records (one per question, prediction and ground truth together)
and returns a :class:`SuiteResult`: the suite's metrics as **unrounded fractions in [0, 1]** (official
scripts print ``round(100 * x, 2)``; use :func:`official_percent` for that display) and a
:class:`PerRecordScores` with one entry per resampling unit and its cluster key (the image), so a clustered
bootstrap can call :func:`aggregate` with a resampled, possibly repeated, index array.

Conventions shared by all suites (here and in ``multiple_choice``):

* ``source`` names the file the records came from; bad records raise
  ``InputError(source, "<id field>=<id>", problem)``; duplicate ids are bad records.
* No records: ``ValueError``. A group (answer type, category, ...) with no unit in a resample: NaN.
* Metrics are means over units computed with numpy; they equal the official Python ``sum(x) / len(x)`` up
  to floating-point summation order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.metrics.vqa_normalize import (
    VizWizProtocol,
    VQAProtocol,
    evalai_normalize,
    gqa_clean_prediction,
    vizwiz_processed_prediction,
    vqa_accuracy,
    vqav2_question_score,
)

# ----------------------------------------------------------------------------------------------------
# Shared scaffolding
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Grouping:
    """A categorical label per unit, stored as codes into ``names``; code -1 means "no label given"."""

    names: tuple[str, ...]
    codes: np.ndarray

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> Grouping:
        names = tuple(sorted({label for label in labels if label != ""}))
        position = {name: code for code, name in enumerate(names)}
        codes = np.fromiter((position.get(label, -1) for label in labels), dtype=np.intp, count=len(labels))
        return cls(names, codes)


@dataclass(frozen=True, eq=False)
class PerRecordScores:
    """Per-unit results of one suite, all arrays aligned with ``unit_ids``.

    A unit is what a bootstrap resamples: a question for most suites, a circular group for MMBench, an
    image pair for MME. ``scores`` is the unit's main score; ``values`` holds the extra per-unit arrays a
    suite needs to recompute its metrics; ``groupings`` the labels its breakdowns are over.
    """

    suite: str
    unit_ids: tuple[Hashable, ...]
    cluster_keys: tuple[Hashable, ...]
    scores: np.ndarray
    aggregator: Callable[[PerRecordScores, np.ndarray], dict[str, float]] = field(repr=False)
    groupings: Mapping[str, Grouping] = field(default_factory=dict)
    values: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.unit_ids)


@dataclass(frozen=True, eq=False)
class SuiteResult:
    """Metrics of one suite (``metrics[headline]`` is the number papers report) and its per-unit scores."""

    suite: str
    headline: str
    metrics: dict[str, float]
    per_record: PerRecordScores

    @property
    def value(self) -> float:
        return self.metrics[self.headline]


def aggregate(per_record: PerRecordScores, indices: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Recompute a suite's metrics over the units ``indices`` (positions into ``per_record``, may repeat).

    ``aggregate(r.per_record, range(len(r.per_record))) == r.metrics`` for every result ``r``.
    """
    index_array = np.asarray(indices)
    if index_array.ndim != 1 or index_array.size == 0:
        raise ValueError("indices must be a non-empty 1-D array of unit positions")
    if not np.issubdtype(index_array.dtype, np.integer):
        raise ValueError(f"indices must be integers, got dtype {index_array.dtype}")
    if index_array.min() < 0 or index_array.max() >= len(per_record):
        raise ValueError(f"indices must lie in [0, {len(per_record)})")
    return per_record.aggregator(per_record, index_array.astype(np.intp, copy=False))


def official_percent(fraction: float) -> float:
    """The number official scripts print: ``round(100 * fraction, 2)``. For display only."""
    return round(100.0 * fraction, 2)


def finish(suite: str, headline: str, per_record: PerRecordScores) -> SuiteResult:
    """Build the result from its per-unit scores, so full metrics and :func:`aggregate` cannot disagree."""
    metrics = aggregate(per_record, np.arange(len(per_record)))
    return SuiteResult(suite=suite, headline=headline, metrics=metrics, per_record=per_record)


def group_means(prefix: str, grouping: Grouping, values: np.ndarray, indices: np.ndarray) -> dict[str, float]:
    """``{prefix/name: mean of values over the resampled units labelled name}``; NaN for an empty group."""
    codes = grouping.codes[indices]
    labelled = codes >= 0
    size = len(grouping.names)
    totals = np.bincount(codes[labelled], weights=values[indices][labelled], minlength=size)
    counts = np.bincount(codes[labelled], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / counts
    return {f"{prefix}/{name}": float(mean) for name, mean in zip(grouping.names, means, strict=True)}


def accuracy_and_group_means(per_record: PerRecordScores, indices: np.ndarray) -> dict[str, float]:
    """The aggregator of plain-accuracy suites: ``accuracy`` = mean unit score, then the mean per label of
    every grouping, keyed ``<grouping>/<label>``."""
    metrics = {"accuracy": float(np.mean(per_record.scores[indices]))}
    for name, grouping in per_record.groupings.items():
        metrics |= group_means(name, grouping, per_record.scores, indices)
    return metrics


def require_records(records: Sequence[object], suite: str) -> None:
    if len(records) == 0:
        raise ValueError(f"{suite}: no records to score")


def require_unique(source: object, ids: Iterable[Hashable], id_field: str) -> None:
    seen: set[Hashable] = set()
    for record_id in ids:
        if record_id in seen:
            raise InputError(source, f"{id_field}={record_id!r}", "appears more than once")
        seen.add(record_id)


def require_text(source: object, where: str, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InputError(source, where, f"{name} must be a string, got {type(value).__name__}")
    return value


def join_predictions(
    rows: Iterable[Mapping[str, object]],
    *,
    source: object,
    expected_ids: Iterable[Hashable],
    id_field: str = "question_id",
    text_field: str = "text",
) -> dict[Hashable, str]:
    """Map id -> prediction text from prediction rows (e.g. LLaVA answer JSONL), checked against the GT ids.

    Raises InputError for a row without ``id_field`` or ``text_field``, a non-string text, an id not in
    ``expected_ids``, an id given twice, and for ground-truth ids left without a prediction (the official
    VQA ``loadRes`` likewise asserts that results cover exactly the annotation ids).
    """
    expected_in_order = list(dict.fromkeys(expected_ids))
    expected = set(expected_in_order)
    predictions: dict[Hashable, str] = {}
    for row_number, row in enumerate(rows):
        if id_field not in row:
            raise InputError(source, f"row {row_number}", f"missing field {id_field!r}")
        record_id = row[id_field]
        where = f"{id_field}={record_id!r}"
        if text_field not in row:
            raise InputError(source, where, f"missing field {text_field!r}")
        if record_id not in expected:
            raise InputError(source, where, "unknown question id (not in the ground truth)")
        if record_id in predictions:
            raise InputError(source, where, "appears more than once")
        predictions[record_id] = require_text(source, where, text_field, row[text_field])
    missing = [record_id for record_id in expected_in_order if record_id not in predictions]
    if missing:
        raise InputError(
            source, None, f"no prediction for {len(missing)} ground-truth question(s), e.g. {id_field}={missing[0]!r}"
        )
    return predictions


# ----------------------------------------------------------------------------------------------------
# VQAv2 and TextVQA
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VQARecord:
    """One VQAv2 or TextVQA question: the model's text and the human answers (10 in both datasets)."""

    question_id: Hashable
    image_id: Hashable
    prediction: str
    answers: tuple[str, ...]
    answer_type: str = ""  # VQAv2: 'yes/no' | 'number' | 'other'
    question_type: str = ""  # VQAv2: e.g. 'what color is the'


def _check_answers(source: object, where: str, answers: object, exactly: int | None = None) -> tuple[str, ...]:
    if isinstance(answers, str) or not isinstance(answers, Sequence) or len(answers) == 0:
        raise InputError(source, where, "answers must be a non-empty list of strings")
    if exactly is not None and len(answers) != exactly:
        raise InputError(source, where, f"expected {exactly} ground-truth answers, got {len(answers)}")
    for answer in answers:
        require_text(source, where, "every answer", answer)
    return tuple(answers)


def score_vqav2(records: Sequence[VQARecord], *, source: object, protocol: VQAProtocol = "llava") -> SuiteResult:
    """VQAv2 accuracy: mean per-question :func:`vqav2_question_score`, overall (``accuracy``, headline),
    per answer type (``answer_type/yes/no``, ...) and per question type (``question_type/...``), as
    vqaEval.py ``setAccuracy`` reports them (there as ``round(100 * mean, 2)``). Cluster key: image id."""
    require_records(records, "VQAv2")
    require_unique(source, (record.question_id for record in records), "question_id")
    scores = []
    for record in records:
        where = f"question_id={record.question_id!r}"
        answers = _check_answers(source, where, record.answers)
        prediction = require_text(source, where, "prediction", record.prediction)
        scores.append(vqav2_question_score(prediction, answers, protocol))
    per_record = PerRecordScores(
        suite="vqav2",
        unit_ids=tuple(record.question_id for record in records),
        cluster_keys=tuple(record.image_id for record in records),
        scores=np.asarray(scores, dtype=np.float64),
        aggregator=accuracy_and_group_means,
        groupings={
            "answer_type": Grouping.from_labels([record.answer_type for record in records]),
            "question_type": Grouping.from_labels([record.question_type for record in records]),
        },
    )
    return finish("vqav2", "accuracy", per_record)


def score_textvqa(records: Sequence[VQARecord], *, source: object) -> SuiteResult:
    """TextVQA accuracy as LLaVA ``llava/eval/m4c_evaluator.py::TextVQAAccuracyEvaluator``.

    Prediction and every GT answer go through :func:`evalai_normalize` (always, unlike VQAv2), exactly 10
    GT answers are required (upstream asserts it), and the score is :func:`vqa_accuracy`. Records are keyed
    by ``question_id`` (LLaVA ``eval_textvqa.py`` matches by image id and lowercased question text instead).
    """
    require_records(records, "TextVQA")
    require_unique(source, (record.question_id for record in records), "question_id")
    scores = []
    for record in records:
        where = f"question_id={record.question_id!r}"
        answers = _check_answers(source, where, record.answers, exactly=10)
        prediction = evalai_normalize(require_text(source, where, "prediction", record.prediction))
        scores.append(vqa_accuracy(prediction, [evalai_normalize(answer) for answer in answers]))
    per_record = PerRecordScores(
        suite="textvqa",
        unit_ids=tuple(record.question_id for record in records),
        cluster_keys=tuple(record.image_id for record in records),
        scores=np.asarray(scores, dtype=np.float64),
        aggregator=accuracy_and_group_means,
    )
    return finish("textvqa", "accuracy", per_record)


# ----------------------------------------------------------------------------------------------------
# VizWiz
# ----------------------------------------------------------------------------------------------------

UNANSWERABLE = "unanswerable"


@dataclass(frozen=True)
class VizWizRecord:
    """One VizWiz-VQA question. VizWiz keys questions by image file name (one question per image)."""

    image: str
    prediction: str
    answers: tuple[str, ...]
    answer_type: str  # 'other' | 'yes/no' | 'number' | 'unanswerable'
    answerable: bool


def _aggregate_vizwiz(per_record: PerRecordScores, indices: np.ndarray) -> dict[str, float]:
    metrics = accuracy_and_group_means(per_record, indices)
    predicted = per_record.values["predicted_unanswerable"][indices]
    actual = per_record.values["unanswerable"][indices]
    true_positives = int(np.sum(predicted & actual))
    denominator = int(np.sum(predicted)) + int(np.sum(actual))
    metrics["unanswerable_f1"] = 2.0 * true_positives / denominator if denominator else 0.0
    return metrics


def score_vizwiz(
    records: Sequence[VizWizRecord], *, source: object, protocol: VizWizProtocol = "llava"
) -> SuiteResult:
    """VizWiz-VQA accuracy with the unanswerable class.

    The prediction is processed by :func:`vizwiz_processed_prediction`: protocol ``"llava"`` (default) is
    LLaVA's EvalAI-normalised upload scored by the official VizWiz scorer (vizwiz.org ``vqaEval.py``),
    which compares with the **raw** GT answers; ``"lmms_eval"`` (``tasks/vizwiz_vqa/utils.py``) normalises
    the GT answers too. The official copy of the contraction table uses typographic apostrophes; it differs
    from ours only on words that still contain ``’`` after EvalAI processing.

    Score per question: :func:`vqa_accuracy`. Unanswerable questions carry GT answers ``unanswerable``, so
    answering ``Unanswerable`` (lmms-eval prompts for it) scores like any answer. Reported: ``accuracy``
    (headline), ``answer_type/<t>`` (official ``perAnswerType``, including ``unanswerable``), and
    ``unanswerable_f1``: F1 of "processed prediction == unanswerable" against ``not answerable``. The
    official answerability AP/F1 needs a per-question answerable probability, which generative models lack.
    """
    require_records(records, "VizWiz")
    require_unique(source, (record.image for record in records), "image")
    scores, predicted_unanswerable = [], []
    for record in records:
        where = f"image={record.image!r}"
        answers = _check_answers(source, where, record.answers)
        prediction = require_text(source, where, "prediction", record.prediction)
        prediction = vizwiz_processed_prediction(prediction, protocol)
        if protocol == "lmms_eval":
            answers = tuple(evalai_normalize(answer) for answer in answers)
        scores.append(vqa_accuracy(prediction, answers))
        predicted_unanswerable.append(prediction == UNANSWERABLE)
    per_record = PerRecordScores(
        suite="vizwiz",
        unit_ids=tuple(record.image for record in records),
        cluster_keys=tuple(record.image for record in records),
        scores=np.asarray(scores, dtype=np.float64),
        aggregator=_aggregate_vizwiz,
        groupings={"answer_type": Grouping.from_labels([record.answer_type for record in records])},
        values={
            "predicted_unanswerable": np.asarray(predicted_unanswerable, dtype=bool),
            "unanswerable": np.asarray([not record.answerable for record in records], dtype=bool),
        },
    )
    return finish("vizwiz", "accuracy", per_record)


# ----------------------------------------------------------------------------------------------------
# GQA
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GQARecord:
    """One GQA question (``testdev_balanced_questions.json``): gold ``answer`` and optional ``types``."""

    question_id: Hashable
    image_id: Hashable
    prediction: str
    answer: str
    structural_type: str = ""  # types.structural: 'query' | 'verify' | 'logical' | 'choose' | 'compare'
    semantic_type: str = ""  # types.semantic: 'attr' | 'cat' | 'global' | 'obj' | 'rel'
    is_balanced: bool = True


def _aggregate_gqa(per_record: PerRecordScores, indices: np.ndarray) -> dict[str, float]:
    metrics = accuracy_and_group_means(per_record, indices)  # keys answer_kind/binary -> binary
    return {key.removeprefix("answer_kind/"): value for key, value in metrics.items()}


def score_gqa(records: Sequence[GQARecord], *, source: object) -> SuiteResult:
    """GQA accuracy as the official ``eval.py`` (GQA site): ``correct = (prediction == gold)``, a raw string
    comparison, on :func:`gqa_clean_prediction` output; only ``isBalanced`` questions count (others are
    ignored). Reported: ``accuracy`` (headline), ``binary``/``open`` (open iff structural type is
    ``query``), ``structural/<t>`` and ``semantic/<t>``; type breakdowns only for records that carry types.
    """
    balanced = [record for record in records if record.is_balanced]
    require_records(balanced, "GQA (balanced questions)")
    require_unique(source, (record.question_id for record in records), "question_id")
    scores = []
    for record in balanced:
        where = f"question_id={record.question_id!r}"
        gold = require_text(source, where, "answer", record.answer)
        prediction = require_text(source, where, "prediction", record.prediction)
        scores.append(float(gqa_clean_prediction(prediction) == gold))
    answer_kinds = [
        "" if not record.structural_type else ("open" if record.structural_type == "query" else "binary")
        for record in balanced
    ]
    per_record = PerRecordScores(
        suite="gqa",
        unit_ids=tuple(record.question_id for record in balanced),
        cluster_keys=tuple(record.image_id for record in balanced),
        scores=np.asarray(scores, dtype=np.float64),
        aggregator=_aggregate_gqa,
        groupings={
            "answer_kind": Grouping.from_labels(answer_kinds),
            "structural": Grouping.from_labels([record.structural_type for record in balanced]),
            "semantic": Grouping.from_labels([record.semantic_type for record in balanced]),
        },
    )
    return finish("gqa", "accuracy", per_record)

