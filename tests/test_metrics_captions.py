"""Caption metrics: hand-computed CIDEr, edge cases, input errors, resampling.

`ours` scores ~20 hand-written captions (tests/caption_cases.py) with the default Python tokenizer and METEOR
(no Java). Everything compared with pycocoevalcap's jars (COCOEvalCap's pipeline on the same captions, the
jars on thousands of random ones) is in tests/test_caption_jars_parity.py, where those tests share one JVM of
the official METEOR (the JVM's start, loading METEOR's paraphrase table, costs ~15 s of CPU).
"""

from __future__ import annotations

import gc
import math
import shutil

import numpy as np
import pytest

from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.metrics import captions
from gcgbench.metrics.captions import (
    CaptionResult,
    JavaNotFoundError,
    aggregate,
    meteor_from_stats,
    score_captions,
)
from gcgbench.metrics.stats import bootstrap_ci

from caption_cases import PREDICTIONS, REFERENCES


def needs_java(test):
    """Mark a test `java` and skip it, saying why, where there is no `java` on PATH."""
    skip = pytest.mark.skipif(
        shutil.which("java") is None,
        reason="no `java` on PATH: the PTB tokenizer and METEOR need a Java runtime (e.g. default-jre-headless)",
    )
    return skip(pytest.mark.java(test))




@pytest.fixture(scope="module")
def ours() -> CaptionResult:
    return score_captions(REFERENCES, PREDICTIONS, metrics=("meteor", "cider", "rouge"))


# ---------------------------------------------------------------------------------------- without Java


def test_missing_prediction_names_the_first_missing_image():
    predictions = {"sa_1": "a man", "sa_3": "x"}
    with pytest.raises(InputError, match=r"predictions: image 'sa_2': no prediction"):
        score_captions({"sa_1": ["a"], "sa_2": ["b"], "sa_3": ["c"], "sa_4": ["d"]}, predictions)


def test_prediction_without_reference_is_named():
    with pytest.raises(InputError, match=r"preds/x\.json: image 'sa_9': not in gt\.json"):
        score_captions(
            {"sa_1": ["a"]},
            {"sa_1": "a", "sa_9": "b"},
            references_source="gt.json",
            predictions_source="preds/x.json",
        )


@pytest.mark.parametrize(
    ("references", "predictions", "problem"),
    [
        ({}, {}, "no images to score"),
        ({"a": "a bare string"}, {"a": "x"}, "non-empty list of strings"),
        ({"a": []}, {"a": "x"}, "non-empty list of strings"),
        ({"a": ["ok", 3]}, {"a": "x"}, "must be a string"),
        ({"a": ["ok"]}, {"a": None}, "caption must be a string, got NoneType"),
    ],
)
def test_malformed_inputs_raise_input_error(references, predictions, problem):
    with pytest.raises(InputError, match=problem):
        score_captions(references, predictions)


def test_unknown_metric_is_a_value_error():
    with pytest.raises(ValueError, match="spice"):
        score_captions({"a": ["x"]}, {"a": "x"}, metrics=("meteor", "spice"))


@pytest.mark.parametrize(("meteor", "tokenizer"), [("java", "python"), ("python", "java"), ("java", "java")])
def test_missing_java_is_a_one_line_error_saying_what_to_install(monkeypatch, meteor, tokenizer):
    monkeypatch.setattr(captions.shutil, "which", lambda name: None)
    with pytest.raises(JavaNotFoundError) as caught:
        score_captions({"a": ["x"]}, {"a": "x"}, meteor=meteor, tokenizer=tokenizer)
    message = str(caught.value)
    assert "\n" not in message and "Java runtime" in message and "default-jre-headless" in message
    assert isinstance(caught.value, InputError)


def test_the_default_python_implementations_need_no_java(monkeypatch):
    monkeypatch.setattr(captions.shutil, "which", lambda name: None)
    monkeypatch.setenv("PATH", "")
    result = score_captions({"a": ["A dog runs."], "b": ["two cats"]}, {"a": "a dog runs", "b": "a cat"})
    assert result.tokenized_references == {"a": ["a dog runs"], "b": ["two cats"]}
    assert result.per_image["meteor"][0] == 1.0 and 0.0 < result.corpus["meteor"] < 1.0


def test_unknown_implementation_is_a_value_error():
    with pytest.raises(ValueError, match="meteor must be one of"):
        score_captions({"a": ["x"]}, {"a": "x"}, meteor="nltk")


def test_meteor_from_stats_reproduces_the_jar():
    # SCORE-line statistics printed by meteor-1.5.jar (-l en -norm) for three segments, and the scores it gave:
    # "a man" | "a man riding a horse" -> 0.1920280048330957; "a dog" | "a dog" -> 1.0;
    # "the dogs were running" | ["a dog runs in the park", "dogs run"] -> 0.19047619047619047;
    # EVAL over the three -> 0.27185920153815496 (the aggregate: statistics summed, not scores averaged).
    rows = np.array(
        [
            [2, 5, 1, 2, 1, 1, 1, 1] + [0] * 12 + [1, 2, 2],
            [2, 2, 1, 1, 1, 1, 1, 1] + [0] * 12 + [1, 2, 2],
            [4, 2, 2, 0, 1, 1, 0, 0] + [0] * 12 + [1, 1, 1],
        ],
        dtype=float,
    )
    assert meteor_from_stats(rows[0]) == pytest.approx(0.1920280048330957, abs=1e-15)
    assert meteor_from_stats(rows[1]) == 1.0
    assert meteor_from_stats(rows[2]) == pytest.approx(0.19047619047619047, abs=1e-15)
    assert meteor_from_stats(rows) == pytest.approx(0.27185920153815496, abs=1e-15)
    assert (np.mean([0.1920280048330957, 1.0, 0.19047619047619047]) - 0.27185920153815496) > 0.1
    empty_hypothesis = np.array([0, 5, 0, 2] + [0] * 19, dtype=float)
    assert meteor_from_stats(empty_hypothesis) == 0.0


def test_aggregate_without_meteor_statistics_shifts_the_corpus_value():
    result = CaptionResult(
        image_ids=("a", "b", "c"),
        corpus={"meteor": 0.30, "cider": 2.0},
        per_image={"meteor": np.array([0.2, 0.4, 0.6]), "cider": np.array([1.0, 2.0, 3.0])},
        meteor_stats=None,
    )
    assert aggregate(result, np.array([0, 1, 2])) == pytest.approx({"meteor": 0.30, "cider": 2.0})
    assert aggregate(result, np.array([2, 2, 1])) == pytest.approx({"meteor": 0.30 + 0.1333333333, "cider": 8 / 3})
    assert all(math.isnan(v) for v in aggregate(result, np.array([], dtype=int)).values())


# ------------------------------------------------------------------------------------------- with Java


def test_empty_and_punctuation_only_predictions_score_zero(ours):
    for image_id in ("sa_3", "sa_4"):
        position = ours.image_ids.index(image_id)
        assert ours.tokenized_predictions[image_id] == ""
        assert ours.per_image["meteor"][position] == 0.0
        assert ours.per_image["cider"][position] == 0.0
    # METEOR still counts the empty caption's reference words in the corpus recall denominator.
    stats = ours.meteor_stats[ours.image_ids.index("sa_3")]
    assert stats[0] == 0 and stats[1] == 10  # "a woman holding an umbrella walks down a rainy street"


def test_identical_caption_scores_ten_times_the_share_of_ngram_orders_present(ours):
    # Hypothesis = reference (one reference): for each n the clipped dot product equals ‖g_n‖², so the
    # cosine is 1 whenever the n-gram vector is non-zero, and δ = 0 gives no length penalty. Hence
    # CIDEr = 10 · (number of orders n ≤ 4 the caption has) / 4: 10 from four words on, 5 for two words.
    for image_id, expected in [("sa_2", 10.0), ("sa_7", 10.0), ("sa_16", 5.0)]:
        position = ours.image_ids.index(image_id)
        assert ours.tokenized_predictions[image_id] == ours.tokenized_references[image_id][0]
        assert ours.per_image["cider"][position] == pytest.approx(expected, abs=1e-12)
        assert ours.per_image["meteor"][position] == 1.0


def test_ptb_tokenisation_is_what_coco_eval_cap_feeds_the_scorers(ours):
    assert ours.tokenized_references["sa_6"] == ["children -lrb- three of them -rrb- are playing soccer in a park"]
    assert ours.tokenized_references["sa_14"] == ["a boy 's bicycle leaning against a brick wall"]
    assert ours.tokenized_predictions["sa_7"] == "a cat sleeping on a laptop keyboard"


def test_bootstrap_interval_of_caption_metrics_contains_the_corpus_values(ours):
    intervals = bootstrap_ci(len(ours.image_ids), lambda indices: aggregate(ours, indices), n_resamples=300)
    for key in ("meteor", "cider", "rouge_l"):
        assert intervals[key].contains(ours.corpus[key]), key
        assert intervals[key].width > 0


# CIDEr by hand on a 3-image corpus (captions already lower-case, no punctuation: PTB leaves them as they are).
HAND_REFERENCES = {"c1": ["a dog runs"], "c2": ["a cat sleeps"], "c3": ["the bird sings"]}
HAND_PREDICTIONS = {"c1": "a dog sleeps", "c2": "a cat sleeps", "c3": "a bird"}


@needs_java
def test_cider_by_hand_and_its_corpus_dependence():
    result = score_captions(HAND_REFERENCES, HAND_PREDICTIONS, metrics=("cider",))
    first_two = ("c1", "c2")
    two_images = score_captions(
        {k: HAND_REFERENCES[k] for k in first_two}, {k: HAND_PREDICTIONS[k] for k in first_two}, metrics=("cider",)
    )
    # N = 3 images; idf(w) = log N − log max(1, df(w)), df counted over the images' references.
    # "a" is in 2 references: idf = log 3 − log 2 = log 1.5 =: A; every other n-gram (also those in no
    # reference, df 0 → log max(1, 0) = 0) has idf log 3 =: L. One reference, tf = 1 everywhere.
    A, L = math.log(1.5), math.log(3.0)
    # c1 "a dog sleeps" vs "a dog runs". n=1: hyp (a:A, dog:L, sleeps:L), ref (a:A, dog:L, runs:L);
    #   Σ min(h, r)·r = A² + L² (sleeps: min(L, 0)·0 = 0); ‖h‖ = ‖r‖ = √(A² + 2L²).
    #   n=2: ("a dog": L, "dog sleeps": L) vs ("a dog": L, "dog runs": L) → L² / 2L² = 1/2.
    #   n=3: different trigrams → 0; n=4: no 4-grams → 0. Both have 2 bigrams: δ = 0, no penalty.
    c1 = 10 * ((A**2 + L**2) / (A**2 + 2 * L**2) + 0.5 + 0 + 0) / 4  # = 2.5797...
    # c2 is its reference: cosine 1 for n = 1, 2, 3, no 4-gram → 10 · 3/4.
    c2 = 7.5
    # c3 "a bird" vs "the bird sings". n=1: hyp (a:A, bird:L), ref (the:L, bird:L, sings:L) → L² /
    #   (√(A² + L²) · √3 L); n ≥ 2: no common n-gram → 0. Bigram counts 1 vs 2: δ = −1 → exp(−1/72).
    c3 = 10 * (L / (math.sqrt(A**2 + L**2) * math.sqrt(3)) * math.exp(-1 / 72)) / 4  # = 1.3354...
    np.testing.assert_allclose(result.per_image["cider"], [c1, c2, c3], rtol=0, atol=1e-12)
    assert result.corpus["cider"] == pytest.approx((c1 + c2 + c3) / 3, abs=1e-12)
    # Same image, corpus {c1, c2}: N = 2 and "a" is in both references → idf(a) = 0, others log 2 =: L2.
    #   n=1: dot = L2², norms √2·L2 each → 1/2; n=2 → 1/2 as before; CIDEr = 10 · (1/2 + 1/2) / 4 = 2.5.
    assert two_images.per_image["cider"][0] == pytest.approx(2.5, abs=1e-12)
    assert abs(two_images.per_image["cider"][0] - result.per_image["cider"][0]) > 0.07


@pytest.mark.parametrize("tokenizer", [pytest.param("java", marks=pytest.mark.java), "python"])
def test_line_breaks_the_tokenizer_would_split_on_do_not_shift_later_captions(tokenizer):
    if tokenizer == "java" and shutil.which("java") is None:
        pytest.skip("no `java` on PATH")
    references = {"x": ["one two three"], "y": ["four five six"], "z": ["seven eight"]}
    predictions = {"x": "one\rtwo\u2028three", "y": "four five\fsix", "z": "seven\veight"}
    result = score_captions(references, predictions, metrics=("cider",), tokenizer=tokenizer)
    assert result.tokenized_predictions == {"x": "one two three", "y": "four five six", "z": "seven eight"}


@needs_java
def test_a_failing_meteor_jar_is_a_one_line_error_not_a_hang(monkeypatch):
    from pycocoevalcap.meteor import meteor as meteor_module

    monkeypatch.setattr(meteor_module, "METEOR_JAR", "no-such-meteor.jar")
    with pytest.raises(GcgbenchError, match="METEOR .* failed: .*no-such-meteor.jar"):
        captions._run_meteor({"a": ["a dog"]}, {"a": ["a dog"]})
    gc.collect()  # Meteor.__del__ runs again here; it used to deadlock on a lock left held
