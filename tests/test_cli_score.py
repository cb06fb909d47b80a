"""`gcgbench score` end to end on the bundled sample split: results.json, perfect scores for ground truth,
one-line errors and exit status 2 for bad input."""

import json
import subprocess
import sys

import pytest

from gcgbench.cli.app import main
from gcgbench.api.task import DataPaths
from gcgbench.data.grandf import glamm_prediction_json
from gcgbench.runner.run_dir import write_prediction_jsonl
from gcgbench.data.sample import write_sample
from gcgbench.tasks.registry import get_task

pytestmark = pytest.mark.java


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


@pytest.fixture(scope="module")
def ground_truth_folder(sample, tmp_path_factory):
    folder = tmp_path_factory.mktemp("preds")
    task = get_task("gcg_val")
    for doc in task.docs(DataPaths(sample)):
        (folder / f"{doc.doc_id}.json").write_text(json.dumps(glamm_prediction_json(task.ground_truth_prediction(doc))))
    return folder


def test_ground_truth_scores_perfectly_and_results_are_complete(sample, ground_truth_folder, tmp_path):
    code = main(["score", "--task", "gcg_val", "--predictions", str(ground_truth_folder), "--data-root", str(sample),
                 "--text-model", "minilm", "--output", str(tmp_path), "--bootstrap", "50"])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    metrics = results["results"]["gcg_val"]
    for name in ("meteor", "ap50", "miou", "mask_recall", "mask_recall_max_matching"):
        assert metrics[name] == pytest.approx(1.0), name
    assert metrics["cider"] == pytest.approx(10.0)  # CIDEr-D of a caption against itself: 10 × mean cosine 1
    assert results["n_samples"]["gcg_val"] == 4
    assert set(results["intervals"]["gcg_val"]) == set(metrics)
    config = results["config"]
    assert len(config["task_hashes"]) == 2 and all(len(h) == 64 for h in config["task_hashes"].values())
    assert "all-MiniLM-L6-v2" in results["metric_config"]["gcg_val"]["text_similarity_model"]
    assert config["package_versions"]["pycocotools"]


def test_jsonl_predictions_score_like_the_glamm_folder(sample, ground_truth_folder, tmp_path):
    task = get_task("gcg_val")
    docs = task.docs(DataPaths(sample))
    write_prediction_jsonl(tmp_path / "p.jsonl", [task.ground_truth_prediction(d) for d in docs])
    from_jsonl = task.read_predictions(tmp_path / "p.jsonl", docs)
    from_folder = task.read_predictions(ground_truth_folder, docs)
    # GLaMM files carry no phrase spans; everything else is identical
    assert {k: [(p.text, p.masks) for p in v.phrases] for k, v in from_jsonl.items()} == \
        {k: [(p.text, p.masks) for p in v.phrases] for k, v in from_folder.items()}
    assert {k: v.text for k, v in from_jsonl.items()} == {k: v.text for k, v in from_folder.items()}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "gcgbench", *args], capture_output=True, text=True, timeout=300)


def test_malformed_prediction_file_is_one_line_and_exit_2(sample, ground_truth_folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in ground_truth_folder.iterdir():
        (broken / path.name).write_text(path.read_text())
    victim = sorted(broken.iterdir())[0]
    body = json.loads(victim.read_text())
    body["pred_masks"][0]["size"] = [5, 5]
    victim.write_text(json.dumps(body))
    done = run_cli("score", "--task", "gcg_val", "--predictions", str(broken), "--data-root", str(sample),
                   "--text-model", "minilm")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {victim}: pred_masks[0]: ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "gcg_nope"], "unknown task 'gcg_nope'"),
        (["--task", "gcg_val", "--text-model", "/nowhere/bert"], "/nowhere/bert"),
        (["--task", "gcg_val"], "--text-model"),  # a real data root needs the official text model named
    ],
)
def test_usage_problems_are_one_line(sample, ground_truth_folder, args, message):
    done = run_cli("score", "--predictions", str(ground_truth_folder), "--data-root", str(sample), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_importing_gcgbench_and_its_cli_does_not_import_torch():
    code = "import sys, gcgbench, gcgbench.cli.app, gcgbench.tasks.registry; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
