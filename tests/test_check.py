"""`gcgbench check`: unchanged runs pass; planted regressions fail (beyond the tolerance, and a small drop
on every image that only the paired bootstrap over per-sample rows calls real); baselines of another
version or protocol are never compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gcgbench.api.types import RLE, Prediction
from gcgbench.data.sample import write_sample
from gcgbench.leaderboard import check as checking
from gcgbench.leaderboard import from_results, rows
from tests.test_leaderboard import REPO, results_payload, run_cli, write_results

TASK = "res_refcoco_val"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=24)


@pytest.fixture(scope="module")
def oracle(sample, tmp_path_factory):
    """An oracle run of RES and PNG with per-sample files and 200-resample intervals."""
    out = tmp_path_factory.mktemp("oracle")
    assert _run(sample, out) == 0
    return out


def _run(sample: Path, out: Path) -> int:
    from gcgbench.cli.app import main

    return main(["run", "--model", "oracle", "--task", f"{TASK},png_val", "--data-root", str(sample),
                 "--bootstrap", "200", "--output", str(out)])


def rescored(sample: Path, oracle: Path, out: Path, change) -> Path:
    """Score the oracle's RES predictions after `change(index, mask) -> mask` on each predicted mask."""
    from gcgbench.cli.app import main

    lines = (oracle / "predictions" / f"{TASK}.jsonl").read_text().splitlines()
    changed = []
    for index, line in enumerate(lines):
        prediction = Prediction.from_json(json.loads(line))
        phrases = tuple(type(p)(p.text, tuple(RLE.from_mask(change(index, m.decode())) for m in p.masks), p.start, p.end)
                        for p in prediction.phrases)
        changed.append(json.dumps(Prediction(prediction.doc_id, prediction.text, phrases).to_json()))
    source = out.parent / f"{out.name}.jsonl"
    source.write_text("\n".join(changed) + "\n")
    assert main(["score", "--task", TASK, "--predictions", str(source), "--data-root", str(sample),
                 "--bootstrap", "200", "--output", str(out)]) == 0
    return out


def keep_top(mask: np.ndarray, fraction: float, minus_rows: int = 0) -> np.ndarray:
    """The mask's top `fraction` of its rows, less `minus_rows` more rows."""
    rows_with = np.flatnonzero(mask.any(axis=1))
    if rows_with.size == 0:
        return mask
    keep = max(1, int(round(rows_with.size * fraction)) - minus_rows)
    cut = mask.copy()
    cut[rows_with[keep:]] = 0
    return cut


def test_an_unchanged_run_passes(sample, oracle, tmp_path, capsys):
    again = tmp_path / "again"
    assert _run(sample, again) == 0
    capsys.readouterr()
    assert run_cli(["check", str(again), "--against", str(oracle)]) == 0
    out = capsys.readouterr().out
    assert "paired bootstrap" in out and "PASS" in out and "FAIL" not in out
    boards = tmp_path / "boards"
    assert run_cli(["leaderboard", "add", str(oracle), "--dir", str(boards)]) == 0
    capsys.readouterr()
    assert run_cli(["check", str(again / "results.json"), "--against", str(boards)]) == 0
    out = capsys.readouterr().out
    assert "stored intervals" in out and "PASS: 13 comparisons" in out


def test_a_drop_beyond_the_tolerance_fails(sample, oracle, tmp_path, capsys):
    # three expressions lose their mask entirely
    candidate = rescored(sample, oracle, tmp_path / "worse", lambda i, m: m * 0 if i < 3 else m)
    capsys.readouterr()
    assert run_cli(["check", str(candidate), "--against", str(oracle), "--tolerance", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "drop" in out and "> tolerance 1.00" in out
    assert run_cli(["check", str(candidate), "--against", str(oracle), "--tolerance", "0.5", "--ignore-intervals",
                    "--allow-large-tolerance"]) == 0

    boards = tmp_path / "boards"
    assert run_cli(["leaderboard", "add", str(oracle), "--dir", str(boards)]) == 0
    capsys.readouterr()
    # a `score` run has no model name: --model picks the leaderboard entry
    assert run_cli(["check", str(candidate), "--against", str(boards), "--model", "oracle", "--tolerance", "0.01"]) == 1
    report = checking.check(candidate, boards, tolerance=0.01, model="oracle")
    giou = next(c for c in report.checks if c.metric == "giou")
    assert giou.status == "regression" and giou.method == "stored intervals" and giou.delta < -0.05


def test_the_paired_bootstrap_catches_a_small_drop_on_every_image(sample, oracle, tmp_path, capsys):
    # baseline: very different quality per expression (wide intervals); candidate: one row less on every mask
    fractions = [1.0, 0.35, 0.8, 0.5, 0.95, 0.6, 0.25, 0.7]
    baseline = rescored(sample, oracle, tmp_path / "base", lambda i, m: keep_top(m, fractions[i % 8]))
    candidate = rescored(sample, oracle, tmp_path / "cand", lambda i, m: keep_top(m, fractions[i % 8], minus_rows=1))
    report = checking.check(candidate, baseline, tolerance=0.1, model="x", metrics=["ciou", "giou"], resamples=500,
                            allow_large_tolerance=True)
    for item in report.checks:
        assert item.method == "paired bootstrap" and -0.1 < item.delta < 0
        assert item.status == "regression" and item.delta_high < 0 and "below 0" in item.reason
    assert run_cli(["check", str(candidate), "--against", str(baseline), "--tolerance", "0.1", "--metric", "ciou",
                    "--allow-large-tolerance"]) == 1
    assert run_cli(["check", str(candidate), "--against", str(baseline), "--tolerance", "0.1", "--metric", "ciou",
                    "--ignore-intervals", "--allow-large-tolerance"]) == 0
    # without per-sample files the stored intervals overlap: only pairing sees the drop
    unpaired = tmp_path / "unpaired"
    shutil.copytree(candidate, unpaired)
    shutil.rmtree(unpaired / "samples")
    stored = checking.check(unpaired, baseline, tolerance=0.1, metrics=["ciou", "giou"], allow_large_tolerance=True)
    assert {c.method for c in stored.checks} == {"stored intervals"} and not stored.regressions
    capsys.readouterr()


def test_against_a_reported_number_the_tolerance_decides(tmp_path, capsys):
    payload = results_payload("GLaMM", metrics={"mask_recall": 0.400})
    payload["intervals"] = {}
    run = write_results(tmp_path / "run", payload)
    assert run_cli(["check", str(run), "--against", str(REPO / "leaderboards"), "--tolerance", "0.01",
                    "--metric", "mask_recall", "--json", str(tmp_path / "check.json")]) == 1
    saved = json.loads((tmp_path / "check.json").read_text())
    assert not saved["passed"] and saved["checks"][0]["method"] == "tolerance only"
    assert saved["checks"][0]["baseline"] == 0.418 and saved["checks"][0]["delta"] == pytest.approx(-0.018)
    assert run_cli(["check", str(run), "--against", str(REPO / "leaderboards" / "gcg.json"), "--tolerance", "0.02",
                    "--metric", "mask_recall"]) == 0
    # without --metric the reported entry's other four metrics are missing from this run: that fails
    assert run_cli(["check", str(run), "--against", str(REPO / "leaderboards" / "gcg.json"), "--tolerance", "0.02"]) == 1
    assert "reported" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    ({"protocol": "flmm"}, "this run is gcg_val@1 (flmm)"),
    ({"version": "2"}, "this run is gcg_val@2 (glamm)"),
    ({"model": "NoSuchModel"}, "no leaderboard entry for model 'NoSuchModel'"),
])
def test_other_versions_protocols_or_models_are_not_compared(tmp_path, change, message, capsys):
    run = write_results(tmp_path / "run", results_payload(**{"model": "GLaMM", **change}))
    assert run_cli(["check", str(run), "--against", str(REPO / "leaderboards")]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    with pytest.raises(Exception, match="nothing to compare") as error:
        checking.check(run, REPO / "leaderboards")
    assert message in str(error.value)


def test_row_statistics_reproduce_the_stored_metrics(oracle):
    results, _ = from_results.read_results(oracle)
    for task, family, protocol in ((TASK, "res", "lisa"), ("png_val", "png", "official")):
        found = rows.row_metrics(family, protocol, rows.read_rows(oracle, task), results["results"][task])
        assert sorted(found.verified(results["results"][task])) == sorted(results["results"][task])


def gcg_run(folder: Path, per_image: list[tuple[float, int, int]], ap50: float) -> Path:
    """A GCG run written by hand: per-sample rows (mIoU, recall matches, labels) and matching results."""
    samples = [{"doc_id": f"sa_{i}", "miou": miou, "recall_matches": tp, "recall_matches_max_matching": tp, "gt_labels": n,
                "recall_exception": None, "meteor": 0.2, "cider": 0.5} for i, (miou, tp, n) in enumerate(per_image)]
    recall = sum(tp for _, tp, _ in per_image) / sum(n for _, _, n in per_image)
    metrics = {"meteor": 0.2, "cider": 0.5, "ap50": ap50, "miou": float(np.mean([m for m, _, _ in per_image])),
               "mask_recall": recall, "mask_recall_max_matching": recall}
    payload = results_payload("g", metrics=metrics)
    write_results(folder, payload)
    (folder / "samples").mkdir()
    (folder / "samples" / "gcg_val.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return folder


def test_gcg_pairs_what_the_rows_hold_and_falls_back_for_ap50(tmp_path):
    images = [(0.3 + 0.05 * i, i % 4, 4) for i in range(12)]
    base = gcg_run(tmp_path / "base", images, ap50=0.30)
    worse = gcg_run(tmp_path / "worse", [(m - 0.02, max(tp - 1, 0), n) for m, tp, n in images], ap50=0.30)
    report = checking.check(worse, base, tolerance=0.05)
    methods = {c.metric: c.method for c in report.checks}
    assert methods["miou"] == methods["mask_recall"] == methods["meteor"] == "paired bootstrap"
    assert methods["ap50"] == "stored intervals"
    verdicts = {c.metric: c.status for c in report.checks}
    assert verdicts["miou"] == "regression"  # −2 points on every image: within tolerance, but real
    assert verdicts["mask_recall"] == "regression" and verdicts["ap50"] == "ok" and verdicts["cider"] == "ok"


# ------------------------------------------------------------------- the gate never passes silently (issue 15)


def two_tasks(first: dict, second: dict) -> dict:
    """A results payload holding the tasks of both payloads."""
    merged = json.loads(json.dumps(first))
    for key in ("results", "intervals", "n_samples", "versions", "metric_config", "notes"):
        merged[key].update(second[key])
    return merged


def check_line(tmp_path, candidate: dict, baseline: dict, *options: str, capsys) -> tuple[int, str]:
    run = write_results(tmp_path / "candidate", candidate)
    base = write_results(tmp_path / "baseline", baseline)
    code = run_cli(["check", str(run), "--against", str(base), *options])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_metric_missing_from_the_candidate_fails(tmp_path, capsys):
    candidate = results_payload("m")
    del candidate["results"]["gcg_val"]["ap50"]
    code, output = check_line(tmp_path, candidate, results_payload("m"), capsys=capsys)
    assert code == 1 and "FAIL gcg_val ap50: missing from the candidate" in output


def test_a_nan_metric_fails(tmp_path, capsys):
    candidate = results_payload("m")
    candidate["results"]["gcg_val"]["meteor"] = float("nan")
    code, output = check_line(tmp_path, candidate, results_payload("m"), capsys=capsys)
    assert code == 1 and "FAIL gcg_val meteor: NaN in the candidate" in output


@pytest.mark.parametrize("change, message", [
    ({"version": "2"}, "baseline is gcg_test@1 (glamm), this run gcg_test@2 (glamm)"),
    ({"protocol": "flmm"}, "baseline is gcg_test@1 (glamm), this run gcg_test@1 (flmm)"),
])
def test_a_task_of_another_version_or_protocol_fails_next_to_a_good_one(tmp_path, change, message, capsys):
    candidate = two_tasks(results_payload("m"), results_payload("m", task="gcg_test", **change))
    baseline = two_tasks(results_payload("m"), results_payload("m", task="gcg_test"))
    code, output = check_line(tmp_path, candidate, baseline, capsys=capsys)
    assert code == 1 and f"FAIL gcg_test: {message}" in output


def test_a_task_missing_from_the_baseline_fails(tmp_path, capsys):
    candidate = two_tasks(results_payload("m"), results_payload("m", task="gcg_test"))
    code, output = check_line(tmp_path, candidate, results_payload("m"), capsys=capsys)
    assert code == 1 and "FAIL gcg_test: the baseline run has no gcg_test" in output
    # --task narrows the check to what the baseline has
    code, _ = check_line(tmp_path, candidate, results_payload("m"), "--task", "gcg_val", capsys=capsys)
    assert code == 0


@pytest.mark.parametrize("options, message", [
    (["--metric", "meteorr"], "'meteorr' not in"),
    (["--task", "gcg_vall"], "'gcg_vall' not in"),
    (["--tolerance", "10"], "pass --allow-large-tolerance"),
    (["--tolerance", "0.051"], "pass --allow-large-tolerance"),
    (["--tolerance", "inf"], "finite"),
    (["--tolerance", "inf", "--allow-large-tolerance"], "finite"),
    (["--tolerance", "nan"], "finite"),
    (["--tolerance", "-0.01"], "non-negative"),
])
def test_bad_options_are_refused_with_one_line(tmp_path, options, message, capsys):
    code, output = check_line(tmp_path, results_payload("m"), results_payload("m"), *options, capsys=capsys)
    assert code == 2 and message in output and len(output.strip().splitlines()) == 1, output


def test_a_large_tolerance_passes_only_when_asked_for(tmp_path, capsys):
    worse = results_payload("m", metrics={"meteor": 0.05, "cider": 0.45, "ap50": 0.3, "miou": 0.65, "mask_recall": 0.40})
    code, _ = check_line(tmp_path, worse, results_payload("m"), "--tolerance", "0.2", "--allow-large-tolerance",
                         "--ignore-intervals", capsys=capsys)
    assert code == 0
    code, _ = check_line(tmp_path, worse, results_payload("m"), "--tolerance", "0.05", "--ignore-intervals",
                         capsys=capsys)
    assert code == 1


def test_a_leaderboard_file_with_the_former_metric_name_still_compares(tmp_path, capsys):
    metrics = {"meteor": 0.15, "cider": 0.45, "ap50": 0.3, "miou": 0.65, "mask_recall": 0.40,
               "mask_recall_max_matching": 0.45}
    run = write_results(tmp_path / "run", results_payload("m", metrics=metrics))
    boards = tmp_path / "boards"
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(boards)]) == 0
    board = boards / "gcg.json"
    board.write_text(board.read_text().replace("mask_recall_max_matching", "mask_recall_strict"))
    capsys.readouterr()
    assert run_cli(["check", str(run), "--against", str(boards)]) == 0, capsys.readouterr()
