"""Hostile and broken input ends in one line and a non-zero exit, never a traceback (issue 15, item 12):
non-UTF-8 files, boxes of the wrong type, 100 000-deep JSON, an RLE of 10^12 pixels, a `--model` that is
no backend or whose module raises on import, a bad `--output` found before inference, NaN written into
predictions, mask errors inside phrases with their line, data-config overrides that name nothing,
`--data-root` that does not exist; plus the small messages: a cached re-run says so, MME tables say
points, `export --format glamm` of a RES run says the format is GCG-only, the renamed max-matching recall
is read under its former name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample

TASK = "res_refcoco_val"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


@pytest.fixture(scope="module")
def oracle_lines(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    assert main(["infer", "--model", "oracle", "--task", TASK, "--data-root", str(sample), "--output", str(out),
                 "--no-cache"]) == 0
    return (out / "predictions" / f"{TASK}.jsonl").read_text().splitlines()


def one_line_error(argv, capsys, status=2) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == status, captured
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, captured.err
    return lines[0]


def score(sample, path):
    return ["score", "--task", TASK, "--predictions", str(path), "--data-root", str(sample), "--bootstrap", "0"]


def with_first(oracle_lines, tmp_path, change, name="changed.jsonl") -> Path:
    first = json.loads(oracle_lines[0])
    change(first)
    path = tmp_path / name
    path.write_text("\n".join([json.dumps(first)] + oracle_lines[1:]) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ files


def test_non_utf8_files(sample, oracle_lines, tmp_path, capsys):
    predictions = tmp_path / "latin1.jsonl"
    predictions.write_bytes(("\n".join(oracle_lines) + "\n").encode().replace(b'"text":"', b'"text":"\xe9', 1))
    assert "line 1: not UTF-8 text" in one_line_error(score(sample, predictions), capsys)

    config = tmp_path / "data.yaml"
    config.write_bytes(b"data_root: /caf\xe9\n")
    assert "not UTF-8 text" in one_line_error(["tasks", "--data-config", str(config)], capsys)

    board = tmp_path / "boards" / "gcg.json"
    board.parent.mkdir()
    board.write_bytes(b'{"schema_version": 1, "entries": [], "x": "\xff"}')
    assert "not UTF-8 text" in one_line_error(["leaderboard", "show", "gcg_val", "--file", str(board)], capsys)

    results = tmp_path / "run" / "results.json"
    results.parent.mkdir()
    results.write_bytes(b'{"results": "\xff"}')
    assert "not UTF-8 text" in one_line_error(["check", str(results), "--against", str(results)], capsys)


@pytest.mark.parametrize("boxes, where", [
    ("abc", "boxes: must be a list"),
    ([["a", 1, 2, 3]], "boxes[0]: a box is 4 finite numbers"),
    ([1, 2], "boxes[0]: a box is 4 finite numbers"),
    ([[1, 2, 3]], "boxes[0]: a box is 4 finite numbers"),
    ([[True, 2, 3, 4]], "boxes[0]: a box is 4 finite numbers"),
])
def test_boxes_of_the_wrong_type(sample, oracle_lines, tmp_path, capsys, boxes, where):
    path = with_first(oracle_lines, tmp_path, lambda p: p.update(boxes=boxes))
    assert f"line 1 {where}" in one_line_error(score(sample, path), capsys)


def test_deeply_nested_json(sample, tmp_path, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    predictions = tmp_path / "deep.jsonl"
    predictions.write_text(deep + "\n")
    assert "line 1: JSON nested too deeply" in one_line_error(score(sample, predictions), capsys)
    results = tmp_path / "results.json"
    results.write_text(deep)
    assert "nested too deeply" in one_line_error(["leaderboard", "add", str(results), "--dir", str(tmp_path)], capsys)


@pytest.mark.parametrize("rle", [
    {"size": [10**6, 10**6], "counts": "0"},
    {"size": [10**6, 10**6], "counts": [10**12]},
])
def test_an_rle_of_a_trillion_pixels(sample, oracle_lines, tmp_path, capsys, rle):
    path = with_first(oracle_lines, tmp_path, lambda p: p["phrases"][0]["masks"].__setitem__(0, rle))
    assert "line 1 phrases[0].masks[0]: RLE 'size' 1000000x1000000 exceeds" in one_line_error(score(sample, path), capsys)


def test_mask_errors_inside_phrases_name_the_line(sample, oracle_lines, tmp_path, capsys):
    bad = {"size": [2, 2], "counts": "zz"}
    path = with_first(oracle_lines, tmp_path, lambda p: p["phrases"][0]["masks"].__setitem__(0, bad))
    assert "line 1 phrases[0].masks[0]: RLE 'counts' is not valid" in one_line_error(score(sample, path), capsys)


def test_nan_in_predictions_is_refused(sample, oracle_lines, tmp_path, capsys):
    path = with_first(oracle_lines, tmp_path, lambda p: p.update(extras={"peak": float("nan")}))
    assert "NaN" in path.read_text()  # Python writes the non-JSON token
    assert "line 1: NaN is not JSON" in one_line_error(score(sample, path), capsys)


def test_a_backend_answering_nan_is_stopped_before_anything_is_cached(sample, tmp_path, capsys):
    message = one_line_error(["infer", "--model", "tests.hostile_backends:NanBackend", "--task", TASK,
                              "--data-root", str(sample), "--output", str(tmp_path / "out"),
                              "--cache", str(tmp_path / "cache")], capsys)
    assert "not valid JSON" in message and "NaN" in message
    from gcgbench.runner.store import GenerationCache

    store = GenerationCache(tmp_path / "cache")
    assert store.info().entries == 0
    store.close()


# ---------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize("model, message", [
    ("os:system", "'os:system' is not a backend class"),
    ("tests.hostile_backends:RAISES", "has no 'RAISES'"),
    ("tests.raises_on_import:Backend", "importing 'tests.raises_on_import' failed (RuntimeError: refusing"),
    ("no_such_module_xyz:Backend", "importing 'no_such_module_xyz' failed (ModuleNotFoundError"),
])
def test_a_model_that_is_no_backend(sample, tmp_path, capsys, model, message):
    assert message in one_line_error(["run", "--model", model, "--task", TASK, "--data-root", str(sample),
                                      "--no-cache", "--output", str(tmp_path)], capsys)


def test_a_bad_output_is_found_before_inference(sample, tmp_path, capsys):
    log = tmp_path / "generated.log"
    existing = tmp_path / "a-file"
    existing.write_text("")
    backend = ["--model", "tests.counting_backend:CountingBackend", "--model-args", f"log={log}"]
    for output, message in ((existing, "--output names an existing file"),
                            (existing / "below", "--output folder cannot be written")):
        for command in ("run", "infer"):
            assert message in one_line_error([command, *backend, "--task", TASK, "--data-root", str(sample),
                                              "--no-cache", "--output", str(output)], capsys)
    assert not log.exists()  # nothing was generated
    assert "--output names an existing file" in one_line_error(
        ["score", "--task", TASK, "--predictions", str(existing), "--data-root", str(sample), "--output",
         str(existing)], capsys)


@pytest.mark.parametrize("overrides, message", [
    ({"res_refcoco_vall": {"images": "x"}}, "overrides.res_refcoco_vall: no task 'res_refcoco_vall'"),
    ({TASK: {"imagez": "x"}}, f"overrides.{TASK}: {TASK} has no file role(s) ['imagez']"),
    ({"gcg": {"images": "x"}}, "overrides.gcg: 'gcg' is an alias: write 'gcg_val'"),
])
def test_data_config_overrides_that_name_nothing(sample, tmp_path, capsys, overrides, message):
    config = tmp_path / "data.yaml"
    config.write_text(json.dumps({"data_root": str(sample), "overrides": overrides}))
    for argv in (["tasks"], ["validate", "--task", TASK], ["infer", "--model", "oracle", "--task", TASK, "--no-cache",
                                                           "--output", str(tmp_path / "out")]):
        assert message in one_line_error([*argv, "--data-config", str(config)], capsys)


def test_data_root_that_does_not_exist_or_is_a_file(tmp_path, capsys):
    assert "data root not found" in one_line_error(["tasks", "--data-root", str(tmp_path / "data")], capsys)
    (tmp_path / "file").write_text("")
    assert "data root is a file, not a folder" in one_line_error(["tasks", "--data-root", str(tmp_path / "file")],
                                                                 capsys)


def test_export_glamm_of_a_res_run_says_gcg_only(sample, tmp_path, capsys):
    assert main(["infer", "--model", "oracle", "--task", TASK, "--data-root", str(sample), "--output",
                 str(tmp_path / "run"), "--no-cache"]) == 0
    capsys.readouterr()
    message = one_line_error(["export", str(tmp_path / "run"), "--task", TASK, "--output", str(tmp_path / "x")], capsys)
    assert "glamm is a GCG-only format" in message and "res task" in message
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------- messages


def test_a_cached_rerun_says_how_many_predictions_came_from_the_cache(sample, tmp_path, capsys):
    argv = ["infer", "--model", "oracle", "--task", TASK, "--data-root", str(sample), "--cache", str(tmp_path / "c")]
    assert main([*argv, "--output", str(tmp_path / "one")]) == 0
    first = capsys.readouterr().err
    assert main([*argv, "--output", str(tmp_path / "two")]) == 0
    second = capsys.readouterr().err
    total = len((tmp_path / "one" / "predictions" / f"{TASK}.jsonl").read_text().splitlines())
    assert f"{TASK}: 0 of {total} predictions from the cache" in first and f"{total} generated" in first
    assert f"{TASK}: {total} of {total} predictions from the cache" in second and ", 0 generated" in second


def test_mme_tables_say_points():
    from gcgbench.cli.render import scale_label

    config = {"points_metrics": True}
    assert scale_label({"perception": 1500.0, "cognition": 300.0}, config) == "points, as MME reports them"
    assert "points" in scale_label({"accuracy": 0.5, "perception": 1500.0}, config)
    assert scale_label({"ciou": 0.5}, {}) == "fractions ×100"


def test_max_matching_recall_is_read_under_its_former_name(tmp_path):
    from gcgbench.leaderboard import from_results
    from tests.test_leaderboard import results_payload, write_results

    payload = results_payload("m", metrics={"mask_recall": 0.4, "mask_recall_strict": 0.45})
    read, _ = from_results.read_results(write_results(tmp_path, payload))
    assert read["results"]["gcg_val"] == {"mask_recall": 0.4, "mask_recall_max_matching": 0.45}
    assert "mask_recall_max_matching" in read["intervals"]["gcg_val"]
    for folder in ("gcgbench", "tasks", "leaderboards", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".yaml", ".json", ".md"} and path.name != "gcg.py":
                assert "mask_recall_strict" not in path.read_text(encoding="utf-8"), path


# ---------------------------------------------------------------------------------------------- torchrun


@pytest.mark.slow
def test_torchrun_prints_the_sample_notice_once_and_labels_each_ranks_share(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed")
    from gcgbench.data.sample import sample_root

    sample_root()  # made once here, not raced by the two ranks
    environment = dict(os.environ, COLUMNS="200")
    done = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29531", "-m", "gcgbench", "infer",
                           "--model", "oracle", "--task", TASK, "--no-cache", "--output", str(tmp_path / "two")],
                          capture_output=True, text=True, timeout=300, env=environment, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("using the bundled synthetic sample") == 1, done.stderr
    total = len((tmp_path / "two" / "predictions" / f"{TASK}.jsonl").read_text().splitlines())
    assert f"{TASK} (rank 0: {(total + 1) // 2} of {total})" in done.stderr, done.stderr
