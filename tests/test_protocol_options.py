"""Protocols through the CLI: `--protocol` (scoring) and `protocol=` (generation) are validated before any
model loads, never silently ignored, and recorded in results.json."""

import json

import pytest

import protocol_backend
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample

BACKEND = "protocol_backend:ProtocolBackend"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=4)


def run(sample, output, *extra):
    return main(["run", "--model", BACKEND, "--data-root", str(sample), "--text-model", "minilm", "--bootstrap", "0",
                 "--no-cache", "--output", str(output), *extra])


def test_defaults_per_kind_are_recorded(sample, tmp_path):
    assert run(sample, tmp_path, "--task", "res_refcoco_val", "--protocol", "flmm") == 0
    results = json.loads((tmp_path / "results.json").read_text())
    config = results["config"]
    assert config["generation_protocol"] == {"res_refcoco_val": "first"}
    assert config["scoring_protocol"] == "flmm"
    assert config["model_options"] == {"protocol": "", "max_new_tokens": 4}
    assert config["fingerprint"]["protocols"] == {"grounded_caption": "first", "segment": "first"}
    assert results["metric_config"]["res_refcoco_val"]["protocol"] == "flmm"
    rows = [json.loads(line) for line in (tmp_path / "predictions" / "res_refcoco_val.jsonl").read_text().splitlines()]
    assert {row["extras"]["protocol"] for row in rows} == {"first"}


@pytest.mark.parametrize("extra, message", [
    (["--task", "gcg_val,res_refcoco_val", "--model-args", "protocol=second"],
     "protocol 'second' does not apply to task res_refcoco_val (requests of kind segment); it offers first"),
    (["--task", "gcg_val", "--model-args", "protocol=third"],
     "unknown generation protocol 'third'; this backend has first, second"),
    (["--task", "png_val"], "the backend has no protocol for task png_val (requests of kind segment_phrases)"),
    (["--task", "res_refcoco_val", "--protocol", "official"],
     "--protocol: task res_refcoco_val is scored under lisa, flmm, glamm, not 'official'"),
    (["--task", "gcg_val", "--protocol", "flmm"], "--protocol: task gcg_val is scored one way only"),
    (["--task", "gcg_val", "--model-args", "max_new_tokens=0"], "max_new_tokens: must be at least 1"),
])
def test_refused_before_the_backend_is_built(sample, tmp_path, capsys, extra, message):
    protocol_backend.CONSTRUCTED.clear()
    assert run(sample, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert protocol_backend.CONSTRUCTED == [] and not (tmp_path / "out").exists()


def test_score_refuses_a_protocol_the_task_does_not_know(sample, tmp_path, capsys):
    assert main(["score", "--task", "png_val", "--predictions", str(tmp_path), "--data-root", str(sample),
                 "--protocol", "lisa"]) == 2
    assert "task png_val is scored under official, flmm, not 'lisa'" in capsys.readouterr().err


def test_res_glamm_scoring_scores_the_seeded_three_per_image(sample, tmp_path):
    from gcgbench.api.task import DataPaths
    from gcgbench.data.refer import glamm_selection
    from gcgbench.tasks.registry import get_task

    assert main(["run", "--model", "oracle", "--task", "res_refcoco_val", "--protocol", "glamm", "--seed", "3",
                 "--data-root", str(sample), "--bootstrap", "0", "--no-cache", "--output", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    docs = get_task("res_refcoco_val").docs(DataPaths(sample))
    selected = glamm_selection(docs, 3)
    assert results["n_samples"]["res_refcoco_val"] == len(selected) >= 1
    assert results["metric_config"]["res_refcoco_val"]["protocol"] == "glamm"
    assert results["results"]["res_refcoco_val"]["ciou"] == pytest.approx(1.0)
    by_image = {}
    for doc in selected:
        by_image.setdefault(doc.truth["image_id"], []).append(doc)
    assert max(len(group) for group in by_image.values()) <= 3


def test_glamm_selection_is_numpys_choice_of_three_per_image():
    """`np.random.choice(n, size=3, replace=False)` (RefCOCO_Segm_ds.py) IS `permutation(n)[:3]`; an image with
    fewer than 3 sentences keeps them all, in order (upstream takes `range(n)`)."""
    import numpy as np

    from gcgbench.api.types import Doc
    from gcgbench.data.refer import glamm_conversations, glamm_image_seed, glamm_selection

    docs = [Doc(f"a{i}", None, 1, 1, {"expression": f"a{i}"}, truth={"image_id": 1}) for i in range(7)] + \
           [Doc(f"b{i}", None, 1, 1, {"expression": f"b{i}"}, truth={"image_id": 2}) for i in range(2)]
    chosen = np.random.RandomState(glamm_image_seed(5, 1)).choice(7, size=3, replace=False).tolist()
    assert [d.doc_id for d in glamm_selection(docs, 5)] == [f"a{i}" for i in chosen] + ["b0", "b1"]
    conversations = glamm_conversations(docs, 5)
    assert [len(c) for c in conversations] == [3, 3, 1, 2]
    assert glamm_selection(docs, 6) != glamm_selection(docs, 5)      # another --seed, another draw


def test_every_task_declares_the_kind_of_its_requests(sample):
    from gcgbench.api.errors import GcgbenchError
    from gcgbench.api.task import DataPaths
    from gcgbench.tasks.registry import get_task, task_names

    checked = 0
    for name in task_names():
        task = get_task(name)
        try:
            docs = task.docs(DataPaths(sample))
        except GcgbenchError:
            continue                                   # no sample data for this split
        if docs:
            assert task.requests(docs[0]).kind == task.request_kind, name
            checked += 1
    assert checked >= 5
