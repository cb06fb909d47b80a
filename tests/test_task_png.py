"""The png_val task: requests, the oracle's perfect score on the bundled sample (official AR = 0.99999,
not 1.0: upstream's Riemann sum stops one step short of 1), both protocols, prediction files, notes."""

import json
import math

import numpy as np
import pytest
from test_png_reader import GRASS, ID_MAP, MAN, NARRATIVES, WOMAN, write_fixture

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.api.types import RLE, Phrase, Prediction
from gcgbench.runner.run_dir import write_prediction_jsonl
from gcgbench.data.sample import write_sample
from gcgbench.tasks.registry import get_task

OPTIONS = ScoringOptions(bootstrap_resamples=50)
FLMM = ScoringOptions(bootstrap_resamples=50, protocol="flmm")
AR_OF_A_PERFECT_PREDICTION = 0.99999
BUCKETS = ("ar", "ar_things", "ar_stuff", "ar_singular", "ar_plural")


@pytest.fixture(scope="module")
def task():
    return get_task("png_val")


@pytest.fixture(scope="module")
def sample_docs(task, tmp_path_factory):
    root = write_sample(tmp_path_factory.mktemp("sample"), n_images=6)
    return task.docs(DataPaths(root))


def oracle(task, docs):
    return {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}


def test_requests_ask_for_every_grounded_phrase_of_the_narrative(task, sample_docs):
    assert task.name == "png_val" and get_task("png").name == "png_val"
    request = task.requests(sample_docs[4])
    assert request.kind == "segment_phrases"
    assert request.prompt == "Please give me a description of the image."
    caption = request.inputs["caption"]
    assert caption == sample_docs[4].truth["caption"]
    texts = [caption[p["start"]:p["end"]] for p in request.inputs["phrases"]]
    assert texts == [p["text"] for p in request.inputs["phrases"]] == [p.text for p in sample_docs[4].phrases]
    assert (request.height, request.width) == (sample_docs[4].height, sample_docs[4].width)


@pytest.mark.parametrize("options", [OPTIONS, FLMM], ids=["official", "flmm"])
def test_oracle_scores_perfectly_on_the_sample(task, sample_docs, options):
    result = task.score(sample_docs, oracle(task, sample_docs), options)
    for name in BUCKETS:
        # the official Riemann sum: a perfect IoU contributes t[99 999] = 0.99999, never 1.0
        assert math.isclose(result.metrics[name], AR_OF_A_PERFECT_PREDICTION, rel_tol=0, abs_tol=1e-12), name
        assert result.metrics[name] != 1.0
    assert result.metrics["acc_0.5"] == 1.0
    if options.protocol == "flmm":
        assert result.metrics["pixel_acc"] == 1.0
    assert result.n_samples == len(sample_docs)
    assert result.metric_config["protocol"] == (options.protocol or "official")
    assert result.metric_config["bootstrap"]["resamples"] == 50
    assert set(result.intervals) == set(result.metrics)
    n_phrases = sum(len(doc.phrases) for doc in sample_docs)
    assert len(result.per_sample) == n_phrases
    assert {"doc_id", "text", "image_id", "iou", "plural", "thing"} <= set(result.per_sample[0])
    assert all(row["iou"] == 1.0 for row in result.per_sample)
    assert result.notes == [f"{n_phrases} grounded phrase(s) scored from 6 of 6 narratives"]


def test_empty_predictions_score_the_first_threshold_step_only(task, sample_docs):
    empty = {doc.doc_id: Prediction(doc.doc_id, doc.inputs["caption"]) for doc in sample_docs}
    result = task.score(sample_docs, empty, OPTIONS)
    assert math.isclose(result.metrics["ar"], 1e-5, abs_tol=1e-15)  # IoU 0 still passes t = 0
    assert result.metrics["acc_0.5"] == 0.0
    assert any("have no predicted phrase" in note for note in result.notes)


def test_unknown_protocol_is_an_input_error(task, sample_docs):
    with pytest.raises(InputError, match="--protocol: unknown PNG protocol 'lisa'"):
        task.score(sample_docs, oracle(task, sample_docs), ScoringOptions(protocol="lisa"))


def test_predictions_read_back_from_jsonl_equal_what_was_written(task, sample_docs, tmp_path):
    written = oracle(task, sample_docs)
    path = tmp_path / "predictions.jsonl"
    write_prediction_jsonl(path, list(written.values()))
    assert task.read_predictions(path, sample_docs) == written
    run_dir = tmp_path / "run"
    write_prediction_jsonl(run_dir / "predictions" / "png_val.jsonl", list(written.values()))
    assert task.read_predictions(run_dir, sample_docs) == written


def test_prediction_mask_of_the_wrong_size_names_file_and_line(task, sample_docs, tmp_path):
    first = sample_docs[0]
    wrong = Prediction(first.doc_id, "x", (Phrase("p", (RLE.from_mask(np.ones((3, 3), np.uint8)),)),))
    predictions = [wrong] + [task.ground_truth_prediction(doc) for doc in sample_docs[1:]]
    path = tmp_path / "predictions.jsonl"
    write_prediction_jsonl(path, predictions)
    with pytest.raises(InputError, match=r"predictions.jsonl: line 1 mask 0: RLE size \[3, 3\] != image size"):
        task.read_predictions(path, sample_docs)


# ----------------------------------------------------------------- hand-written files (test_png_reader)
@pytest.fixture
def fixture_docs(task, tmp_path):
    return task.docs(DataPaths(write_fixture(tmp_path)))


def test_narratives_without_grounded_phrase_are_counted_not_scored(task, fixture_docs):
    result = task.score(fixture_docs, oracle(task, fixture_docs), OPTIONS)
    assert result.notes[0] == "5 grounded phrase(s) scored from 2 of 3 narratives"
    assert result.notes[1].startswith("1 narrative(s) have no grounded phrase and are not scored")
    assert result.notes[1].endswith(": 2")
    assert [row["doc_id"] for row in result.per_sample] == ["1_7"] * 3 + ["1_8"] * 2


def test_protocols_bucket_a_plural_phrase_differently(task, tmp_path):
    # "Two people" made of a thing and a stuff segment (last), plural=true: official takes the last
    # segment's category (stuff), F-LMM counts every plural as a thing
    narratives = json.loads(json.dumps(NARRATIVES))
    narratives[1]["segments"][0]["segment_ids"] = [str(MAN), str(GRASS)]
    docs = task.docs(DataPaths(write_fixture(tmp_path, narratives=narratives)))
    for options, thing in ((OPTIONS, False), (FLMM, True)):
        result = task.score(docs, oracle(task, docs), options)
        row = next(r for r in result.per_sample if r["text"] == "Two people")
        assert row["plural"] is True and row["thing"] is thing


def test_non_noun_grounded_phrases_are_dropped_by_the_official_protocol_only(task, tmp_path):
    narratives = json.loads(json.dumps(NARRATIVES))
    narratives[0]["segments"][4]["noun"] = False
    docs = task.docs(DataPaths(write_fixture(tmp_path, narratives=narratives)))
    official = task.score(docs, oracle(task, docs), OPTIONS)
    flmm = task.score(docs, oracle(task, docs), FLMM)
    assert len(official.per_sample) == 4 and len(flmm.per_sample) == 5
    assert any(note.startswith("1 grounded utterance(s) flagged noun=false") for note in official.notes)


def test_several_masks_of_one_phrase_are_merged(task, fixture_docs):
    predictions = oracle(task, fixture_docs)
    second = fixture_docs[1]
    man, woman = (RLE.from_mask((ID_MAP == i).astype(np.uint8)) for i in (MAN, WOMAN))
    phrases = (Phrase("Two people", (man, woman)),) + predictions[second.doc_id].phrases[1:]
    predictions[second.doc_id] = Prediction(second.doc_id, "", phrases)
    result = task.score(fixture_docs, predictions, OPTIONS)
    assert math.isclose(result.metrics["ar"], AR_OF_A_PERFECT_PREDICTION, abs_tol=1e-12)
    assert any("have several masks: their union is scored" in note for note in result.notes)


def test_flmm_rejects_a_singular_phrase_with_several_segments(task, tmp_path):
    narratives = json.loads(json.dumps(NARRATIVES))
    narratives[1]["segments"][0]["plural"] = False
    docs = task.docs(DataPaths(write_fixture(tmp_path, narratives=narratives)))
    assert task.score(docs, oracle(task, docs), OPTIONS).metrics["ar_plural"] == pytest.approx(0.99999)
    with pytest.raises(InputError, match="png_val: .*is singular but has 2 segments"):
        task.score(docs, oracle(task, docs), FLMM)


def test_aas_output_json_is_read_by_narrative_position(task, fixture_docs, tmp_path):
    output = json.loads(json.dumps(NARRATIVES))
    for doc in fixture_docs:
        for phrase, info in zip(doc.phrases, doc.truth["phrases"]):
            output[doc.truth["narrative_index"]]["segments"][info["utterance_index"]]["pd_mask"] = phrase.masks[0].to_json()
    path = tmp_path / "difflmm.json"
    path.write_text(json.dumps(output, indent=1))
    predictions = task.read_predictions(path, fixture_docs)
    assert predictions == oracle(task, fixture_docs)
    output[1]["image_id"] = "5"
    path.write_text(json.dumps(output))
    with pytest.raises(InputError, match=r"difflmm.json: \[1\]: image_id '5' != 1 of the ground truth"):
        task.read_predictions(path, fixture_docs)
