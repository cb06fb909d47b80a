"""`gcgbench diagnose` and `gcgbench compare` on the two embedded tiny models (run once per session), on
`replay`/`score` runs of a GLaMM prediction folder, and on incomparable runs; the viewer in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_erosion
import pytest
from PIL import Image

from gcgbench.api.types import Prediction
from gcgbench.leaderboard import check
from gcgbench.views import run_report as report
from gcgbench.views.diagnose.gcg import BUCKETS

try:
    from tests.test_leaderboard import chromium, run_cli
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from test_leaderboard import chromium, run_cli

TASK = "gcg_val"


@pytest.fixture(scope="session")
def tiny_runs(tiny_gcg_runs):
    """The embedded tiny llava-as and DiffLMM on the bundled sample's gcg_val (tests/conftest.py, once per session)."""
    return tiny_gcg_runs


@pytest.fixture(scope="session")
def compared(tiny_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    return out


def results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


def test_compare_prints_the_table_and_writes_the_viewer(tiny_runs, compared, capsys):
    a, b = tiny_runs["llava-as"], tiny_runs["difflmm"]
    assert run_cli(["compare", str(a), str(b), "--output", str(compared), "--resamples", "300"]) == 0
    printed = capsys.readouterr().out
    for word in ("mask_recall", "ap50", "miou", "cider", "llava-as (sample)", "difflmm (sample)", "wrong_place"):
        assert word in printed
    assert re.search(r"better|worse|no detectable difference", printed)
    summary = json.loads((compared / "compare.json").read_text())
    deltas = {d["metric"]: d for d in summary["deltas"]}
    stored_a, stored_b = results(a)["results"][TASK], results(b)["results"][TASK]
    assert set(deltas) == set(stored_a)
    for metric, delta in deltas.items():
        assert delta["baseline_value"] == pytest.approx(stored_a[metric]) and delta["value"] == pytest.approx(stored_b[metric])
        low, high = delta["interval"]  # every GCG metric, AP50 included, has a paired interval
        assert low <= high
        expected = "better" if low > 0 else "worse" if high < 0 else "no detectable difference"
        assert delta["verdict"] == expected
    # the same paired bootstrap `gcgbench check` runs gives the same intervals on the row metrics
    report_ = check.check(b / "results.json", a, resamples=300, seed=0)
    from_check = {c.metric: (c.delta_low, c.delta_high) for c in report_.checks if c.method == "paired bootstrap"}
    assert {"miou", "mask_recall", "mask_recall_max_matching", "cider"} <= set(from_check)
    for metric, (low, high) in from_check.items():
        assert deltas[metric]["interval"] == pytest.approx([low, high])
    # the diagnoses side by side explain each run's recall exactly
    for label, run in (("llava-as (sample)", a), ("difflmm (sample)", b)):
        buckets = summary["diagnoses"][TASK][label]["buckets"]
        labels = sum(r["gt_labels"] for r in map(json.loads, (run / "samples" / f"{TASK}.jsonl").read_text().splitlines()))
        misses = round(labels * (1 - results(run)["results"][TASK]["mask_recall"]))
        assert sum(v["count"] for v in buckets.values()) == misses > 0
    page = (compared / "compare.html").read_text()
    cards = re.findall(r'<div class="card"[^>]*>', page)
    assert len(cards) == results(a)["n_samples"][TASK]
    assert page.count('<div class="panel"') == 2 * len(cards)
    assert not re.search(r'(src|href)="(?!data:)', page) and "http://" not in page and "https://" not in page


def panel_images(dom: str, card_index: int) -> list[np.ndarray]:
    card = re.findall(r'<div class="card".*?</div></div>\s*(?=<div class="card"|</div>\s*<script)', dom, re.S)[card_index]
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', card)
    return [(np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("RGB")), int(w), int(h)) for u, w, h in uris]


def test_viewer_renders_in_chromium_with_both_models_masks(tiny_runs, compared, tmp_path):
    page = compared / "compare.html"
    if not page.is_file():
        assert run_cli(["compare", str(tiny_runs["llava-as"]), str(tiny_runs["difflmm"]), "--output", str(compared),
                        "--resamples", "50"]) == 0
    # a copy that records where each panel image landed on screen (the page itself stays as written)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", "<script>for(const i of document.querySelectorAll('.panel img'))"
                                                          "{const r=i.getBoundingClientRect();i.dataset.rect=[r.x,r.y,r.width,r.height].join(',');}"
                                                          "</script></body>"))
    shot = tmp_path / "viewer.png"
    dom = chromium(tmp_path, probe.as_uri(), shot, size="1200,1800")
    screen = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    cards = re.findall(r'<div class="card"[^>]*data-doc="([^"]+)"[^>]*data-diff="([^"]+)"', dom)
    assert abs(float(cards[0][1])) == max(abs(float(d)) for _, d in cards)  # largest difference on top
    top = cards[0][0]
    predictions = {}
    for model, run in tiny_runs.items():
        for line in (run / "predictions" / f"{TASK}.jsonl").read_text().splitlines():
            prediction = Prediction.from_json(json.loads(line))
            if prediction.doc_id == top:
                predictions[model] = prediction
    docs, _ = report.load_docs(TASK, results(tiny_runs["llava-as"])["config"], None)
    doc = docs[top]
    plain = report.render_overlay(doc.image_path, doc.height, doc.width, [])
    rects = [tuple(float(v) for v in r.split(",")) for r in re.findall(r'data-rect="([^"]+)"', dom)][:2]
    images = panel_images(dom, 0)
    assert len(images) == 2 and len(rects) == 2
    for (thumbnail, width, height), (x, y, w, h), model in zip(images, rects, ("llava-as", "difflmm")):
        # the model's first phrase mask is drawn in the first palette colour over the image ...
        region = report._small_mask(predictions[model].phrases[0].masks[0], *thumbnail.shape[:2])
        for later in predictions[model].phrases[1:]:   # later phrases' masks are drawn over the first one
            for mask in later.masks:
                region &= ~report._small_mask(mask, *thumbnail.shape[:2])
        region = binary_erosion(region)   # the mask's outline is drawn on its border: check its inside
        assert region.any()
        expected = report.blend(plain[region], report.PALETTE[0])
        assert (np.abs(thumbnail[region].astype(int) - expected).max(axis=1) <= 1).mean() > 0.7
        # ... and that thumbnail is what is on screen where the panel image is
        zoom = width // thumbnail.shape[1]
        on_screen = screen[int(round(y)):int(round(y)) + height, int(round(x)):int(round(x)) + width]
        assert on_screen.shape[:2] == (height, width) and (w, h) == (width, height)
        drawn = np.repeat(np.repeat(thumbnail, zoom, axis=0), zoom, axis=1).astype(int)
        assert np.abs(on_screen - drawn).mean() < 2.0
    assert not np.array_equal(images[0][0], images[1][0])  # the two runs differ on this sample

    # filter by bucket and sort by the signed difference through the URL hash
    dom = chromium(tmp_path, page.as_uri() + "#bucket=wrong_place&sort=asc")
    tags = re.findall(r'<div class="card"[^>]*>', dom)
    shown = [t for t in tags if " hidden" not in t]
    assert shown and len(shown) < len(tags)
    for tag in tags:
        has = "wrong_place" in re.search(r'data-buckets="([^"]*)"', tag).group(1).split()
        assert has == (" hidden" not in tag)
    values = [float(re.search(r'data-diff="([^"]+)"', t).group(1)) for t in tags]
    assert values == sorted(values)


def edited_copy(run: Path, target: Path, edit) -> Path:
    shutil.copytree(run, target)
    payload = results(target)
    edit(payload)
    (target / "results.json").write_text(json.dumps(payload))
    return target


@pytest.mark.parametrize("edit,message", [
    (lambda r: r["versions"].update({TASK: "99"}), "task versions differ"),
    (lambda r: r["metric_config"][TASK].update({"protocol": "other"}), "scoring protocol differs"),
    (lambda r: r["metric_config"][TASK].update({"text_similarity_model": "bert"}), "scoring text_similarity_model differs"),
    (lambda r: r["config"]["task_hashes"].update({k: "0" * 64 for k in r["config"]["task_hashes"]}), "ground truth differs"),
])
def test_compare_refuses_incomparable_runs_in_one_line(tiny_runs, tmp_path, capsys, edit, message):
    other = edited_copy(tiny_runs["difflmm"], tmp_path / "other", edit)
    assert run_cli(["compare", str(tiny_runs["llava-as"]), str(other), "--output", str(tmp_path / "c")]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1 and error.startswith("error: ")
    assert not (tmp_path / "c" / "compare.html").exists()


def test_compare_refuses_runs_of_different_samples(tiny_runs, tmp_path, capsys):
    other = tmp_path / "limited"
    shutil.copytree(tiny_runs["difflmm"], other)
    samples = other / "samples" / f"{TASK}.jsonl"
    samples.write_text("".join(samples.read_text().splitlines(keepends=True)[:5]))
    assert run_cli(["compare", str(tiny_runs["llava-as"]), str(other)]) == 2
    assert "scored different samples" in capsys.readouterr().err
    assert run_cli(["compare", str(tiny_runs["llava-as"])]) == 2
    assert "at least two" in capsys.readouterr().err


def glamm_folder(run: Path, folder: Path) -> Path:
    """The run's predictions as GLaMM's eval/gcg/infer.py writes them: <image_id>.json per image."""
    folder.mkdir()
    for line in (run / "predictions" / f"{TASK}.jsonl").read_text().splitlines():
        p = Prediction.from_json(json.loads(line))
        (folder / f"{p.doc_id}.json").write_text(json.dumps({
            "image_id": p.doc_id, "caption": p.text, "phrases": [phrase.text for phrase in p.phrases],
            "pred_masks": [m.to_json() for m in p.masks()]}))
    return folder


def test_diagnose_a_run_and_the_same_predictions_replayed_and_rescored_from_a_glamm_folder(tiny_runs, tmp_path, capsys):
    run = tiny_runs["llava-as"]
    assert run_cli(["diagnose", str(run), "--output", str(tmp_path / "own")]) == 0
    assert "wrote" in capsys.readouterr().out
    own = json.loads((tmp_path / "own" / "diagnosis.json").read_text())["tasks"][TASK]
    assert own["mask_recall"] == pytest.approx(results(run)["results"][TASK]["mask_recall"]) == own["stored_mask_recall"]
    assert sum(v["count"] for v in own["buckets"].values()) == own["misses"]
    html = (tmp_path / "own" / f"{TASK}.html").read_text()
    assert html.count('src="data:image/png;base64,') >= 5 and "Where the misses went" in html

    folder = glamm_folder(run, tmp_path / "glamm")
    replay, rescored = tmp_path / "replay", tmp_path / "rescored"
    assert run_cli(["run", "--model", "replay", "--model-args", f"predictions={folder}", "--task", TASK,
                    "--output", str(replay), "--no-cache", "--bootstrap", "0"]) == 0
    assert run_cli(["score", "--task", TASK, "--predictions", str(folder), "--output", str(rescored),
                    "--bootstrap", "0"]) == 0
    assert not (rescored / "predictions").exists()  # read back from config.predictions
    for other in (replay, rescored):
        assert run_cli(["diagnose", str(other), "--output", str(other / "d")]) == 0
        found = json.loads((other / "d" / "diagnosis.json").read_text())["tasks"][TASK]
        assert found["buckets"] == own["buckets"] and found["breakdowns"] == own["breakdowns"]
    capsys.readouterr()
    # a replay of a run compares with it: no detectable difference anywhere, Δ = 0
    assert run_cli(["compare", str(run), str(replay), "--output", str(tmp_path / "c"), "--resamples", "50"]) == 0
    deltas = json.loads((tmp_path / "c" / "compare.json").read_text())["deltas"]
    assert deltas and all(d["delta"] == 0 and d["verdict"] == "no detectable difference" for d in deltas)


def test_diagnose_errors_are_one_line(tiny_runs, tmp_path, capsys):
    assert run_cli(["diagnose", str(tmp_path / "nowhere")]) == 2
    assert "results file not found" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(tiny_runs["llava-as"], broken)
    (broken / "samples" / f"{TASK}.jsonl").unlink()
    assert run_cli(["diagnose", str(broken)]) == 2
    error = capsys.readouterr().err.strip()
    assert "no per-sample rows" in error and len(error.splitlines()) == 1
    assert set(BUCKETS) >= {"not_mentioned", "not_grounded", "wrong_place", "right_place_other_words", "early_stop"}


def test_compare_three_runs_against_the_first(tiny_runs, tmp_path, capsys):
    a, b = tiny_runs["llava-as"], tiny_runs["difflmm"]
    copy = tmp_path / "again"
    shutil.copytree(a, copy)
    assert run_cli(["compare", str(a), str(b), str(copy), "--output", str(tmp_path / "c"), "--resamples", "50",
                    "--max-samples", "3"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "c" / "compare.json").read_text())
    labels = [run["label"] for run in summary["runs"]]
    assert len(set(labels)) == 3 and labels[1] == "difflmm (sample)"  # the two llava-as runs named apart
    again = [d for d in summary["deltas"] if d["run"] == labels[2]]
    assert len(again) == len(results(a)["results"][TASK])
    assert all(d["delta"] == 0 and d["interval"] == [0, 0] and d["verdict"] == "no detectable difference" for d in again)
    page = (tmp_path / "c" / "compare.html").read_text()
    assert len(re.findall(r'<div class="card"', page)) == 3 and page.count('<div class="panel"') == 9
