"""POPE, MME, MMBench, ScienceQA-IMG and SEED-Bench metrics against hand-computed values."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcgbench.api.errors import InputError
from gcgbench.metrics.vqa import aggregate
from gcgbench.metrics.mmbench import MMBenchRecord, mmbench_extract_choice, mmbench_submission_rows, score_mmbench
from gcgbench.metrics.multiple_choice import (
    MME_COGNITION,
    MME_PERCEPTION,
    MMERecord,
    POPERecord,
    ScienceQARecord,
    SEEDRecord,
    parse_mme_answer,
    parse_pope_answer,
    parse_scienceqa_answer,
    score_mme,
    score_pope,
    score_scienceqa,
    score_seed,
)

SOURCE = "answers.jsonl"


def assert_metrics_equal(left: dict[str, float], right: dict[str, float]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert left[key] == pytest.approx(right[key], nan_ok=True, abs=1e-9), key


def assert_aggregate_matches(result) -> None:
    assert_metrics_equal(aggregate(result.per_record, np.arange(len(result.per_record))), result.metrics)


# --------------------------------------------------------------------------- POPE


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes, there is a dog.", "yes"),
        ("No, there is not.", "no"),  # "No," -> comma removed -> "No"
        ("There is no dog in the image.", "no"),
        ("The image does not show one. No.", "no"),  # first sentence only: "not"
        ("yes. no", "yes"),  # the "no" is in the second sentence
        ("NO", "yes"),  # only "No", "no", "not" count: anything else is yes
        ("Not at all", "yes"),  # capitalised "Not" is not in the list
        ("no!", "yes"),
        ("I cannot tell", "yes"),
        ("", "yes"),  # empty prediction -> yes
    ],
)
def test_parse_pope_answer(text: str, expected: str) -> None:
    assert parse_pope_answer(text) == expected


def pope_fixture() -> list[POPERecord]:
    return [
        POPERecord(1, "a.jpg", "random", "Yes", "yes"),  # TP
        POPERecord(2, "a.jpg", "random", "No", "yes"),  # FN
        POPERecord(3, "b.jpg", "random", "No", "no"),  # TN
        POPERecord(4, "b.jpg", "random", "Yes, it is.", "no"),  # FP
        POPERecord(5, "c.jpg", "random", "I can't tell", "no"),  # neither -> yes -> FP
        POPERecord(6, "a.jpg", "adversarial", "yes", "yes"),  # TP
        POPERecord(7, "c.jpg", "adversarial", "no", "no"),  # TN
    ]


def test_pope_counts_per_category() -> None:
    result = score_pope(pope_fixture(), source=SOURCE)
    metrics = result.metrics
    # random: TP=1 FN=1 TN=1 FP=2, N=5
    assert metrics["random/accuracy"] == pytest.approx(2 / 5)  # (TP + TN) / N
    assert metrics["random/precision"] == pytest.approx(1 / 3)  # TP / (TP + FP)
    assert metrics["random/recall"] == pytest.approx(1 / 2)  # TP / (TP + FN)
    assert metrics["random/f1"] == pytest.approx(2 / 5)  # 2 * (1/3)(1/2) / (1/3 + 1/2) = (1/3) / (5/6)
    assert metrics["random/yes_ratio"] == pytest.approx(3 / 5)  # 3 predicted yes of 5
    # adversarial: TP=1 TN=1 -> everything 1, yes_ratio 1/2
    assert metrics["adversarial/f1"] == 1.0 and metrics["adversarial/yes_ratio"] == 0.5
    # bare names: unweighted mean over the two categories
    assert result.value == pytest.approx((0.4 + 1.0) / 2)
    assert metrics["yes_ratio"] == pytest.approx((0.6 + 0.5) / 2)
    assert result.per_record.cluster_keys[:2] == ("a.jpg", "a.jpg")
    assert_aggregate_matches(result)


def test_pope_zero_division_gives_zero() -> None:
    records = [POPERecord(1, "a", "popular", "no", "no"), POPERecord(2, "b", "popular", "No.", "no")]
    metrics = score_pope(records, source=SOURCE).metrics
    assert metrics["popular/accuracy"] == 1.0
    assert metrics["popular/precision"] == 0.0 and metrics["popular/recall"] == 0.0 and metrics["popular/f1"] == 0.0
    assert metrics["popular/yes_ratio"] == 0.0


def test_pope_bad_label() -> None:
    with pytest.raises(InputError, match=r"answers.jsonl: question_id=1: label must be 'yes' or 'no'"):
        score_pope([POPERecord(1, "a", "random", "yes", "maybe")], source=SOURCE)


# --------------------------------------------------------------------------- MME


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes", "yes"),
        ("No.", "no"),  # not exactly "no" -> prefix "no." contains "no"
        ("yes\n", "yes"),
        ("Not sure", "no"),  # prefix "not " contains "no"
        ("None", "no"),
        ("nyes", "yes"),  # "yes" is checked before "no"
        ("The answer is yes", "other"),  # prefix "the " has neither
        ("y", "other"),  # lmms-eval maps "y" to yes; the official tool does not
        ("", "other"),
    ],
)
def test_parse_mme_answer(text: str, expected: str) -> None:
    assert parse_mme_answer(text) == expected


def mme_fixture() -> list[MMERecord]:
    return [
        MMERecord(1, "a.jpg", "existence", "Yes", "Yes"),  # right
        MMERecord(2, "a.jpg", "existence", "No", "No"),  # right -> image a: both right
        MMERecord(3, "b.jpg", "existence", "No", "Yes"),  # wrong
        MMERecord(4, "b.jpg", "existence", "No", "No"),  # right
        MMERecord(5, "c.jpg", "count", "yes", "Yes"),  # right
        MMERecord(6, "c.jpg", "count", "The answer is no", "No"),  # 'other' -> wrong
        MMERecord(7, "d.png", "code_reasoning", "Yes", "Yes"),
        MMERecord(8, "d.png", "code_reasoning", "No", "No"),
    ]


def test_mme_acc_plus_and_totals() -> None:
    result = score_mme(mme_fixture(), source=SOURCE)
    metrics = result.metrics
    assert metrics["existence/acc"] == 0.75  # 3 of 4 questions
    assert metrics["existence/acc_plus"] == 0.5  # image a of images a, b
    assert metrics["existence/score"] == pytest.approx(125.0)  # 75 + 50
    assert metrics["count/score"] == pytest.approx(50.0)  # acc 1/2, acc+ 0
    assert metrics["code_reasoning/score"] == 200.0
    assert result.value == pytest.approx(175.0)  # perception = 125 + 50
    assert metrics["cognition"] == 200.0
    assert result.per_record.scores.tolist() == [1.0, 0.5, 0.5, 1.0]  # pair accuracies
    assert_aggregate_matches(result)


def test_mme_bad_records() -> None:
    with pytest.raises(InputError, match=r"subtask='count' image='x': expected 2 questions, got 1"):
        score_mme([MMERecord(1, "x", "count", "yes", "Yes")], source=SOURCE)
    with pytest.raises(InputError, match="unknown MME subtask 'counting'"):
        score_mme([MMERecord(1, "x", "counting", "yes", "Yes")], source=SOURCE)
    with pytest.raises(InputError, match="answer must be 'Yes' or 'No'"):
        score_mme([MMERecord(1, "x", "count", "yes", "maybe")], source=SOURCE)


def test_mme_ground_truth_as_prediction_scores_200_everywhere() -> None:
    records = []
    for subtask in MME_PERCEPTION + MME_COGNITION:
        records += [
            MMERecord(f"{subtask}1", "img", subtask, "Yes", "Yes"),
            MMERecord(f"{subtask}2", "img", subtask, "No", "No"),
        ]
    metrics = score_mme(records, source=SOURCE).metrics
    assert metrics["perception"] == 2000.0 and metrics["cognition"] == 800.0


# --------------------------------------------------------------------------- MMBench

OPTIONS = {"A": "red", "B": "blue", "C": "green", "D": "yellow"}


@pytest.mark.parametrize(
    "prediction, expected",
    [
        ("A", "A"),
        ("(B)", "B"),
        ("C.", "C"),
        ("The answer is D: yellow", "D"),  # one letter token
        ("A cat is blue", "A"),  # "A" the article is taken as the option (VERBOSE check is off)
        ("A or B", None),  # two letters, and no option text
        ("I think it is BLUE", "B"),  # no letter token ("I" is not an option): text match, any case
        ("blue or green", None),  # two option texts
        ("Z", "Z"),
        ("Cannot determine the answer", "Z"),  # refusal phrase
        ("E", None),  # not an option
        ("", None),  # empty prediction
    ],
)
def test_mmbench_extract_choice(prediction: str, expected: str | None) -> None:
    assert mmbench_extract_choice(prediction, OPTIONS) == expected


def rotations(index: int, texts: list[str], correct: int, predictions: list[str], category: str, l2: str):
    """The circular copies of one question: copy k shifts the options by k (LLaVA model_vqa_mmbench.py)."""
    letters = "ABCD"[: len(texts)]
    records = []
    for k, prediction in enumerate(predictions):
        rotated = texts[k:] + texts[:k]
        options = dict(zip(letters, rotated, strict=True))
        answer = letters[rotated.index(texts[correct])]
        records.append(MMBenchRecord(index + k * 1_000_000, prediction, answer, options, category, l2, question="Q?"))
    return records


def mmbench_fixture() -> list[MMBenchRecord]:
    texts = ["red", "blue", "green", "yellow"]
    category, l2 = "attribute_recognition", "finegrained_perception (instance-level)"
    # group 0: answer "red" at A, D, C, B in the four rotations; all answered right -> hit
    group0 = rotations(0, texts, 0, ["A", "D", "C.", "(B)"], category, l2)
    # group 1: answer "blue" at B, A, D, C; rotation 2 answered "A" -> miss
    group1 = rotations(1, texts, 1, ["B", "A", "A", "C"], category, l2)
    # group 2: two options, one rotation unparsable -> miss
    group2 = rotations(2, ["cat", "dog"], 1, ["B", "hmm"], "ocr", "coarse_perception")
    return group0 + group1 + group2


def test_mmbench_circular_groups() -> None:
    records = mmbench_fixture()
    # group 1 rotation 2: options green yellow red blue -> "blue" is D; predicting "A" is wrong
    assert records[6].answer == "D" and records[6].prediction == "A"
    result = score_mmbench(records, source=SOURCE)
    assert result.per_record.unit_ids == (0, 1, 2)
    assert result.per_record.scores.tolist() == [1.0, 0.0, 0.0]
    assert result.value == pytest.approx(1 / 3)
    assert result.metrics["category/attribute_recognition"] == 0.5
    assert result.metrics["category/ocr"] == 0.0
    assert result.metrics["l2_category/coarse_perception"] == 0.0
    assert_aggregate_matches(result)
    # fixing the wrong rotation makes group 1 a hit
    fixed = [dataclasses.replace(r, prediction="D") if r.index == 2_000_001 else r for r in records]
    assert score_mmbench(fixed, source=SOURCE).value == pytest.approx(2 / 3)


def test_mmbench_bad_records() -> None:
    orphan = MMBenchRecord(1_000_005, "A", "A", OPTIONS)
    with pytest.raises(InputError, match=r"index=1000005: circular copy without its main question 5"):
        score_mmbench([orphan], source=SOURCE)
    with pytest.raises(InputError, match="answer 'E' is not one of the options"):
        score_mmbench([MMBenchRecord(0, "A", "E", OPTIONS)], source=SOURCE)
    with pytest.raises(InputError, match="index=0: appears more than once"):
        score_mmbench([MMBenchRecord(0, "A", "A", OPTIONS)] * 2, source=SOURCE)


def test_mmbench_submission_rows() -> None:
    rows = mmbench_submission_rows(mmbench_fixture()[-2:])
    assert list(rows[0]) == ["index", "question", "A", "B", "C", "D", "prediction", "answer"]
    assert rows[0] == {"index": 2, "question": "Q?", "A": "cat", "B": "dog", "C": None, "D": None,
                       "prediction": "B", "answer": "B"}
    assert rows[1]["index"] == 1_000_002 and rows[1]["prediction"] == "hmm"


# --------------------------------------------------------------------------- ScienceQA


@pytest.mark.parametrize(
    "text, expected",
    [
        ("A", "A"),
        ("B. The pencil", "B"),
        ("The answer is C.", "C"),
        ("The answer is C", "FAILED"),  # the pattern needs one character after the letter
        ("The answer is A. The answer is B.", "FAILED"),  # two matches
        ("B.", "FAILED"),  # too short for "B. " and no "The answer is"
        ("b", "FAILED"),
        ("", "FAILED"),
    ],
)
def test_parse_scienceqa_answer(text: str, expected: str) -> None:
    assert parse_scienceqa_answer(text) == expected


def test_scienceqa_accuracy() -> None:
    records = [
        ScienceQARecord("1", "A", 0, 2, True),  # right
        ScienceQARecord("2", "The answer is B.", 1, 3, True),  # right
        ScienceQARecord("3", "The answer is B", 1, 3, False),  # FAILED -> wrong
        ScienceQARecord("4", "C", 0, 2, True),  # C is beyond the 2 choices -> wrong
    ]
    result = score_scienceqa(records, source=SOURCE)
    assert result.metrics["accuracy"] == 0.5  # 2 of 4
    assert result.value == pytest.approx(2 / 3)  # IMG: 2 of the 3 image questions
    assert_aggregate_matches(result)
    assert math.isnan(aggregate(result.per_record, [2])["img_accuracy"])  # no image question drawn
    with pytest.raises(InputError, match="out of range"):
        score_scienceqa([ScienceQARecord("5", "A", 3, 3, True)], source=SOURCE)


# --------------------------------------------------------------------------- SEED-Bench


def test_seed_accuracy() -> None:
    records = [
        SEEDRecord(1, "A", "A", "Scene Understanding", "image"),  # right
        SEEDRecord(2, "B.", "B", "Instance Identity", "image"),  # exact match only: wrong
        SEEDRecord(3, " C\n", "C", "Action Recognition", "video"),  # stripped: right
        SEEDRecord(4, "D", "A", "Action Recognition", "video"),  # wrong
    ]
    result = score_seed(records, source=SOURCE)
    assert result.value == 0.5  # 2 of 4, pooled
    assert result.metrics["data_type/image"] == 0.5 and result.metrics["data_type/video"] == 0.5
    assert result.metrics["question_type/Scene Understanding"] == 1.0
    assert result.metrics["question_type/Instance Identity"] == 0.0
    assert result.metrics["question_type/Action Recognition"] == 0.5
    assert_aggregate_matches(result)
    with pytest.raises(ValueError, match="no records"):
        score_seed([], source=SOURCE)
    with pytest.raises(InputError, match="question_id=1: appears more than once"):
        score_seed(records[:1] * 2, source=SOURCE)


# --------------------------------------------------------------------------- properties

LETTERS = st.sampled_from("ABCD")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(LETTERS, st.booleans(), st.sampled_from(["random", "popular"])), min_size=1, max_size=12),
       st.integers(0, 1000))
def test_ground_truth_as_prediction_and_order(rows, seed) -> None:
    shuffle = random.Random(seed).shuffle

    seed_records = [SEEDRecord(i, letter, letter, "t", "image") for i, (letter, _, _) in enumerate(rows)]
    sqa_records = [ScienceQARecord(i, letter, "ABCD".index(letter), 4, True) for i, (letter, _, _) in enumerate(rows)]
    pope_records = [
        POPERecord(i, f"img{i % 3}", category, "yes" if is_yes else "no", "yes" if is_yes else "no")
        for i, (_, is_yes, category) in enumerate(rows)
    ]
    mmbench_records = []
    for i, (letter, _, _) in enumerate(rows):
        mmbench_records += rotations(i, ["w", "x", "y", "z"], "ABCD".index(letter), ["?"] * 4, "c", "l2")
    mmbench_records = [dataclasses.replace(r, prediction=r.answer) for r in mmbench_records]

    for scorer, records in ((score_seed, seed_records), (score_scienceqa, sqa_records),
                            (score_pope, pope_records), (score_mmbench, mmbench_records)):
        result = scorer(records, source=SOURCE)
        accuracies = {k: v for k, v in result.metrics.items() if "accuracy" in k or k == "accuracy"}
        assert accuracies and all(v == 1.0 for v in accuracies.values())
        shuffled = records[:]
        shuffle(shuffled)
        assert_metrics_equal(scorer(shuffled, source=SOURCE).metrics, result.metrics)
        assert_aggregate_matches(result)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["Yes", "No", "yes.", "Not", "other"]), st.booleans()), min_size=1, max_size=6),
    st.integers(0, 1000),
)
def test_mme_order_irrelevant(answers, seed) -> None:
    records = []
    for i, (prediction, first_yes) in enumerate(answers):
        subtask = "color" if i % 2 else "text_translation"
        records += [MMERecord(2 * i, f"im{i}", subtask, prediction, "Yes" if first_yes else "No"),
                    MMERecord(2 * i + 1, f"im{i}", subtask, "No", "No")]
    result = score_mme(records, source=SOURCE)
    random.Random(seed).shuffle(records)
    assert_metrics_equal(score_mme(records, source=SOURCE).metrics, result.metrics)
    assert_aggregate_matches(result)
