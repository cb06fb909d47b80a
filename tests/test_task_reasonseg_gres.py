"""The ReasonSeg and gRefCOCO task families through the registry and the CLI on the bundled sample: the seven
tasks listed, docs and LISA's prompts, the oracle perfect through the runner, replay and `score` with
--min-mask-area, validate (both ReasonSeg layouts), llava-as with its embedded tiny model, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.api.types import RLE, Phrase, Prediction
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.leaderboard import rows
from gcgbench.tasks.registry import get_task, task_names

TASKS = ("reasonseg_val", "reasonseg_test", "reasonseg_test_short", "reasonseg_test_long",
         "gres_grefcoco_val", "gres_grefcoco_testA", "gres_grefcoco_testB")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=12)


def test_all_seven_tasks_are_listed(sample, capsys, monkeypatch):
    assert set(TASKS) <= set(task_names())
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["tasks", "--data-root", str(sample)]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in TASKS)


def test_reasonseg_docs_subsets_and_lisa_prompts(sample):
    paths = DataPaths(sample)
    test, short, long = (get_task(n).docs(paths) for n in ("reasonseg_test", "reasonseg_test_short", "reasonseg_test_long"))
    assert sorted(d.doc_id for d in short + long) == sorted(d.doc_id for d in test)
    assert {d.inputs["is_sentence"] for d in short} == {False} and {d.inputs["is_sentence"] for d in long} == {True}
    task = get_task("reasonseg_test")
    for doc in test:
        assert doc.doc_id == Path(doc.image_path).stem and doc.truth["image_id"] == doc.doc_id
        request = task.requests(doc)
        text = doc.inputs["expression"]
        expected = (f"{text} Please output segmentation mask." if doc.inputs["is_sentence"]
                    else f"What is {text} in this image? Please output segmentation mask.")
        assert request.kind == "segment" and request.prompt == expected and request.inputs["expression"] == text


def test_oracle_is_perfect_through_the_runner_and_replay_and_score_agree(sample, tmp_path):
    out = tmp_path / "oracle"
    assert main(["run", "--model", "oracle", "--task", "reasonseg_val,gres_grefcoco_val", "--data-root", str(sample),
                 "--output", str(out), "--bootstrap", "30", "--no-cache"]) == 0
    results = json.loads((out / "results.json").read_text())
    for name in ("reasonseg_val", "gres_grefcoco_val"):
        assert results["results"][name] and all(v == pytest.approx(1.0, abs=1e-4) for v in results["results"][name].values())
        assert set(results["intervals"][name]) == set(results["results"][name])
    config = results["metric_config"]
    assert config["gres_grefcoco_val"]["min_mask_area"] == 1 and config["gres_grefcoco_val"]["nt_counts"]["FN"] == 0
    assert config["reasonseg_val"]["protocol"] == "lisa" and "answer_paths" in config["reasonseg_val"]
    replayed = tmp_path / "replayed"
    assert main(["run", "--model", "replay", "--model-args", f"predictions={out}", "--task",
                 "reasonseg_val,gres_grefcoco_val", "--data-root", str(sample), "--output", str(replayed),
                 "--bootstrap", "30", "--no-cache"]) == 0
    again = json.loads((replayed / "results.json").read_text())
    assert again["results"] == results["results"] and again["intervals"] == results["intervals"]
    rescored = tmp_path / "rescored"
    assert main(["score", "--task", "gres_grefcoco_val", "--predictions", str(out), "--data-root", str(sample),
                 "--output", str(rescored), "--bootstrap", "30", "--min-mask-area", "100000"]) == 0
    again = json.loads((rescored / "results.json").read_text())
    assert again["metric_config"]["gres_grefcoco_val"]["min_mask_area"] == 100000
    assert again["results"]["gres_grefcoco_val"]["t_acc"] == 0.0  # every mask now says "no target"
    assert again["results"]["gres_grefcoco_val"]["n_acc"] == 1.0
    # `check` recomputes every metric from the per-sample rows (paired bootstraps)
    for run, name, family in ((rescored, "gres_grefcoco_val", "gres"), (out, "reasonseg_val", "reasonseg")):
        stored = json.loads((run / "results.json").read_text())["results"][name]
        found = rows.row_metrics(family, "lisa", rows.read_rows(run, name), stored)
        assert set(found.verified(stored)) == {k for k, v in stored.items() if not np.isnan(v)}


def test_reasonseg_protocols_are_recorded_and_unknown_ones_refused(sample):
    task = get_task("reasonseg_val")
    docs = task.docs(DataPaths(sample))
    empty = {d.doc_id: Prediction(d.doc_id, "", ()) for d in docs}  # no mask anywhere: U = |T| > 0
    lisa = task.score(docs, empty, ScoringOptions(bootstrap_resamples=0))
    flmm = task.score(docs, empty, ScoringOptions(bootstrap_resamples=0, protocol="flmm"))
    assert lisa.metric_config["protocol"] == "lisa" and flmm.metric_config["protocol"] == "flmm"
    assert lisa.metrics == flmm.metrics == {"giou": 0.0, "ciou": 0.0}
    with pytest.raises(InputError, match="unknown ReasonSeg protocol 'mmdet'"):
        task.score(docs, empty, ScoringOptions(protocol="mmdet"))
    gres_task = get_task("gres_grefcoco_val")
    gres_docs = gres_task.docs(DataPaths(sample))
    oracle = {d.doc_id: gres_task.ground_truth_prediction(d) for d in gres_docs}
    result = gres_task.score(gres_docs, oracle, ScoringOptions(protocol="flmm", bootstrap_resamples=0))
    assert result.metric_config["protocol"] == "rela" and any("does not apply" in n for n in result.notes)


def test_gres_score_counts_a_mask_on_a_no_target_expression_as_a_miss(sample):
    task = get_task("gres_grefcoco_testB")
    docs = task.docs(DataPaths(sample))
    predictions = {d.doc_id: task.ground_truth_prediction(d) for d in docs}
    for doc in docs:
        if doc.truth["no_target"]:  # answer every no-target expression with a mask over the whole image
            whole = RLE.from_mask(np.ones((doc.height, doc.width), dtype=np.uint8))
            predictions[doc.doc_id] = Prediction(doc.doc_id, "x", (Phrase("x", (whole,)),))
    result = task.score(docs, predictions, ScoringOptions(bootstrap_resamples=0))
    no_target = sum(d.truth["no_target"] for d in docs)
    assert result.metrics["n_acc"] == 0.0 and result.metrics["t_acc"] == 1.0
    assert result.metrics["giou"] == pytest.approx((len(docs) - no_target) / len(docs))
    assert result.metrics["ciou"] < 1.0
    assert {row["doc_id"] for row in result.per_sample} == {d.doc_id for d in docs}


def test_validate_accepts_both_reasonseg_layouts_and_reports_a_missing_one(sample, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["validate", "--task", ",".join(TASKS), "--data-root", str(sample)]) == 0
    bare = tmp_path / "bare"
    shutil.copytree(sample / "reason_seg" / "ReasonSeg" / "val", bare / "ReasonSeg" / "val")
    assert main(["validate", "--task", "reasonseg_val", "--data-root", str(bare)]) == 0
    assert len(get_task("reasonseg_val").docs(DataPaths(bare))) == 6
    capsys.readouterr()
    assert main(["validate", "--task", "reasonseg_test", "--data-root", str(bare)]) == 2   # validate exits 2 when it finds a problem (README)
    assert "reason_seg/ReasonSeg/test not found" in capsys.readouterr().out


def test_bad_annotation_stops_the_run_with_one_line_and_exit_2(sample, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(sample / "reason_seg" / "ReasonSeg" / "val", broken / "ReasonSeg" / "val")
    path = sorted((broken / "ReasonSeg" / "val").glob("*.json"))[0]
    anno = json.loads(path.read_text())
    anno["is_sentence"] = "yes"
    path.write_text(json.dumps(anno))
    capsys.readouterr()
    assert main(["run", "--model", "oracle", "--task", "reasonseg_val", "--data-root", str(broken), "--no-cache",
                 "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "is_sentence" in err and "Traceback" not in err


def test_unknown_params_in_a_task_file_are_input_errors(sample):
    import dataclasses

    task = get_task("reasonseg_val")
    bad = type(task)(dataclasses.replace(task.spec, params={**task.spec.params, "subset": "medium"}))
    with pytest.raises(InputError, match="params.subset"):
        bad.docs(DataPaths(sample))
    gres_task = get_task("gres_grefcoco_val")
    bad = type(gres_task)(dataclasses.replace(gres_task.spec, params={"split": "train"}))
    with pytest.raises(InputError, match="params.split"):
        bad.docs(DataPaths(sample))


@pytest.mark.slow
def test_llava_as_answers_both_tasks_with_its_embedded_tiny_model(sample, tmp_path):
    out = tmp_path / "llava-as"
    assert main(["run", "--model", "llava-as", "--task", "reasonseg_val,gres_grefcoco_val", "--data-root", str(sample),
                 "--limit", "3", "--output", str(out), "--bootstrap", "0", "--no-cache"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["n_samples"] == {"reasonseg_val": 3, "gres_grefcoco_val": 3}
    assert set(results["results"]["gres_grefcoco_val"]) == {"giou", "ciou", "n_acc", "t_acc", "precision_0.7",
                                                             "precision_0.8", "precision_0.9"}
    assert all(len(json.loads(line)["phrases"]) == 1
               for line in (out / "predictions" / "reasonseg_val.jsonl").read_text().splitlines())


@pytest.mark.slow
def test_glamm_answers_both_tasks_on_a_tiny_checkpoint(sample, tmp_path):
    from gcgbench.api.backend import GenerationSettings
    from gcgbench.models.glamm.backend import GlammBackend
    from tests.tiny_checkpoints import write_tiny_glamm
    from gcgbench.runner.evaluate import infer_task

    pytest.importorskip("sentencepiece")
    model_dir, clip_dir = write_tiny_glamm(tmp_path / "glamm")
    backend = GlammBackend.from_args({"model_path": str(model_dir), "clip_path": str(clip_dir), "max_new_tokens": "4"})
    for name in ("reasonseg_test_long", "gres_grefcoco_val"):
        task = get_task(name)
        docs = task.docs(DataPaths(sample))[:2]
        predictions = infer_task(backend, task, docs, GenerationSettings(device="cpu"))
        for doc, prediction in zip(docs, predictions):
            assert prediction.masks() and prediction.masks()[0].size == (doc.height, doc.width)
        result = task.score(docs, {p.doc_id: p for p in predictions}, ScoringOptions(bootstrap_resamples=0))
        assert set(result.metrics) == set(task.spec.metrics)


def test_seeded_leaderboards_hold_lisa_table_1_and_gsva_readme_numbers():
    from gcgbench.leaderboard import files
    from gcgbench.leaderboard.seed import seed_entries

    boards = {board.family: board for board in files.load_all(Path(__file__).resolve().parents[1] / "leaderboards")}
    [lisa] = boards["reasonseg"].find(task="reasonseg_test_long", model="LISA-13B (ft)")
    assert (lisa.protocol, lisa.metrics) == ("lisa", {"giou": 0.54, "ciou": 0.543})
    [gsva] = boards["gres"].find(task="gres_grefcoco_val", model="GSVA-7B")
    assert gsva.protocol == "gsva" and gsva.metrics == {"giou": 0.6347, "ciou": 0.6165, "n_acc": 0.5698, "t_acc": 0.9954}
    seeded = {(e.model, e.task) for e in seed_entries() if e.task.startswith(("reasonseg", "gres"))}
    assert len(seeded) == 8 * 4 + 2 * 3
    assert all(boards[files.family_of(task)].find(task=task, model=model) for model, task in seeded)


@pytest.mark.slow
def test_flmm_answers_both_tasks_on_a_tiny_checkpoint(sample, tmp_path):
    import torch

    from gcgbench.api.backend import GenerationSettings
    from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
    from gcgbench.models.flmm.head import FlmmHeads
    from gcgbench.models.registry import load_backend
    from gcgbench.runner.evaluate import infer_task
    from tests.test_flmm_backend import BACKEND, HEADS, HIDDEN, LAYERS, write_tiny_llava

    write_tiny_llava(tmp_path / "llava")
    torch.manual_seed(1)
    torch.save(build_tiny_sam().state_dict(), tmp_path / "sam.pth")
    torch.save(FlmmHeads(LAYERS, HEADS, HIDDEN, build_tiny_sam()).checkpoint_state(), tmp_path / "flmm.pth")
    backend = load_backend(BACKEND, {"model_path": str(tmp_path / "llava"), "checkpoint": str(tmp_path / "flmm.pth"),
                                     "sam_checkpoint": str(tmp_path / "sam.pth"), "sam_type": TINY_TEST_SAM})
    for name in ("reasonseg_val", "gres_grefcoco_testA"):
        task = get_task(name)
        docs = task.docs(DataPaths(sample))[:2]
        predictions = infer_task(backend, task, docs, GenerationSettings(device="cpu"))
        assert all(len(p.masks()) == 1 and p.masks()[0].size == (d.height, d.width) for d, p in zip(docs, predictions))
        result = task.score(docs, {p.doc_id: p for p in predictions}, ScoringOptions(bootstrap_resamples=0))
        assert set(result.metrics) == set(task.spec.metrics)
