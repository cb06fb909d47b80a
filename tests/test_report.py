"""`gcgbench report RUN_DIR`: one self-contained HTML page, worst samples first, masks in the phrases'
colours, filterable by task; rendered in headless Chromium, with the overlay colours checked on screen."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from gcgbench.api.types import RLE, Phrase, Prediction
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.views import run_report as report
from gcgbench.tasks.registry import get_task
from tests.test_leaderboard import chromium, run_cli

RES = "res_refcoco_val"
WORST = "0_0"  # the RES doc whose mask is replaced by a rectangle


def rectangle(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[2:height // 2, 2:width // 2] = 1
    return mask


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An oracle run of RES and PNG, one RES answer replaced by a wrong rectangle (rescored), and a GCG
    split written by hand (ground-truth answers, per-sample rows with made-up scores)."""
    sample = write_sample(tmp_path_factory.mktemp("sample"), n_images=8)
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--model", "oracle", "--task", f"{RES},png_val", "--data-root", str(sample),
                 "--bootstrap", "0", "--output", str(out)]) == 0
    predictions = out / "predictions" / f"{RES}.jsonl"
    lines = []
    for line in predictions.read_text().splitlines():
        prediction = Prediction.from_json(json.loads(line))
        if prediction.doc_id == WORST:
            mask = prediction.phrases[0].masks[0]
            phrase = Phrase(prediction.phrases[0].text, (RLE.from_mask(rectangle(mask.height, mask.width)),))
            prediction = Prediction(prediction.doc_id, prediction.text, (phrase,))
        lines.append(json.dumps(prediction.to_json()))
    predictions.write_text("\n".join(lines) + "\n")
    rescored = tmp_path_factory.mktemp("rescored")
    assert main(["score", "--task", RES, "--predictions", str(predictions), "--data-root", str(sample),
                 "--bootstrap", "0", "--output", str(rescored)]) == 0
    (out / "samples" / f"{RES}.jsonl").write_bytes((rescored / "samples" / f"{RES}.jsonl").read_bytes())
    results = json.loads((out / "results.json").read_text())
    results["results"][RES] = json.loads((rescored / "results.json").read_text())["results"][RES]

    task = get_task("gcg_val")
    from gcgbench.api.task import DataPaths

    docs = task.docs(DataPaths(sample))
    gold = [task.ground_truth_prediction(doc) for doc in docs]
    (out / "predictions" / "gcg_val.jsonl").write_text("".join(json.dumps(p.to_json()) + "\n" for p in gold))
    rows = [{"doc_id": doc.doc_id, "miou": 0.9 - 0.1 * i, "recall_matches": 1, "recall_matches_max_matching": 1,
             "gt_labels": len(doc.phrases), "recall_exception": None, "meteor": 0.3, "cider": 1.0}
            for i, doc in enumerate(docs)]
    (out / "samples" / "gcg_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results["results"]["gcg_val"] = {"miou": float(np.mean([r["miou"] for r in rows]))}
    for key, value in (("n_samples", len(docs)), ("versions", "1"), ("metric_config", {"protocol": "glamm"}),
                       ("notes", []), ("intervals", {})):
        results[key]["gcg_val"] = value
    (out / "results.json").write_text(json.dumps(results))
    return out


def card_tags(page: str) -> list[str]:
    return re.findall(r'<div class="card"[^>]*>', page)


def test_report_holds_every_doc_worst_first_and_nothing_external(run, capsys):
    started = time.perf_counter()
    assert run_cli(["report", str(run)]) == 0
    elapsed = time.perf_counter() - started
    assert "wrote" in capsys.readouterr().out
    page = (run / "report.html").read_text()
    cards = card_tags(page)
    expected = {task: len({json.loads(line)["doc_id"] for line in (run / "samples" / f"{task}.jsonl").read_text().splitlines()})
                for task in (RES, "png_val", "gcg_val")}
    assert {task: sum(f'data-task="{task}"' in c for c in cards) for task in expected} == expected
    assert page.count('src="data:image/png;base64,') == len(cards)
    assert 'data-doc="0_0"' in cards[0]  # the wrong rectangle is the worst sample of all
    gcg = [re.search(r'data-doc="([^"]+)"', c).group(1) for c in cards if 'data-task="gcg_val"' in c]
    assert gcg == sorted(gcg, reverse=True)  # made-up mIoU falls with the doc index: worst (last) first
    for task in expected:
        assert f'<option value="{task}">{task}</option>' in page
    assert "background:rgb(0,200,255)" in page and "iou <b>" in page and "mIoU 0.900" in page
    assert not re.search(r'(src|href)="(?!data:)', page) and "http://" not in page and "https://" not in page
    assert elapsed < 10


def test_overlay_pixels_are_the_blend_of_image_and_phrase_colour(tmp_path):
    image = tmp_path / "flat.png"
    Image.new("RGB", (40, 30), (190, 190, 190)).save(image)
    mask = np.zeros((30, 40), np.uint8)
    mask[5:20, 10:30] = 1
    truth = np.zeros((30, 40), np.uint8)
    truth[0:10, 0:10] = 1
    pixels = report.render_overlay(str(image), 30, 40, [(RLE.from_mask(mask), report.PALETTE[1])],
                                   [RLE.from_mask(truth)], max_side=256)
    inside = pixels[mask.astype(bool)]
    assert (inside == report.blend(np.array([190, 190, 190]), report.PALETTE[1])).all()
    assert (pixels[25:, 35:] == 190).all()
    assert (pixels[9, 0:10] == 255).all() and (pixels[3, 3] == 190).all()  # white outline, untouched inside
    small = report.render_overlay(None, 300, 400, [(RLE.from_mask(np.ones((300, 400), np.uint8)), (0, 0, 0))],
                                  max_side=100)
    assert small.shape == (75, 100, 3) and (small == report.blend(np.array([160, 160, 160]), (0, 0, 0))).all()


def test_answers_colour_their_phrases_and_list_unplaced_ones():
    prediction = Prediction("d", "a red circle & a <b> square", (
        Phrase("a red circle", (), 0, 12), Phrase("a <b> square", (), None, None), Phrase("a hexagon", ())))
    rendered = report.answer_html(prediction)
    assert rendered.index("rgb(0,200,255)") < rendered.index("a red circle")
    assert "a &lt;b&gt; square</span>" in rendered and "rgb(255,0,160)" in rendered
    assert rendered.count('class="ph"') == 3 and rendered.rindex("a hexagon") > rendered.index("square")


def test_report_renders_in_chromium_with_the_overlay_colours(run, tmp_path):
    page = report.build_report(run, tmp_path / "report.html", tasks=[RES, "png_val", "gcg_val"])
    shot = tmp_path / "res.png"
    dom = chromium(tmp_path, page.as_uri() + f"#task={RES}", shot, size="1000,900")
    hidden = {task: [("hidden" in tag) for tag in card_tags(dom) if f'data-task="{task}"' in tag]
              for task in (RES, "png_val", "gcg_val")}
    assert not any(hidden[RES]) and all(hidden["png_val"]) and all(hidden["gcg_val"])

    # the worst card is on top: its overlay (rectangle in the first phrase colour) must be on screen
    uri = re.search(r'data-doc="0_0"><img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', dom)
    thumbnail = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.group(1)))).convert("RGB"))
    zoom = int(uri.group(2)) // thumbnail.shape[1]
    region = rectangle(*thumbnail.shape[:2]).astype(bool)
    region[:, :3] = region[:3, :] = False  # away from the white ground-truth outline
    docs, _ = report.load_docs(RES, json.loads((run / "results.json").read_text())["config"], None)
    plain = report.render_overlay(docs[WORST].image_path, docs[WORST].height, docs[WORST].width, [])
    expected = np.median(report.blend(plain[region], report.PALETTE[0]), axis=0)  # phrase colour over the image
    assert np.abs(np.median(thumbnail[region], axis=0) - expected).max() <= 1
    screen = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert len(np.unique(screen.reshape(-1, 3), axis=0)) > 30  # not a blank page
    close = (np.abs(screen - expected).max(axis=2) <= 6).sum()
    assert close >= 0.5 * region.sum() * zoom * zoom
    highlight = (np.abs(screen - np.array(report.PALETTE[0])).max(axis=2) <= 2).sum()
    assert highlight > 200  # the phrase's text highlight in the same colour

    png_dom = chromium(tmp_path, page.as_uri() + "#task=png_val")
    assert all("hidden" in tag for tag in card_tags(png_dom) if 'data-task="png_val"' not in tag)
    assert not any("hidden" in tag for tag in card_tags(png_dom) if 'data-task="png_val"' in tag)
    assert re.search(r'<span id="count">(\d+) docs shown</span>', png_dom).group(1) == str(len(hidden["png_val"]))


def test_report_errors_are_one_line(run, tmp_path, capsys):
    assert run_cli(["report", str(tmp_path / "missing")]) == 2
    assert "results file not found" in capsys.readouterr().err
    assert run_cli(["report", str(run), "--task", "gcg_test"]) == 2
    assert "no results for gcg_test" in capsys.readouterr().err
