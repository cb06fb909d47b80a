"""The RES task family through the registry: task files, docs and requests on the bundled sample, the
oracle scoring perfectly under both protocols, F-LMM's sentence selection, prediction round trips, errors."""

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.runner.run_dir import write_prediction_jsonl
from gcgbench.data.sample import write_sample
from gcgbench.tasks.registry import all_specs, get_task, task_names
from gcgbench.tasks.res import METRICS, flmm_selection

OPTIONS = ScoringOptions(bootstrap_resamples=50)
RES_TASKS = {
    "res_refcoco_val": ("refcoco", "unc", "val"), "res_refcoco_testA": ("refcoco", "unc", "testA"),
    "res_refcoco_testB": ("refcoco", "unc", "testB"), "res_refcoco+_val": ("refcoco+", "unc", "val"),
    "res_refcoco+_testA": ("refcoco+", "unc", "testA"), "res_refcoco+_testB": ("refcoco+", "unc", "testB"),
    "res_refcocog_val": ("refcocog", "umd", "val"), "res_refcocog_test": ("refcocog", "umd", "test"),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


@pytest.fixture(scope="module")
def refcoco_val(root):
    task = get_task("res_refcoco_val")
    return task, task.docs(DataPaths(root))


def oracle(task, docs):
    return {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}


def test_task_files_cover_every_split_with_the_glamm_layout():
    assert {name for name in task_names() if name.startswith("res_")} == set(RES_TASKS)
    for name, (dataset, split_by, split) in RES_TASKS.items():
        spec = all_specs()[name]
        assert spec.family == "res" and spec.version == "1"
        assert spec.params == {"dataset": dataset, "split_by": split_by, "split": split, "protocol": "lisa"}
        assert spec.files == {"refs": f"Refer_Segm/{dataset}/refs({split_by}).p",
                              "instances": f"Refer_Segm/{dataset}/instances.json", "images": "coco_2014/train2014"}
        assert spec.prompt == "What is {expression} in this image? Please output segmentation mask."
        assert tuple(spec.metrics) == METRICS
    for split in ("val", "testA", "testB"):
        assert get_task(f"res_refcocoplus_{split}").spec is all_specs()[f"res_refcoco+_{split}"]


@pytest.mark.parametrize("name", sorted(RES_TASKS))
def test_oracle_scores_perfectly_on_every_split(root, name):
    task = get_task(name)
    docs = task.docs(DataPaths(root))
    assert docs and len({doc.doc_id for doc in docs}) == len(docs)
    result = task.score(docs, oracle(task, docs), OPTIONS)
    # LISA/GLaMM epsilons: cIoU = ΣI/(ΣU + 1e-10), gIoU = N/(N + 1e-5) — 1.0 up to them
    assert result.metrics["ciou"] == pytest.approx(1.0, abs=1e-9)
    assert result.metrics["giou"] == pytest.approx(1.0, abs=1e-5)
    assert all(result.metrics[f"precision_{t}"] == 1.0 for t in (0.5, 0.6, 0.7, 0.8, 0.9))
    assert result.n_samples == len(docs) and len(result.per_sample) == len(docs)
    flmm = task.score(docs, oracle(task, docs), dataclasses.replace(OPTIONS, protocol="flmm"))
    assert flmm.metrics["ciou"] == 1.0 and flmm.metrics["giou"] == 1.0
    assert 0 < flmm.n_samples <= len(docs)


def test_docs_and_requests(refcoco_val, root):
    task, docs = refcoco_val
    refs = pickle.loads((root / "Refer_Segm/refcoco/refs(unc).p").read_bytes())
    expected = [f"{r['ref_id']}_{s['sent_id']}" for r in refs if r["split"] == "val" for s in r["sentences"]]
    assert [doc.doc_id for doc in docs] == expected  # every sentence, pickle order
    doc = docs[0]
    assert isinstance(doc.truth["image_id"], int) and doc.image_path.startswith(str(root / "coco_2014/train2014"))
    request = task.requests(doc)
    assert request.kind == "segment" and request.inputs == {"expression": doc.inputs["expression"]}
    assert request.prompt == f"What is {doc.inputs['expression']} in this image? Please output segmentation mask."
    assert (request.height, request.width) == (doc.height, doc.width) == doc.phrases[0].masks[0].size
    assert task.annotation_files(DataPaths(root)) == [root / "Refer_Segm/refcoco/refs(unc).p",
                                                      root / "Refer_Segm/refcoco/instances.json"]


def test_result_records_protocol_intervals_and_rows(refcoco_val):
    task, docs = refcoco_val
    result = task.score(docs, oracle(task, docs), OPTIONS)
    assert result.metric_config["protocol"] == "lisa" and result.metric_config["split"] == "val"
    assert result.metric_config["bootstrap"]["resamples"] == 50
    assert set(result.intervals) == set(METRICS)
    row = result.per_sample[0]
    assert row["doc_id"] == docs[0].doc_id and row["iou"] == 1.0 and row["intersection"] == row["union"] > 0
    assert task.score(docs, oracle(task, docs), ScoringOptions(bootstrap_resamples=0)).intervals == {}


def doc(ref_id, sent_id, index, ann_id, split="val", image_id=1, mask=None):
    mask = mask or RLE.from_mask(np.eye(4, dtype=np.uint8))
    return Doc(f"{ref_id}_{sent_id}", None, 4, 4, {"expression": f"s{sent_id}"}, (Phrase(f"s{sent_id}", (mask,)),),
               truth={"image_id": image_id, "ref_id": ref_id, "sent_id": sent_id, "sentence_index": index,
                      "ann_id": ann_id, "split": split, "gt_issue": None})


def test_flmm_selects_first_sentence_of_the_last_ref_per_object_with_exact_split():
    docs = [doc(0, 0, 0, 11), doc(0, 1, 1, 11), doc(1, 2, 0, 12), doc(2, 3, 0, 11), doc(2, 4, 1, 11),
            doc(3, 5, 0, 13, split="valA")]
    # ann 11 has refs 0 and 2: mmdet keeps ref 2's sentences (ann.update), at ann 11's first position
    assert [d.doc_id for d in flmm_selection(docs, "val")] == ["2_3", "1_2"]


def test_flmm_scores_only_the_selection(refcoco_val):
    task, docs = refcoco_val
    predictions = oracle(task, docs)
    unscored = [d for d in docs if d.truth["sentence_index"] > 0]
    assert unscored
    for d in unscored:  # F-LMM never looks at these sentences
        wrong = RLE.from_mask(np.zeros((d.height, d.width), dtype=np.uint8))
        predictions[d.doc_id] = Prediction(d.doc_id, "", (Phrase("x", (wrong,)),))
    flmm = task.score(docs, predictions, dataclasses.replace(OPTIONS, protocol="flmm"))
    assert flmm.metrics["ciou"] == 1.0 and flmm.n_samples == len(docs) - len(unscored)
    assert flmm.metric_config["protocol"] == "flmm" and "select_first" in flmm.metric_config["expression_selection"]
    assert any("flmm protocol" in note for note in flmm.notes)
    assert task.score(docs, predictions, OPTIONS).metrics["ciou"] < 1.0


def test_empty_and_multi_mask_predictions():
    task = get_task("res_refcoco_val")
    full = RLE.from_mask(np.ones((4, 4), dtype=np.uint8))
    docs = [doc(0, 0, 0, 11), doc(1, 1, 0, 12, image_id=2)]
    predictions = {
        "0_0": Prediction("0_0", "no mask", (Phrase("s0", ()),)),
        "1_1": Prediction("1_1", "two", (Phrase("s1", (docs[1].phrases[0].masks[0], full)),)),
    }
    result = task.score(docs, predictions, OPTIONS)
    assert [row["iou"] for row in result.per_sample] == [0.0, pytest.approx(4 / (4 + 1e-5))]  # first mask
    assert [row["predicted_masks"] for row in result.per_sample] == [0, 2]
    assert any("no mask" in n for n in result.notes) and any("only the first" in n for n in result.notes)


def test_predictions_round_trip_through_jsonl(refcoco_val, tmp_path):
    task, docs = refcoco_val
    predictions = oracle(task, docs)
    path = tmp_path / "preds.jsonl"
    write_prediction_jsonl(path, list(predictions.values()))
    assert dict(task.read_predictions(path, docs)) == predictions
    run = tmp_path / "run"
    write_prediction_jsonl(run / "predictions" / "res_refcoco_val.jsonl", list(predictions.values()))
    assert dict(task.read_predictions(run, docs)) == predictions


def test_prediction_errors(refcoco_val, tmp_path):
    task, docs = refcoco_val
    predictions = oracle(task, docs)
    with pytest.raises(InputError, match=f"doc {docs[-1].doc_id}: no prediction"):
        task.score(docs, {k: v for k, v in predictions.items() if k != docs[-1].doc_id}, OPTIONS)
    small = RLE.from_mask(np.ones((3, 3), dtype=np.uint8))
    bad = dict(predictions, **{docs[0].doc_id: Prediction(docs[0].doc_id, "", (Phrase("x", (small,)),))})
    with pytest.raises(InputError, match=r"res_refcoco_val: sample '.*': prediction size \[3, 3\]"):
        task.score(docs, bad, OPTIONS)
    path = tmp_path / "preds.jsonl"
    path.write_text("\n".join(json.dumps(p.to_json()) for p in bad.values()))
    with pytest.raises(InputError, match=r"preds.jsonl: line 1 mask 0: RLE size \[3, 3\]"):
        task.read_predictions(path, docs)
    with pytest.raises(InputError, match="unknown RES protocol 'lavt'"):
        task.score(docs, predictions, dataclasses.replace(OPTIONS, protocol="lavt"))
    with pytest.raises(InputError, match="no referring expressions"):
        task.score([], {}, OPTIONS)


def test_bad_params_and_missing_data(tmp_path):
    spec = all_specs()["res_refcoco_val"]
    wrong_split = get_task("res_refcoco_val").__class__(dataclasses.replace(spec, params={**spec.params, "split": "test"}))
    with pytest.raises(InputError, match=r"res_refcoco_val.yaml: split: unknown split 'test' for refs\(unc\).p"):
        wrong_split.docs(DataPaths(tmp_path))
    no_split = get_task("res_refcoco_val").__class__(dataclasses.replace(spec, params={}))
    with pytest.raises(InputError, match="params: a res task needs"):
        no_split.docs(DataPaths(tmp_path))
    with pytest.raises(InputError, match=r"refs\(unc\).p: refer refs pickle not found"):
        get_task("res_refcoco_val").docs(DataPaths(tmp_path))
