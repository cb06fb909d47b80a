"""`gcgbench run/infer/validate/tasks/models` through the CLI on the bundled sample: the oracle scores
perfectly through the whole runner path, replay of its predictions gives identical results, and
problems are found before any generation."""

import json
import shutil

import pytest

from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample

pytestmark = pytest.mark.java


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


def comparable(results):
    """Everything but wall times and the command line."""
    results = json.loads(json.dumps(results))
    results.pop("timing")
    results["config"].pop("command")
    return results


def test_oracle_run_is_perfect_and_replay_reproduces_it(sample, tmp_path, capsys):
    first = tmp_path / "oracle"
    assert main(["run", "--model", "oracle", "--task", "gcg_val", "--data-root", str(sample), "--text-model", "minilm",
                 "--output", str(first), "--bootstrap", "20", "--batch-size", "3"]) == 0
    results = json.loads((first / "results.json").read_text())
    assert all(v == pytest.approx(10.0 if k == "cider" else 1.0) for k, v in results["results"]["gcg_val"].items())
    assert results["config"]["fingerprint"] == {"name": "oracle", "args": {}}
    assert results["config"]["batch_size"] == 3 and results["versions"] == {"gcg_val": "1"}
    lines = (first / "predictions" / "gcg_val.jsonl").read_text().splitlines()
    assert len(lines) == results["n_samples"]["gcg_val"] == 4

    replayed = tmp_path / "replay"
    assert main(["run", "--model", "replay", "--model-args", f"predictions={first}", "--task", "gcg_val",
                 "--data-root", str(sample), "--text-model", "minilm", "--output", str(replayed), "--bootstrap", "20"]) == 0
    again = json.loads((replayed / "results.json").read_text())
    assert again["results"] == results["results"] and again["intervals"] == results["intervals"]

    rescored = tmp_path / "rescored"
    assert main(["score", "--task", "gcg_val", "--predictions", str(first), "--data-root", str(sample),
                 "--text-model", "minilm", "--output", str(rescored), "--bootstrap", "20"]) == 0
    assert json.loads((rescored / "results.json").read_text())["results"] == results["results"]


def test_infer_writes_predictions_only_and_limit_applies(sample, tmp_path):
    assert main(["infer", "--model", "oracle", "--task", "gcg_val,gcg_test", "--data-root", str(sample),
                 "--limit", "2", "--output", str(tmp_path)]) == 0
    assert not (tmp_path / "results.json").exists()
    for task in ("gcg_val", "gcg_test"):
        assert len((tmp_path / "predictions" / f"{task}.jsonl").read_text().splitlines()) == 2


def test_preflight_fails_fast_on_missing_files(sample, tmp_path, capsys):
    broken = tmp_path / "data"
    shutil.copytree(sample, broken)
    (broken / "GranDf/annotations/val_test/val_gcg_coco_mask_gt.json").unlink()
    assert main(["run", "--model", "oracle", "--task", "gcg_val", "--data-root", str(broken),
                 "--text-model", "minilm", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "preflight found 1 problem(s)" in err and "masks:" in err and "val_gcg_coco_mask_gt.json not found" in err
    assert not (tmp_path / "out").exists()


def test_validate_reports_each_problem_on_one_line(sample, tmp_path, capsys):
    assert main(["validate", "--task", "gcg_val", "--data-root", str(sample), "--text-model", "minilm"]) == 0
    assert "ready" in capsys.readouterr().out
    broken = tmp_path / "data"
    shutil.copytree(sample, broken)
    image = next((broken / "GranDf/GranDf_HA_images/val_test").glob("*.jpg"))
    image.write_bytes(b"not a jpeg")
    assert main(["validate", "--task", "gcg_val", "--data-root", str(broken), "--text-model", "/nowhere"]) == 2
    out = capsys.readouterr().out
    assert "unreadable image" in out and "text-model" in out and "2 problem(s)" in out


def test_unknown_backend_argument_and_task_are_one_line(sample, capsys):
    assert main(["run", "--model", "oracle", "--model-args", "temperature=1", "--task", "gcg_val",
                 "--data-root", str(sample), "--text-model", "minilm"]) == 2
    assert "oracle takes no argument(s) ['temperature']" in capsys.readouterr().err
    assert main(["run", "--model", "nope", "--task", "gcg_val", "--data-root", str(sample), "--text-model", "minilm"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


def test_tasks_and_models_list(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "gcg_val" in out and "present" in out
    assert main(["models"]) == 0
    assert "replay" in capsys.readouterr().out


def test_export_to_glamm_layout_scores_like_the_run(sample, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["infer", "--model", "oracle", "--task", "gcg_val", "--data-root", str(sample), "--output", str(run_dir)]) == 0
    assert main(["export", str(run_dir), "--task", "gcg_val", "--output", str(tmp_path / "glamm")]) == 0
    files = sorted((tmp_path / "glamm").glob("*.json"))
    assert len(files) == 4 and set(json.loads(files[0].read_text())) == {"image_id", "caption", "phrases", "pred_masks"}
    assert main(["score", "--task", "gcg_val", "--predictions", str(tmp_path / "glamm"), "--data-root", str(sample),
                 "--text-model", "minilm", "--bootstrap", "0", "--output", str(tmp_path / "scored")]) == 0
    assert json.loads((tmp_path / "scored" / "results.json").read_text())["results"]["gcg_val"]["mask_recall"] == 1.0
