"""VQAv2 / TextVQA / VizWiz / GQA metrics and the VQA answer normalisation, against hand-computed values."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcgbench.api.errors import InputError
from gcgbench.metrics.vqa import (
    GQARecord,
    VizWizRecord,
    VQARecord,
    aggregate,
    join_predictions,
    official_percent,
    score_gqa,
    score_textvqa,
    score_vizwiz,
    score_vqav2,
)
from gcgbench.metrics.vqa_normalize import (
    CONTRACTIONS,
    evalai_normalize,
    gqa_clean_prediction,
    official_vqa_score,
    process_digit_article,
    process_punctuation,
    vqa_accuracy,
    vqav2_question_score,
)

SOURCE = "preds.json"


def assert_metrics_equal(left: dict[str, float], right: dict[str, float]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert left[key] == pytest.approx(right[key], nan_ok=True, abs=1e-12), key


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "text, expected",
    [
        ("dont", "don't"),  # contraction table
        ("I dont see TWO dogs", "i don't see 2 dogs"),  # lowercased, "two" -> "2", "dont" -> "don't"
        ("none", "0"),  # manualMap: none -> 0
        ("ten", "10"),
        ("A dog on the table", "dog on table"),  # articles a/an/the dropped
        ("an  apple", "apple"),  # whitespace collapsed by split/join
        ("Im", "im"),  # key "Im" has a capital: unreachable after lowercasing
        ("somebody'd", "somebodyd"),  # the odd upstream entry, kept
    ],
)
def test_process_digit_article(text: str, expected: str) -> None:
    assert process_digit_article(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("yes.", "yes"),  # '.' not followed by a digit is removed
        ("3.5", "3.5"),  # '.' followed by a digit is kept
        ("1,000", "1000"),  # digit-comma-digit: every mark is deleted, not spaced
        ("red,blue", "red blue"),  # comma touching no space: replaced by a space
        ("red, blue", "red blue"),  # ", " present: comma deleted
        ("hello-world", "hello world"),
        ("well - done", "well  done"),  # " - " present: '-' deleted, leaving two spaces
        ("it's", "it's"),  # apostrophe is not in the list
        ("(a)", " a "),
        ("1,000 (approx)", "1000 approx"),  # the digit-comma-digit rule deletes the brackets too
    ],
)
def test_process_punctuation(text: str, expected: str) -> None:
    assert process_punctuation(text) == expected


def test_period_strip_removes_at_most_32_periods() -> None:
    # upstream passes re.UNICODE (= 32) as re.sub's count: 40 periods -> 8 survive
    assert process_punctuation("." * 40 + "x") == "." * 8 + "x"


def test_digit_class_is_ascii_in_vqa_eval_and_unicode_in_evalai() -> None:
    arabic_three_point_five = "\u0663.\u0665"
    assert process_punctuation(arabic_three_point_five, "vqa_eval") == "\u0663\u0665"  # Python 2 \d: [0-9]
    assert process_punctuation(arabic_three_point_five, "evalai") == arabic_three_point_five


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Yes.", "yes"),
        ("Two", "2"),
        ("1,000", "1000"),  # word_tokenize deletes the comma first
        ("What?", "what"),
        ("The man's hat", "man 's hat"),  # "'s" split off, "the" dropped
        ("  dont\tknow\n", "don't know"),
        ("", ""),
    ],
)
def test_evalai_normalize(text: str, expected: str) -> None:
    assert evalai_normalize(text) == expected


def test_contraction_table_is_complete() -> None:
    assert len(CONTRACTIONS) == 120  # vqaEval.py a013f00 and EvalAIAnswerProcessor both have 120 entries
    assert CONTRACTIONS["youre"] == "you're"


# --------------------------------------------------------------------------- VQA accuracy


def reference_leave_one_out(prediction: str, answers: list[str]) -> float:
    """vqaEval.py's loop, written naively: hold out each human in turn."""
    accuracies = []
    for held_out in range(len(answers)):
        others = [answer for index, answer in enumerate(answers) if index != held_out]
        accuracies.append(min(1, float(sum(answer == prediction for answer in others)) / 3))
    return float(sum(accuracies)) / len(accuracies)


@pytest.mark.parametrize(
    "matching, expected",
    [
        (0, 0.0),
        (1, 0.3),  # 1 held out -> 0 matches; 9 held out -> 1/3 each: 9*(1/3)/10
        (2, 0.6),  # 2*(1/3) + 8*(2/3) = 6 -> 6/10
        (3, 0.9),  # 3*(2/3) + 7*1 = 9 -> 9/10
        (4, 1.0),  # 4*1 + 6*1 = 10 -> 10/10
    ],
)
def test_leave_one_out_accuracy(matching: int, expected: float) -> None:
    answers = ["cat"] * matching + ["dog"] * (10 - matching)
    assert vqa_accuracy("cat", answers) == pytest.approx(expected)
    assert official_vqa_score("cat", answers) == reference_leave_one_out("cat", answers)  # bit-identical


def test_all_identical_gt_answers_are_not_normalised() -> None:
    assert official_vqa_score("Yes", ["yes"] * 10) == 0.0  # no lowercasing when all 10 agree
    assert official_vqa_score("2", ["two"] * 10) == 0.0
    assert official_vqa_score(" yes\n", ["yes"] * 10) == 1.0  # whitespace cleanup always happens
    # one disagreeing answer switches normalisation on for both sides: all 10 become "yes"
    assert official_vqa_score("Yes", ["yes"] * 9 + ["yes."]) == 1.0
    assert official_vqa_score("two", ["two"] * 9 + ["2"]) == 1.0


def test_vqav2_protocols_differ_on_unnormalised_predictions() -> None:
    assert vqav2_question_score("Yes", ["yes"] * 10, "official") == 0.0
    assert vqav2_question_score("Yes", ["yes"] * 10, "llava") == 1.0  # EvalAI lowercases the prediction
    assert vqav2_question_score("Yes", ["yes"] * 10, "lmms_eval") == 1.0
    # GT not in normal form: only lmms-eval (always normalise both sides) matches
    assert vqav2_question_score("two", ["Two"] * 10, "llava") == 0.0
    assert vqav2_question_score("two", ["Two"] * 10, "lmms_eval") == 1.0
    with pytest.raises(ValueError):
        vqav2_question_score("a", ["a"], "nope")  # type: ignore[arg-type]


def vqav2_fixture() -> list[VQARecord]:
    return [
        VQARecord(1, "img1", "Yes", ("yes",) * 10, "yes/no", "is the"),  # 1.0
        VQARecord(2, "img1", "two", ("2",) * 3 + ("3",) * 7, "number", "how many"),  # "2" matches 3 -> 0.9
        VQARecord(3, "img2", "blue", ("red",) * 10, "other", "what color is the"),  # 0.0
    ]


def test_score_vqav2_overall_and_per_type() -> None:
    result = score_vqav2(vqav2_fixture(), source=SOURCE)
    assert result.value == pytest.approx((1.0 + 0.9 + 0.0) / 3)
    assert result.metrics["answer_type/yes/no"] == 1.0
    assert result.metrics["answer_type/number"] == pytest.approx(0.9)
    assert result.metrics["answer_type/other"] == 0.0
    assert result.metrics["question_type/how many"] == pytest.approx(0.9)
    assert official_percent(result.value) == 63.33
    assert result.per_record.cluster_keys == ("img1", "img1", "img2")
    assert result.per_record.scores.tolist() == pytest.approx([1.0, 0.9, 0.0])


def test_empty_prediction_scores_zero() -> None:
    result = score_vqav2([VQARecord(1, "i", "", ("yes",) * 10)], source=SOURCE)
    assert result.value == 0.0


def test_bad_records_raise_input_error() -> None:
    with pytest.raises(ValueError, match="no records"):
        score_vqav2([], source=SOURCE)
    duplicate = [VQARecord(7, "i", "a", ("a",) * 10), VQARecord(7, "j", "b", ("b",) * 10)]
    with pytest.raises(InputError, match=r"preds.json: question_id=7: appears more than once"):
        score_vqav2(duplicate, source=SOURCE)
    with pytest.raises(InputError, match="prediction must be a string"):
        score_vqav2([VQARecord(1, "i", None, ("a",) * 10)], source=SOURCE)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="non-empty list"):
        score_vqav2([VQARecord(1, "i", "a", ())], source=SOURCE)


def test_join_predictions() -> None:
    rows = [{"question_id": 1, "text": "yes"}, {"question_id": 2, "text": "no"}]
    assert join_predictions(rows, source=SOURCE, expected_ids=[1, 2]) == {1: "yes", 2: "no"}
    with pytest.raises(InputError, match=r"question_id=2: missing field 'text'"):
        join_predictions([{"question_id": 2}], source=SOURCE, expected_ids=[2])
    with pytest.raises(InputError, match=r"row 0: missing field 'question_id'"):
        join_predictions([{"text": "a"}], source=SOURCE, expected_ids=[2])
    with pytest.raises(InputError, match=r"question_id=3: unknown question id"):
        join_predictions(rows + [{"question_id": 3, "text": "x"}], source=SOURCE, expected_ids=[1, 2])
    with pytest.raises(InputError, match="appears more than once"):
        join_predictions(rows + rows[:1], source=SOURCE, expected_ids=[1, 2])
    with pytest.raises(InputError, match=r"no prediction for 1 ground-truth question"):
        join_predictions(rows, source=SOURCE, expected_ids=[1, 2, 5])


# --------------------------------------------------------------------------- TextVQA


def test_textvqa_always_normalises_both_sides() -> None:
    records = [
        # GT all "Coca-Cola": VQAv2 would not normalise; TextVQA turns both sides into "coca cola"
        VQARecord("q1", "i1", "coca cola", ("Coca-Cola",) * 10),
        # "The Coca-Cola." -> "coca cola"; 3 of 10 answers normalise to it -> 0.9
        VQARecord("q2", "i2", "The Coca-Cola.", ("coca-cola",) * 2 + ("coca cola",) + ("pepsi",) * 7),
    ]
    result = score_textvqa(records, source=SOURCE)
    assert result.per_record.scores.tolist() == pytest.approx([1.0, 0.9])
    assert result.value == pytest.approx(0.95)
    assert score_vqav2(records[:1], source=SOURCE, protocol="official").value == 0.0
    with pytest.raises(InputError, match="expected 10 ground-truth answers, got 9"):
        score_textvqa([VQARecord("q", "i", "a", ("a",) * 9)], source=SOURCE)


# --------------------------------------------------------------------------- VizWiz


def vizwiz_fixture() -> list[VizWizRecord]:
    return [
        VizWizRecord("v1.jpg", "Unanswerable", ("unanswerable",) * 10, "unanswerable", False),  # 1.0
        VizWizRecord("v2.jpg", "Unanswerable", ("red",) * 10, "other", True),  # 0.0, says unanswerable
        VizWizRecord("v3.jpg", "Red.", ("red",) * 10, "other", True),  # 1.0
        VizWizRecord("v4.jpg", "blue", ("unanswerable",) * 6 + ("blue",) * 4, "unanswerable", False),  # 1.0
    ]


def test_vizwiz_accuracy_and_unanswerable() -> None:
    result = score_vizwiz(vizwiz_fixture(), source=SOURCE)
    assert result.value == pytest.approx(3 / 4)
    assert result.metrics["answer_type/other"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert result.metrics["answer_type/unanswerable"] == 1.0
    # predicted unanswerable [T, T, F, F] vs actual [T, F, F, T]: TP = 1, F1 = 2*1 / (2 + 2)
    assert result.metrics["unanswerable_f1"] == pytest.approx(0.5)


def test_vizwiz_official_leaves_gt_raw() -> None:
    records = [VizWizRecord("v.jpg", "red", ("Red",) * 10, "other", True)]
    assert score_vizwiz(records, source=SOURCE).value == 0.0  # GT "Red" is compared unnormalised
    assert score_vizwiz(records, source=SOURCE, protocol="lmms_eval").value == 1.0


# --------------------------------------------------------------------------- GQA


def test_gqa_exact_match_after_llava_cleaning() -> None:
    assert gqa_clean_prediction("Yes.") == "yes"
    assert gqa_clean_prediction(" Left..\n") == "left"
    records = [
        GQARecord("g1", "i1", "Yes.", "yes", "verify", "rel"),  # "yes" == "yes"
        GQARecord("g2", "i1", "The table", "table", "query", "obj"),  # "the table" != "table"
        GQARecord("g3", "i2", " left\n", "left", "choose", "rel"),  # stripped -> "left"
        GQARecord("g4", "i3", "x", "y", "query", "obj", is_balanced=False),  # not balanced: ignored
    ]
    result = score_gqa(records, source=SOURCE)
    assert result.value == pytest.approx(2 / 3)
    assert result.metrics["binary"] == 1.0  # verify + choose
    assert result.metrics["open"] == 0.0  # query
    assert result.metrics["semantic/rel"] == 1.0
    assert result.per_record.unit_ids == ("g1", "g2", "g3")


# --------------------------------------------------------------------------- aggregate and properties


def test_aggregate_over_all_indices_equals_full_result() -> None:
    for result in (
        score_vqav2(vqav2_fixture(), source=SOURCE),
        score_vizwiz(vizwiz_fixture(), source=SOURCE),
        score_gqa([GQARecord("g", "i", "a", "a", "query")], source=SOURCE),
    ):
        assert_metrics_equal(aggregate(result.per_record, np.arange(len(result.per_record))), result.metrics)


def test_aggregate_with_repeats_equals_scoring_duplicated_records() -> None:
    records = vqav2_fixture()
    indices = np.array([0, 0, 2, 1, 2, 2])
    result = score_vqav2(records, source=SOURCE)
    duplicated = [
        VQARecord(position, records[i].image_id, records[i].prediction, records[i].answers,
                  records[i].answer_type, records[i].question_type)
        for position, i in enumerate(indices)
    ]
    assert_metrics_equal(aggregate(result.per_record, indices), score_vqav2(duplicated, source=SOURCE).metrics)
    # a resample without any 'number' question: that group is NaN, the others are defined
    resampled = aggregate(result.per_record, [0, 2])
    assert math.isnan(resampled["answer_type/number"]) and resampled["accuracy"] == 0.5
    with pytest.raises(ValueError):
        aggregate(result.per_record, [])
    with pytest.raises(ValueError):
        aggregate(result.per_record, [3])


WORDS = st.sampled_from(["yes", "no", "2", "red", "cat", "blue car", "10", "left", "don't know"])


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(WORDS, st.lists(WORDS, min_size=6, max_size=6), st.sampled_from(["yes/no", "other"])),
                  min_size=1, max_size=8),
    protocol=st.sampled_from(["llava", "official", "lmms_eval"]),
    seed=st.integers(0, 1000),
)
def test_properties_gt_as_prediction_and_order(data, protocol, seed) -> None:
    # the prediction appears 4 times among the 10 answers, so every protocol gives 1.0
    records = [
        VQARecord(i, f"img{i % 3}", answer, (answer,) * 4 + tuple(others), answer_type)
        for i, (answer, others, answer_type) in enumerate(data)
    ]
    result = score_vqav2(records, source=SOURCE, protocol=protocol)
    assert all(v == pytest.approx(1.0) for k, v in result.metrics.items() if not math.isnan(v))
    textvqa = score_textvqa(records, source=SOURCE)
    assert textvqa.value == pytest.approx(1.0)
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    assert_metrics_equal(score_vqav2(shuffled, source=SOURCE, protocol=protocol).metrics, result.metrics)
    assert_metrics_equal(aggregate(result.per_record, np.arange(len(records))), result.metrics)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(WORDS, WORDS), min_size=1, max_size=10), st.integers(0, 1000))
def test_mixed_predictions_order_irrelevant(pairs, seed) -> None:
    records = [
        VizWizRecord(f"v{i}.jpg", prediction, (answer,) * 10, "other", True)
        for i, (prediction, answer) in enumerate(pairs)
    ]
    result = score_vizwiz(records, source=SOURCE)
    shuffled = records[:]
    random.Random(seed).shuffle(shuffled)
    assert_metrics_equal(score_vizwiz(shuffled, source=SOURCE).metrics, result.metrics)
    expected = sum(prediction == answer for prediction, answer in pairs) / len(pairs)
    assert result.value == pytest.approx(expected)
