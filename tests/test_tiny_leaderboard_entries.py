"""The grounding-score regression gate: both embedded tiny models, run through the CLI with default arguments
on the bundled sample's `gcg_val`, `res_refcoco_val` and `png_val`, score as their measured "(sample)"
leaderboard entries (leaderboards/gcg.json, res.json, png.json): `gcgbench check --tolerance 0.005` passes on
every metric. Every RES answer holds the copula the a&s rule needs (so every expression gets a point and a
mask; before the fine-tune none did and cIoU was 0), GCG and PNG meet issue 19's targets (recall ≥ 0.6,
mIoU ≥ 0.5, AR ≥ 0.4). Issue 19's RES target (cIoU ≥ 0.5) is met by llava-as (0.554), not by difflmm
(0.356; docs/tiny_models.md, "Shipped on 2026-12-03")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcgbench.cli.app import main
from gcgbench.models import embedded

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("gcg_val", "res_refcoco_val", "png_val")
RES_FLOOR = {"llava-as": 0.5, "difflmm": 0.3}   # issue 19's target; difflmm's last checkpoint was at 0.283
pytestmark = pytest.mark.skipif(not (embedded.tiny_llava_path() / "model.safetensors").is_file(),
                                reason="tiny checkpoints not built")


def _value(entry):
    return entry["value"] if isinstance(entry, dict) else entry


@pytest.mark.slow
@pytest.mark.parametrize("model", ["llava-as", "difflmm"])
def test_tiny_model_scores_as_its_leaderboard_entries(model, tmp_path):
    # the session's generation cache: GCG generations another test of this worker made are read back
    out = tmp_path / "run"
    assert main(["run", "--model", model, "--task", ",".join(TASKS), "--bootstrap", "0", "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["sample_data"] is True
    scores = results["results"]
    assert _value(scores["res_refcoco_val"]["ciou"]) >= RES_FLOOR[model]
    assert _value(scores["png_val"]["ar"]) >= 0.4
    answers = [json.loads(line) for line in (out / "predictions" / "res_refcoco_val.jsonl").read_text().splitlines()]
    assert answers and all(a["extras"]["res_token"] is not None and a["phrases"][0]["masks"] for a in answers)
    report = tmp_path / "check.json"
    assert main(["check", str(out), "--against", str(ROOT / "leaderboards"), "--tolerance", "0.005",
                 "--json", str(report)]) == 0
    checks = json.loads(report.read_text())["checks"]
    assert {check["task"] for check in checks} == set(TASKS) and all(c["status"] == "ok" for c in checks)
    assert _value(scores["gcg_val"]["mask_recall"]) >= 0.6 and _value(scores["gcg_val"]["miou"]) >= 0.5
    for task, family, metric in (("gcg_val", "gcg", "mask_recall"), ("res_refcoco_val", "res", "ciou"),
                                 ("png_val", "png", "ar")):
        entries = json.loads((ROOT / "leaderboards" / f"{family}.json").read_text())["entries"]
        (entry,) = [e for e in entries if e["model"] == f"{model} (sample)" and e["task"] == task]
        assert entry["metrics"][metric] == pytest.approx(_value(scores[task][metric]), abs=1e-9)
