"""The Python PTB tokenizer and METEOR equal pycocoevalcap's jars, exactly, on thousands of captions.

Random and adversarial captions (tests/caption_cases.py: synonyms, stems, paraphrases planted from
METEOR's own table, repeated words, long and one-word captions, punctuation only, empty strings, quotes,
brackets, contractions, numbers, URLs, non-ASCII) go through ONE JVM per jar (`tests/caption_jars.py`).
METEOR is compared at the jar's printed precision: every SCORE line (23 statistics) as text, every
segment score and the corpus score of the EVAL line as doubles (Java prints the shortest repr that
round-trips, so float equality is printed-digit equality). Then `gcgbench score` on the bundled sample
gives the same results.json values with `--meteor/--tokenizer python` and `java`, and on ~20 hand-written
captions (tests/caption_cases.py) both implementations give what COCOEvalCap's pipeline gives, as GLaMM runs
it. Every test here shares one JVM of pycocoevalcap's own `Meteor()` (`official_meteor`); starting one
(loading METEOR's paraphrase table) costs ~15 s of CPU.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from caption_cases import PREDICTIONS, REFERENCES, caption, caption_pairs
from caption_jars import coco_eval_cap, jar_meteor, jar_ptb_lines
from gcgbench.metrics.captions import CaptionResult, aggregate, score_captions
from gcgbench.metrics.meteor import MeteorScorer
from gcgbench.metrics.meteor.resources import paraphrase_index
from gcgbench.metrics.meteor.scorer import stats_line
from gcgbench.metrics.ptb_tokenize import filter_punctuation, lex_lines

pytestmark = [
    pytest.mark.java,
    pytest.mark.skipif(shutil.which("java") is None, reason="no `java` on PATH to run the reference jars"),
]

N_TOKENIZER_CAPTIONS = 6000
N_METEOR_PAIRS = 5000


def planted_paraphrases(count: int, seed: int) -> list[tuple[str, str]]:
    """(phrase, paraphrase) entries of METEOR's table, drawn at random."""
    rng = random.Random(seed)
    with sqlite3.connect(f"file:{paraphrase_index()}?mode=ro", uri=True) as db:
        largest = db.execute("SELECT max(id) FROM entry").fetchone()[0]
        ids = ",".join(str(rng.randrange(largest)) for _ in range(count))
        return db.execute(f"SELECT ref, par FROM entry WHERE id IN ({ids})").fetchall()


def test_tokenizer_equals_the_jar_on_random_and_adversarial_captions():
    rng = random.Random(2024)
    captions = [caption(rng).replace("\n", " ") for _ in range(N_TOKENIZER_CAPTIONS)]
    captions += [f"{word}{mark}" for word in ("a", "etc", "U.S", "Mr", "no", "x") for mark in ("", ".", ". The", "..")]
    expected = jar_ptb_lines(captions)
    ours = lex_lines("\n".join(captions)).split("\n")
    assert len(ours) == len(expected)
    mismatches = [(c, j, p) for c, j, p in zip(captions, expected, ours) if j != p]
    assert mismatches == []
    assert [filter_punctuation(line) for line in ours] == [filter_punctuation(line) for line in expected]
    # an ASCII-only text goes through the grammar with ASCII letter and digit classes: against the jar too
    ascii_captions = [c for c in captions if c.isascii()]
    assert len(ascii_captions) > N_TOKENIZER_CAPTIONS // 2
    assert lex_lines("\n".join(ascii_captions)).split("\n") == jar_ptb_lines(ascii_captions)


@pytest.fixture(scope="module")
def official_meteor():
    """pycocoevalcap's `Meteor()`: one JVM for every test of this module."""
    from pycocoevalcap.meteor.meteor import Meteor

    if shutil.which("java") is None:
        pytest.skip("no `java` on PATH")
    meteor = Meteor()
    # wait until its JVM has loaded the paraphrase table, so that no other METEOR JVM (the product's, in
    # `ours_java` or `gcgbench score --meteor java`) loads at the same time: two at once took 27 s instead of 14
    assert meteor._stat("a", ["a"]).split()[:2] == ["1.0", "1.0"]
    yield meteor
    meteor.__del__()


@pytest.fixture(scope="module")
def ours() -> CaptionResult:
    return score_captions(REFERENCES, PREDICTIONS, metrics=("meteor", "cider", "rouge"))


@pytest.fixture(scope="module")
def ours_java() -> CaptionResult:
    return score_captions(REFERENCES, PREDICTIONS, metrics=("meteor", "cider", "rouge"), meteor="java", tokenizer="java")


@pytest.fixture(scope="module")
def official(official_meteor, ours_java):
    return coco_eval_cap(REFERENCES, PREDICTIONS, official_meteor)


@pytest.fixture(scope="module")
def meteor_cases():
    hypotheses, references = caption_pairs(N_METEOR_PAIRS, seed=11, paraphrases=planted_paraphrases(400, seed=5))
    # as the caption metrics feed it: PTB-tokenised, lower-cased, punctuation dropped (a fifth of the pairs)
    tokenized = lex_lines("\n".join(h.replace("\n", " ") for h in hypotheses[::5])).split("\n")
    for index, line in zip(range(0, len(hypotheses), 5), tokenized):
        hypotheses[index] = filter_punctuation(line)
    return hypotheses, references


def test_meteor_equals_the_jar_line_by_line_and_in_the_corpus(meteor_cases, official_meteor):
    hypotheses, references = meteor_cases
    jar_stats, jar_scores, jar_corpus = jar_meteor(official_meteor, hypotheses, references)
    ours = MeteorScorer().score(hypotheses, references)
    stats_mismatches = [(h, r, j, stats_line(s)) for h, r, j, s in zip(hypotheses, references, jar_stats, ours.stats)
                        if j != stats_line(s)]
    assert stats_mismatches == []
    assert ours.scores == jar_scores  # exact doubles
    assert ours.score == jar_corpus
    assert max(abs(a - b) for a, b in zip(ours.scores, jar_scores)) == 0.0
    assert len({round(s, 6) for s in jar_scores}) > 500  # the cases are not degenerate


def test_gcg_sample_scores_the_same_with_python_and_java(tmp_path):
    from gcgbench.api.task import DataPaths
    from gcgbench.cli.app import main
    from gcgbench.runner.run_dir import write_prediction_jsonl
    from gcgbench.data.sample import write_sample
    from gcgbench.tasks.registry import get_task

    sample = write_sample(tmp_path / "sample", n_images=8)
    task = get_task("gcg_val")
    docs = task.docs(DataPaths(sample))
    suffixes = [" on a sunny day.", ", next to an old building!", " (photographed from above)", " and the dogs' ball...",
                "", " -- it's a U.S. photo", " near trees and a car", " \u00e9t\u00e9 caf\u00e9"]
    predictions = [replace(task.ground_truth_prediction(doc), text=task.ground_truth_prediction(doc).text + suffix)
                   for doc, suffix in zip(docs, suffixes * len(docs))]
    write_prediction_jsonl(tmp_path / "p.jsonl", predictions)
    results = {}
    for implementation in ("python", "java"):
        out = tmp_path / implementation
        assert main(["score", "--task", "gcg_val", "--predictions", str(tmp_path / "p.jsonl"), "--data-root", str(sample),
                     "--text-model", "minilm", "--output", str(out), "--bootstrap", "30",
                     "--meteor", implementation, "--tokenizer", implementation]) == 0
        results[implementation] = json.loads((out / "results.json").read_text())
    python, java = results["python"], results["java"]
    assert python["results"] == java["results"] and python["intervals"] == java["intervals"]
    assert 0.0 < python["results"]["gcg_val"]["meteor"] < 1.0
    for name, result in results.items():
        assert result["metric_config"]["gcg_val"]["caption_implementations"] == {"tokenizer": name, "meteor": name}
    samples = [(tmp_path / name / "samples" / "gcg_val.jsonl").read_text() for name in ("python", "java")]
    assert samples[0] == samples[1] and samples[0].count("\n") == len(docs)


# ------------------------------------------- COCOEvalCap as GLaMM runs it, on ~20 hand-written captions


@pytest.mark.parametrize("implementation", ["python", "java"])
@pytest.mark.parametrize("metric", ["METEOR", "CIDEr"])
def test_parity_with_coco_eval_cap(ours, ours_java, official, metric, implementation):
    ours = ours if implementation == "python" else ours_java
    key = metric.lower()
    assert ours.corpus[key] == pytest.approx(official.eval[metric], abs=1e-9)
    expected = [official.imgToEval[i][metric] for i in ours.image_ids]
    np.testing.assert_allclose(ours.per_image[key], expected, rtol=0, atol=1e-9)
    assert list(official.imgToEval) == list(ours.image_ids)


def test_meteor_resamples_equal_the_jar_on_the_resampled_corpus(ours, official_meteor):
    n_images = len(ours.image_ids)
    assert ours.meteor_stats is not None  # kept: they reproduced the jar's corpus score
    assert aggregate(ours, np.arange(n_images))["meteor"] == pytest.approx(ours.corpus["meteor"], abs=1e-12)
    assert aggregate(ours, np.arange(n_images))["cider"] == pytest.approx(ours.corpus["cider"], abs=1e-12)
    generator = np.random.default_rng(7)
    for draw in range(3):
        indices = generator.integers(0, n_images, size=n_images)  # with repeats, as the bootstrap draws
        drawn = [(f"{k}#{ours.image_ids[i]}", ours.image_ids[i]) for k, i in enumerate(indices)]
        gts = {key: ours.tokenized_references[image_id] for key, image_id in drawn}
        res = {key: [ours.tokenized_predictions[image_id]] for key, image_id in drawn}
        jar_score, _ = official_meteor.compute_score(gts, res)
        assert aggregate(ours, indices)["meteor"] == pytest.approx(jar_score, abs=1e-9), draw
