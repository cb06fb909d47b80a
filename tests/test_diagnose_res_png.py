"""`gcgbench diagnose`, RES and PNG parts: IoU by expression length / object size / location word and the
empty-mask share of failures; PNG AR by bucket, segment count and area — by hand and on a rescored oracle run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcgbench.api.task import DataPaths
from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.data.sample import write_sample
from gcgbench.views.diagnose import png as png_diagnosis
from gcgbench.views.diagnose import res as res_diagnosis
from gcgbench.metrics import png
from gcgbench.tasks.registry import get_task

try:
    from tests.test_leaderboard import run_cli
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from test_leaderboard import run_cli

RES = "res_refcoco_val"


def test_location_words_and_length_groups():
    assert res_diagnosis.location_word("Man on the LEFT, in red") == "left"
    assert res_diagnosis.location_word("guy behind the bus") == "behind"
    assert res_diagnosis.location_word("red circle") is None
    assert res_diagnosis.location_word("leftover cake") is None  # whole words only
    assert [res_diagnosis.length_group(e) for e in ("dog", "a red dog", "the dog on the far left", "a b c d e f g h")] \
        == ["1-2 words", "3-4 words", "5-7 words", "8+ words"]


def box(height: int, width: int, top: int, left: int, size: int) -> RLE:
    mask = np.zeros((height, width), np.uint8)
    mask[top:top + size, left:left + size] = 1
    return RLE.from_mask(mask)


def test_res_breakdowns_by_hand():
    docs = {
        "a": Doc("a", None, 100, 100, {"expression": "the dog on the left"}, (Phrase("x", (box(100, 100, 0, 0, 10),)),)),
        "b": Doc("b", None, 100, 100, {"expression": "a cat"}, (Phrase("x", (box(100, 100, 0, 0, 40),)),)),
        "c": Doc("c", None, 100, 100, {"expression": "cat at the top"}, (Phrase("x", (box(100, 100, 50, 50, 40),)),)),
    }
    predictions = {  # a: right mask; b: empty; c: a far-off box
        "a": Prediction("a", "", (Phrase("x", (box(100, 100, 0, 0, 10),)),)),
        "b": Prediction("b", "", ()),
        "c": Prediction("c", "", (Phrase("x", (box(100, 100, 0, 0, 10),)),)),
    }
    rows = [{"doc_id": "a", "intersection": 100, "union": 100, "iou": 1.0, "expression": "the dog on the left"},
            {"doc_id": "b", "intersection": 0, "union": 1600, "iou": 0.0, "expression": "a cat"},
            {"doc_id": "c", "intersection": 0, "union": 1700, "iou": 0.0, "expression": "cat at the top"}]
    for given in (predictions, None):  # without predictions the empty mask is found from I, U and the GT area
        samples = res_diagnosis.diagnose_res(rows, docs, given)
        summary = res_diagnosis.summarise_res(samples)
        assert summary["failures"] == {"count": 2, "threshold_iou": 0.5, "empty_masks": 1, "empty_share": 0.5,
                                       "unknown_predicted_area": 0}
        location = {g["group"]: g for g in summary["breakdowns"]["location_word"]}
        assert location["with a location word"]["n"] == 2 and location["with a location word"]["mean_iou"] == 0.5
        assert location["with a location word"]["ciou"] == pytest.approx(100 / 1800)
        assert location["without"]["mean_iou"] == 0.0
        sizes = {g["group"]: g["n"] for g in summary["breakdowns"]["object_size"]}
        assert sizes == {"small": 1, "medium": 2}  # 100 px; 1600 px twice
        assert summary["location_words_used"] == {"left": 1, "top": 1}
        assert [res_diagnosis.sample_buckets(s) for s in samples] == [["iou_50"], ["failure", "empty_mask"], ["failure"]]


@pytest.fixture(scope="module")
def rescored(tmp_path_factory):
    """Oracle RES (5 expressions) and PNG on 8 sample images, then RES rescored with two answers emptied and one misplaced."""
    sample = write_sample(tmp_path_factory.mktemp("sample"), n_images=8)
    run = tmp_path_factory.mktemp("oracle")
    assert run_cli(["run", "--model", "oracle", "--task", f"{RES},png_val", "--data-root", str(sample),
                    "--bootstrap", "0", "--output", str(run)]) == 0
    docs = {doc.doc_id: doc for doc in get_task(RES).docs(DataPaths(sample))}
    lines, changed = [], {}
    for number, line in enumerate((run / "predictions" / f"{RES}.jsonl").read_text().splitlines()):
        prediction = Prediction.from_json(json.loads(line))
        if number in (0, 3):
            prediction = Prediction(prediction.doc_id, prediction.text, ())
            changed[prediction.doc_id] = "empty"
        elif number == 4:
            doc = docs[prediction.doc_id]
            far = np.zeros((doc.height, doc.width), np.uint8)
            far[-3:, -3:] = 1
            prediction = Prediction(prediction.doc_id, prediction.text, (Phrase(prediction.text, (RLE.from_mask(far),)),))
            changed[prediction.doc_id] = "misplaced"
        lines.append(json.dumps(prediction.to_json()))
    edited = run / "edited.jsonl"
    edited.write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("rescored")
    assert run_cli(["score", "--task", RES, "--predictions", str(edited), "--data-root", str(sample),
                    "--bootstrap", "0", "--output", str(out)]) == 0
    return {"sample": sample, "oracle": run, "res": out, "changed": changed}


def test_res_diagnosis_of_a_rescored_run(rescored, capsys):
    assert run_cli(["diagnose", str(rescored["res"]), "--data-root", str(rescored["sample"])]) == 0
    found = json.loads((rescored["res"] / "diagnosis" / "diagnosis.json").read_text())["tasks"][RES]
    changed = rescored["changed"]
    assert sorted(changed.values()) == ["empty", "empty", "misplaced"]
    assert found["failures"]["count"] == len(changed) and found["failures"]["empty_masks"] == 2
    assert found["failures"]["empty_share"] == pytest.approx(2 / 3)
    rows = [json.loads(line) for line in (rescored["res"] / "samples" / f"{RES}.jsonl").read_text().splitlines()]
    for name, groups in found["breakdowns"].items():
        assert sum(g["n"] for g in groups) == len(rows), name
    overall = found["overall"]
    assert overall["ciou"] == pytest.approx(found["stored_metrics"]["ciou"])
    assert overall["mean_iou"] == pytest.approx(np.mean([r["iou"] for r in rows]))
    with_word = [r for r in rows if res_diagnosis.location_word(r["expression"])]
    groups = {g["group"]: g for g in found["breakdowns"]["location_word"]}
    if with_word:
        assert groups["with a location word"]["n"] == len(with_word)
    page = (rescored["res"] / "diagnosis" / f"{RES}.html").read_text()
    assert "IoU by expression length" in page and page.count("data:image/png;base64,") == 3


def test_png_diagnosis_of_an_oracle_run(rescored):
    run = rescored["oracle"]
    assert run_cli(["diagnose", str(run), "--task", "png_val", "--data-root", str(rescored["sample"])]) == 0
    payload = json.loads((run / "diagnosis" / "diagnosis.json").read_text())
    assert payload["skipped"] == {RES: "not asked for"} and list(payload["tasks"]) == ["png_val"]
    found = payload["tasks"]["png_val"]
    stored = json.loads((run / "results.json").read_text())["results"]["png_val"]
    assert found["overall"][0]["ar"] == pytest.approx(stored["ar"])
    buckets = {g["group"]: g for g in found["breakdowns"]["bucket"]}
    if "thing singular" in buckets and "ar_things" in stored:
        assert all(g["ar"] == pytest.approx(png.average_recall(np.ones(1))) for g in buckets.values())
    docs = {doc.doc_id: doc for doc in get_task("png_val").docs(DataPaths(rescored["sample"]))}
    rows = [json.loads(line) for line in (run / "samples" / "png_val.jsonl").read_text().splitlines()]
    counts = {}
    for row in rows:
        segments = len(docs[row["doc_id"]].truth["phrases"][row["phrase_id"]]["segment_is_thing"])
        group = png_diagnosis.segment_group(segments)
        counts[group] = counts.get(group, 0) + 1
    assert {g["group"]: g["n"] for g in found["breakdowns"]["segment_count"]} == counts
    assert sum(g["n"] for g in found["breakdowns"]["object_size"]) == len(rows)


def test_png_ar_by_group_by_hand():
    docs = {"n": Doc("n", None, 10, 10, phrases=(Phrase("a", (box(10, 10, 0, 0, 2),)), Phrase("b", (box(10, 10, 0, 0, 5),))),
                     truth={"phrases": [{"segment_is_thing": [True]}, {"segment_is_thing": [True, False]}]})}
    rows = [{"doc_id": "n", "phrase_id": 0, "iou": 0.5, "plural": False, "thing": True},
            {"doc_id": "n", "phrase_id": 1, "iou": None, "plural": True, "thing": False}]
    found = png_diagnosis.diagnose_png(rows, docs, "official")
    groups = {g["group"]: g for g in found["breakdowns"]["segment_count"]}
    assert groups["1 segment"]["ar"] == pytest.approx(png.average_recall(np.array([0.5])))
    assert groups["2 segments"]["ar"] == 0.0  # a NaN IoU passes no threshold (official)
    assert found["overall"][0]["ar"] == pytest.approx(png.average_recall(np.array([0.5, np.nan])))
    assert {g["group"] for g in found["breakdowns"]["bucket"]} == {"thing singular", "stuff plural"}


def test_compare_res_runs_and_view_the_broken_expressions(rescored, tmp_path, capsys):
    out = tmp_path / "c"
    assert run_cli(["compare", str(rescored["oracle"]), str(rescored["res"]), "--data-root", str(rescored["sample"]),
                    "--output", str(out), "--resamples", "200"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "compare.json").read_text())
    deltas = {d["metric"]: d for d in summary["deltas"]}
    assert {d["task"] for d in summary["deltas"]} == {RES}  # png_val is not in the rescored run
    assert deltas["ciou"]["delta"] < 0 and deltas["ciou"]["interval"][1] <= 0
    assert deltas["giou"]["delta"] == pytest.approx(-3 / 5, abs=1e-5)  # LISA: I / (U + 1e-5)
    page = (out / "compare.html").read_text()
    import re

    cards = re.findall(r'<div class="card"[^>]*data-doc="([^"]+)"[^>]*data-diff="([^"]+)"[^>]*data-buckets="([^"]*)"', page)
    assert {doc for doc, diff, _ in cards if float(diff) < 0} == set(rescored["changed"])
    empty = {doc for doc, _, buckets in cards if "empty_mask" in buckets.split()}
    assert empty == {doc for doc, kind in rescored["changed"].items() if kind == "empty"}
