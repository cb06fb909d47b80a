"""The captioning family on the bundled sample: GLaMM region-captioning files as upstream reads them, requests,
the oracle scored through `task.score` exactly as scoring the same references directly, predictions read back,
and one-line errors. Only `test_oracle_scores_like_scoring_the_references_directly` needs Java (one METEOR JVM)."""

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions, TaskSpec
from gcgbench.api.types import Prediction
from gcgbench.data.captioning import caption_results
from gcgbench.runner.run_dir import write_prediction_jsonl
from gcgbench.data.sample import write_sample
from gcgbench.data.sample.captioning import (
    REFCOCOG_CAPTIONS,
    VG_CAPTIONS,
    VG_IMAGES,
    write_captioning_sample,
)
from gcgbench.data.sample.scenes import make_scenes
from gcgbench.metrics import captions
from gcgbench.tasks.captioning import CaptioningTask
from gcgbench.tasks.registry import get_task

N_IMAGES = 6
GLAMM_REGION_PROMPT = "Can you provide me with a detailed description of the region in the picture marked by <bbox>?"
TASK_FILES = {"regcap_refcocog_val": REFCOCOG_CAPTIONS, "regcap_vg_test": VG_CAPTIONS}


def needs_java(test):
    skip = pytest.mark.skipif(shutil.which("java") is None, reason="no `java` on PATH: METEOR and the PTB tokenizer need one")
    return skip(pytest.mark.java(test))


def write_all(root: Path) -> Path:
    write_sample(root, n_images=N_IMAGES)
    write_captioning_sample(root, make_scenes(N_IMAGES))
    return root


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_all(tmp_path_factory.mktemp("sample"))


def hashes(root: Path) -> dict[str, str]:
    files = [root / REFCOCOG_CAPTIONS, root / VG_CAPTIONS, *sorted((root / VG_IMAGES).iterdir())]
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_sample_files_are_byte_identical_across_runs(sample, tmp_path):
    assert hashes(sample) == hashes(write_all(tmp_path))
    # alone (no write_sample first) the RefCOCOg file writes the COCO images it needs, with the same bytes
    write_captioning_sample(tmp_path / "alone", make_scenes(N_IMAGES))
    image = next(iter(json.loads((sample / REFCOCOG_CAPTIONS).read_text())["images"]))["file_name"]
    relative = f"coco_2014/train2014/{image}"
    assert (tmp_path / "alone" / relative).read_bytes() == (sample / relative).read_bytes()


@pytest.mark.parametrize("task_name", sorted(TASK_FILES))
def test_sample_reads_as_glamm_reads_it(sample, task_name):
    """RegionCapDDP: region of image N = coco.anns[N]; COCOEvalCap references = imgToAnns; loadRes accepts ours."""
    task = get_task(task_name)
    docs = task.docs(DataPaths(sample))
    coco = COCO(str(sample / TASK_FILES[task_name]))
    assert [str(i) for i in coco.imgs] == [d.doc_id for d in docs]
    for doc in docs:
        image_id = doc.truth["source_image_id"]
        assert doc.inputs["region"] == coco.anns[image_id]["bbox"]
        assert doc.truth["captions"] == [a["caption"] for a in coco.imgToAnns[image_id]]
        with Image.open(doc.image_path) as image:
            assert image.size == (doc.width, doc.height)
        x, y, w, h = doc.inputs["region"]
        assert 0 <= x and 0 <= y and x + w <= doc.width and y + h <= doc.height and w > 0 and h > 0
    predictions = {d.doc_id: task.ground_truth_prediction(d) for d in docs}
    assert sorted(coco.loadRes(caption_results(docs, predictions)).getImgIds()) == sorted(coco.imgs)


def test_requests_carry_the_glamm_prompt_and_the_pixel_box(sample):
    task = get_task("regcap_vg_test")
    docs = task.docs(DataPaths(sample))
    assert len(docs) == sum(len(s.shapes) for s in make_scenes(N_IMAGES))
    assert len({d.truth["image_id"] for d in docs}) == N_IMAGES  # several regions per picture
    request = task.requests(docs[1])
    assert (request.kind, request.prompt, request.doc_id) == ("caption", GLAMM_REGION_PROMPT, docs[1].doc_id)
    assert request.inputs == {"region": docs[1].inputs["region"]}
    assert (request.height, request.width, request.image_path) == (docs[1].height, docs[1].width, docs[1].image_path)
    assert get_task("regcap_refcocog_val").spec.prompt == GLAMM_REGION_PROMPT


@needs_java
def test_oracle_scores_like_scoring_the_references_directly(sample, monkeypatch):
    """One METEOR JVM (~12 s): the real score_captions is spied on; CIDEr-D is recomputed with pycocoevalcap's
    Cider on the same tokenised captions, METEOR of an exact match is 1."""
    from pycocoevalcap.cider.cider import Cider

    task = get_task("regcap_vg_test")
    docs = task.docs(DataPaths(sample))
    seen: list = []
    real = captions.score_captions

    def spy(references, predictions, metrics, **sources):
        seen.append((dict(references), dict(predictions), real(references, predictions, metrics, **sources)))
        return seen[-1][2]

    monkeypatch.setattr(captions, "score_captions", spy)
    oracle = {d.doc_id: task.ground_truth_prediction(d) for d in docs}
    result = task.score(docs, oracle, ScoringOptions(bootstrap_resamples=50))
    (references, predictions, scored), = seen
    assert references == {d.doc_id: d.truth["captions"] for d in docs}
    assert predictions == {d.doc_id: d.truth["captions"][0] for d in docs}
    cider, per_doc = Cider().compute_score(scored.tokenized_references,
                                           {k: [v] for k, v in scored.tokenized_predictions.items()})
    assert result.metrics == {"meteor": pytest.approx(1.0), "cider": float(cider)}
    assert result.metrics["meteor"] == scored.corpus["meteor"] and result.metrics["cider"] > 0
    assert result.n_samples == len(docs) and set(result.intervals) == {"meteor", "cider"}
    assert [row["doc_id"] for row in result.per_sample] == [d.doc_id for d in docs]
    assert [row["cider"] for row in result.per_sample] == pytest.approx(list(per_doc))
    assert all(row["meteor"] == pytest.approx(1.0) and row["image_id"].endswith(".jpg") for row in result.per_sample)
    assert result.metric_config["mode"] == "region" and result.metric_config["bootstrap"]["resamples"] == 50
    assert result.metric_config["bootstrap"]["clusters"] == N_IMAGES and result.notes == []


def fake_scores(calls: list):
    """A stand-in for score_captions that records what the task passed (no Java)."""
    def score(references, predictions, metrics, **sources):
        calls.append((dict(references), dict(predictions), tuple(metrics)))
        ids = tuple(references)
        per_image = {"meteor": np.linspace(0.1, 0.5, len(ids)), "cider": np.linspace(1.0, 2.0, len(ids))}
        return captions.CaptionResult(ids, {"meteor": 0.3, "cider": 1.5}, per_image)
    return score


def test_image_mode_scores_every_reference_per_image(tmp_path, monkeypatch):
    data = {"images": [{"id": 1, "file_name": "1.jpg", "height": 4, "width": 4},
                       {"id": 2, "file_name": "2.jpg", "height": 4, "width": 4}],
            "annotations": [{"id": 5, "image_id": 2, "caption": "two dogs"}, {"id": 6, "image_id": 1, "caption": "a cat"},
                            {"id": 7, "image_id": 2, "caption": "dogs playing"}]}
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "captions_val2017.json").write_text(json.dumps(data))
    spec = TaskSpec("caption_test", "captioning", "1", "", {"annotations": "ann/captions_val2017.json", "images": "img"},
                    {"annotations": None}, "Could you please give me a detailed description of the image?",
                    ("meteor", "cider"), {"mode": "image"})
    task = CaptioningTask(spec)
    docs = task.docs(DataPaths(tmp_path))
    calls: list = []
    monkeypatch.setattr(captions, "score_captions", fake_scores(calls))
    predictions = {"1": Prediction("1", "a cat"), "2": Prediction("2", ""), "9": Prediction("9", "not a doc")}
    result = task.score(docs, predictions, ScoringOptions(bootstrap_resamples=20))
    assert calls == [({"1": ["a cat"], "2": ["two dogs", "dogs playing"]}, {"1": "a cat", "2": ""}, ("meteor", "cider"))]
    assert result.metrics == {"meteor": 0.3, "cider": 1.5}
    assert [(r["doc_id"], r["image_id"], r["cider"]) for r in result.per_sample] == [("1", "1.jpg", 1.0), ("2", "2.jpg", 2.0)]
    assert set(result.intervals) == {"meteor", "cider"}
    assert result.notes == ["1 empty prediction(s) score 0: 2"]
    assert task.requests(docs[0]).inputs == {} and task.requests(docs[0]).kind == "caption"


def test_predictions_read_back_from_jsonl_glamm_file_and_run_folder(sample, tmp_path):
    task = get_task("regcap_refcocog_val")
    docs = task.docs(DataPaths(sample))
    written = {d.doc_id: Prediction(d.doc_id, f"caption {i}") for i, d in enumerate(docs)}
    write_prediction_jsonl(tmp_path / "p.jsonl", list(written.values()))
    assert task.read_predictions(tmp_path / "p.jsonl", docs) == written
    run = tmp_path / "run"
    write_prediction_jsonl(run / "predictions" / "regcap_refcocog_val.jsonl", list(written.values()))
    assert task.read_predictions(run, docs) == written
    (tmp_path / "glamm.json").write_text(json.dumps(caption_results(docs, written), indent=2))
    assert task.read_predictions(tmp_path / "glamm.json", docs) == written
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "ckpt_refcocog_0.json").write_text(json.dumps(caption_results(docs, written)))
    assert task.read_predictions(tmp_path / "results", docs) == written


def test_errors_name_the_file_and_the_record(sample, tmp_path):
    task = get_task("regcap_vg_test")
    with pytest.raises(InputError, match=r"test_caption\.json: region-caption annotation file not found"):
        task.docs(DataPaths(tmp_path))
    no_mode = CaptioningTask(replace(task.spec, params={}))
    with pytest.raises(InputError, match=r"regcap_vg_test\.yaml: params\.mode: must be one of region, image, got None"):
        no_mode.docs(DataPaths(sample))
    docs = task.docs(DataPaths(sample))
    with pytest.raises(InputError, match=r"predictions: 1 of \d+ docs have no prediction"):
        task.score(docs, {d.doc_id: task.ground_truth_prediction(d) for d in docs[1:]}, ScoringOptions())
    templated = CaptioningTask(replace(task.spec, prompt="Describe {box}."))
    with pytest.raises(InputError, match=r"regcap_vg_test\.yaml: prompt: cannot fill the template"):
        templated.requests(docs[0])
    write_prediction_jsonl(tmp_path / "p.jsonl", [Prediction("nine", "x")])
    with pytest.raises(InputError, match=r"p\.jsonl: line 1: doc_id 'nine' is not a doc of this task"):
        task.read_predictions(tmp_path / "p.jsonl", docs)
