"""`gcgbench reproduce`: card schema and its one-line errors, every card against the leaderboards, --list,
the weights check before any model loads (exit 2), the verdict rows, and the tiny card end to end (exit 0)."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from gcgbench.api.errors import InputError
from gcgbench.cli import reproduce as reproduce_module
from gcgbench.cli import run as run_module
from gcgbench.cli.app import main
from gcgbench.leaderboard import files
from gcgbench.leaderboard.cards import leaderboard_mismatches, load_card, load_cards, parse_card
from gcgbench.leaderboard.reproduce import check_weights, compare, package_weights

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "leaderboards" / "cards"
TINY = CARDS / "tiny-llava-as-sample.yaml"


@pytest.fixture(scope="session")
def cards():
    return load_cards(CARDS)


@pytest.fixture()
def tiny_raw():
    return yaml.safe_load(TINY.read_text())


def test_every_card_validates_and_equals_its_leaderboard_entry(cards):
    boards = files.load_all(ROOT / "leaderboards")
    assert len(cards) >= 8
    problems = [line for card in cards for line in leaderboard_mismatches(card, boards)]
    assert problems == []


def test_mismatch_with_the_leaderboard_is_reported(cards):
    boards = files.load_all(ROOT / "leaderboards")
    card = next(c for c in cards if c.name == "glamm-gcg-val")
    edited = dataclasses.replace(card, reported={"gcg_val": {**card.reported["gcg_val"], "mask_recall": 0.5}})
    assert leaderboard_mismatches(edited, boards) == [
        "glamm-gcg-val: gcg_val mask_recall is 0.5 in the card, 0.418 in the leaderboard"]
    absent = dataclasses.replace(card, leaderboard={**card.leaderboard, "model": "Nobody"})
    first = leaderboard_mismatches(absent, boards)[0]
    assert first.startswith("glamm-gcg-val: no reported leaderboard entry for 'Nobody'")


def test_list_names_the_required_cards(capsys):
    assert main(["reproduce", "--list", "--cards", str(CARDS)]) == 0
    out = capsys.readouterr().out
    for name in ("glamm-gcg-val", "glamm-gcg-test", "difflmm-aas-gcg", "flmm-llava-next-mistral-refcoco",
                 "flmm-llava-next-mistral-png", "glamm-res", "llava-1.5-7b-vqa", "tiny-llava-as-sample"):
        assert name in out


@pytest.mark.parametrize("edit, where, problem", [
    (lambda c: c.update(extra=1), "extra", "unknown key"),
    (lambda c: c.pop("tasks"), "tasks", "required field missing"),
    (lambda c: c.update(card_version=2), "card_version", "must be 1"),
    (lambda c: c.update(weights="hub"), "weights", "must be one of required, package"),
    (lambda c: c["tolerance"].update(miou=-0.1), "tolerance.miou", "must be ≥ 0"),
    (lambda c: c["tolerance"].pop("ap50"), "tolerance.ap50", "missing (reported for gcg_val)"),
    (lambda c: c["reported"].update(gcg_test={"miou": 0.5}), "reported.gcg_test", "not one of the card's tasks"),
    (lambda c: c["reported"]["gcg_val"].update(miou="high"), "reported.gcg_val.miou", "must be a number"),
    (lambda c: c["model_args"].update(model_path="{home}/x"), "model_args.model_path", "unknown placeholder {home}"),
    (lambda c: c["model_args"].update(question="a, b"), "model_args.question", "cannot hold ','"),
    (lambda c: c["model_args"].update(protocol="aas"), "model_args.protocol", "generation_protocol"),
    (lambda c: c["model_args"].update(max_new_tokens=24), "model_args.max_new_tokens", "must be a string"),
    (lambda c: c.update(tasks=["gcg_nope"]), "tasks[0]", "unknown task 'gcg_nope'"),
    (lambda c: c["leaderboard"].update(source="paper"), "leaderboard.source", "must be one of measured, reported"),
    (lambda c: c["checkpoints"][0].update(path="../elsewhere"), "checkpoints[0].path", "without '..'"),
    (lambda c: c["checkpoints"][1]["sha256"].update({"sam_tiny.pth": "abc"}), "checkpoints[1].sha256.sam_tiny.pth",
     "64 lowercase hex"),
    (lambda c: c["checkpoints"][1]["sha256"].update({"other.pth": None}), "checkpoints[1].sha256.other.pth",
     "names no file"),
    (lambda c: c.update(batch_size=0), "batch_size", "positive integer"),
])
def test_schema_errors_name_the_field(tiny_raw, edit, where, problem):
    edit(tiny_raw)
    with pytest.raises(InputError) as caught:
        parse_card(tiny_raw, Path("card.yaml"))
    assert caught.value.record == where and problem in caught.value.problem
    assert "\n" not in str(caught.value)


def test_reported_card_needs_a_citation(tiny_raw):
    tiny_raw["leaderboard"]["source"] = "reported"
    with pytest.raises(InputError, match="needs its citation"):
        parse_card(tiny_raw, Path("card.yaml"))


def test_bad_card_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("card_version: 1\ntitle: [unclosed\n")
    assert main(["reproduce", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: not readable YAML") and "\n" not in err
    assert main(["reproduce", "no-such-card", "--cards", str(CARDS)]) == 2
    assert "no reproduction card of that name" in capsys.readouterr().err


@pytest.fixture()
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(run_module, "load_backend", refuse)
    monkeypatch.setattr(reproduce_module, "execute", refuse)


def test_missing_weights_exit_2_one_line_before_any_model(tmp_path, capsys, no_model_loads):
    weights = tmp_path / "weights"
    (weights / "GLaMM-GCG").mkdir(parents=True)
    (weights / "GLaMM-GCG" / "config.json").write_text("{}")
    code = main(["reproduce", "glamm-gcg-val", "--cards", str(CARDS), "--weights", str(weights),
                 "--data-root", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err == (f"error: --weights: {weights}: card glamm-gcg-val: GLaMM-GCG/pytorch_model.bin.index.json of "
                   f"MBZUAI/GLaMM-GCG not found (and 11 more file(s)); fetch it first (docs/reproduction.md lists "
                   f"every file)")
    assert main(["reproduce", "glamm-gcg-val", "--cards", str(CARDS)]) == 2
    assert "card glamm-gcg-val needs --weights DIR" in capsys.readouterr().err


def test_complete_weights_still_need_data_root(tmp_path, capsys, no_model_loads):
    card = load_card(CARDS / "glamm-gcg-val.yaml")
    _fill_weights(card, tmp_path)
    assert main(["reproduce", "glamm-gcg-val", "--cards", str(CARDS), "--weights", str(tmp_path)]) == 2
    assert "reproduces numbers on the real data" in capsys.readouterr().err


def _fill_weights(card, folder):
    for checkpoint in card.checkpoints:
        targets = [checkpoint.path] if not checkpoint.files else [
            f"{checkpoint.path}/{f.split('|')[0].strip().replace('*', 'x')}" for f in checkpoint.files]
        for target in targets:
            (folder / target).parent.mkdir(parents=True, exist_ok=True)
            (folder / target).write_bytes(b"weights")


def test_alternatives_and_globs_count_as_present_and_sha256_is_checked(tmp_path):
    raw = yaml.safe_load(TINY.read_text())
    raw["checkpoints"] = [{"name": "m", "path": "m", "files": ["model-*.safetensors", "a.bin | b.bin"],
                           "sha256": {}},
                          {"name": "s", "path": "s.pth", "files": [], "sha256": {".": "0" * 64}}]
    card = parse_card(raw, Path("card.yaml"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model-00001-of-00002.safetensors").write_bytes(b"x")
    (tmp_path / "m" / "b.bin").write_bytes(b"x")
    (tmp_path / "s.pth").write_bytes(b"not the published file")
    with pytest.raises(InputError, match="differs from the published 000000000000… of s"):
        check_weights(card, tmp_path)
    assert check_weights(card, tmp_path, verify_sha256=False)[0] == "ok m (m): files present, no published sha256"
    (tmp_path / "m" / "b.bin").unlink()
    with pytest.raises(InputError, match=r"m/a.bin \| m/b.bin of m not found"):
        check_weights(card, tmp_path)


def test_shipped_tiny_checkpoints_match_the_card():
    card = load_card(TINY)
    lines = check_weights(card, package_weights())
    assert lines[0].endswith("3 sha256 verified") and lines[1].endswith("1 sha256 verified")
    difflmm = check_weights(load_card(CARDS / "tiny-difflmm-sample.yaml"), package_weights())
    assert len(difflmm) == 5 and all("sha256 verified" in line for line in difflmm)


def _results(task="gcg_val", protocol="glamm", **metrics):
    return {"results": {task: metrics}, "metric_config": {task: {"protocol": protocol}},
            "intervals": {task: {m: {"low": v - 0.1, "high": v + 0.1} for m, v in metrics.items()}}}


def test_compare_rows_pass_fail_and_protocols():
    card = load_card(TINY)
    reported = card.reported["gcg_val"]
    close = {m: v + 0.004 for m, v in reported.items()}
    rows = compare(card, _results(**close))
    assert all(row.passed for row in rows) and rows[0].inside is True
    far = {**close, "miou": reported["miou"] - 0.006}
    rows = {row.metric: row for row in compare(card, _results(**far))}
    assert not rows["miou"].passed and rows["miou"].reason == "|Δ| 0.006 > tolerance 0.005"
    assert rows["miou"].delta == pytest.approx(-0.006) and rows["ap50"].passed
    missing = dict(close)
    missing.pop("ap50")
    assert [r.reason for r in compare(card, _results(**missing)) if not r.passed] == ["metric not measured"]
    other = compare(card, _results(protocol="lisa", **close))
    assert not any(r.passed for r in other)
    assert other[0].reason == "scored under protocol 'lisa', the entry under 'glamm'"
    aas = dataclasses.replace(card, generation_protocol="aas")
    recorded = {**_results(**close), "config": {"generation_protocol": {"gcg_val": "task-prompt"}}}
    assert compare(aas, recorded)[0].reason == "generated under protocol 'task-prompt', the card asks for 'aas'"
    assert all(r.passed for r in compare(aas, _results(**close)))   # runs that record none are not refused


def test_cli_exit_1_on_fail(tmp_path, capsys, monkeypatch):
    card = load_card(TINY)
    seen = {}

    def fake_execute(model, model_args, task, *rest, **kwargs):
        seen.update(model=model, model_args=model_args, task=task)
        return _results(**{**card.reported["gcg_val"], "mask_recall": 0.5})

    monkeypatch.setattr(reproduce_module, "execute", fake_execute)
    assert main(["reproduce", "tiny-llava-as-sample", "--cards", str(CARDS), "--output", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    delta = abs(0.5 - card.reported["gcg_val"]["mask_recall"])
    assert f"FAIL |Δ| {delta:.4g} > tolerance 0.005" in out and "5 PASS, 1 FAIL" in out
    assert seen["model"] == "llava-as" and seen["task"] == "gcg_val"
    assert f"model_path={package_weights()}/tiny-llava-as," in seen["model_args"]
    assert "protocol=" not in seen["model_args"]
    verdict = json.loads((tmp_path / "reproduction.json").read_text())
    assert verdict["passed"] is False and [r["passed"] for r in verdict["rows"]].count(False) == 1


def test_generation_protocol_travels_as_a_model_arg():
    card = load_card(CARDS / "difflmm-aas-gcg.yaml")
    args = card.resolved_model_args(Path("/w"))
    assert args["protocol"] == "aas" and args["model_base"] == "/w/vicuna-7b-v1.5"
    assert card.resolved_text_model(Path("/w")) == "/w/bert-base-uncased"


@pytest.mark.java
def test_tiny_card_passes_end_to_end(tmp_path, capsys, tiny_gcg_runs):
    # the card spells out `--model llava-as` with no model args, so its generations are the session run's
    # (tests/conftest.py tiny_gcg_runs, in the session's generation cache): read back, not generated again
    plain = json.loads((tiny_gcg_runs["llava-as"] / "results.json").read_text())
    code = main(["reproduce", "tiny-llava-as-sample", "--cards", str(CARDS), "--bootstrap", "50",
                 "--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "6 PASS, 0 FAIL" in out
    verdict = json.loads((tmp_path / "reproduction.json").read_text())
    assert verdict["passed"] is True and {r["metric"] for r in verdict["rows"]} >= {"mask_recall", "miou", "ap50"}
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["n_samples"]["gcg_val"] == 12
    assert results["timing"]["gcg_val.cached_docs"] == 12 and results["timing"]["gcg_val.generated_docs"] == 0
    assert results["results"] == plain["results"]


def test_tiny_cards_spell_out_the_no_model_args_run():
    from gcgbench.models import embedded

    llava = load_card(TINY).resolved_model_args(package_weights())
    assert llava == embedded.tiny_model_args()
    difflmm = load_card(CARDS / "tiny-difflmm-sample.yaml").resolved_model_args(package_weights())
    assert difflmm == embedded.tiny_difflmm_args()


def test_vqa_leaderboard_publishes_mme_in_points_and_full_task_names():
    from gcgbench.leaderboard.publish import render_markdown
    from gcgbench.leaderboard.tables import build_table, task_label

    board = files.load(ROOT / "leaderboards" / "vqa.json")
    text = render_markdown([build_table(board)])
    row = next(line for line in text.splitlines() if line.startswith("| LLaVA-1.5-7B |"))
    assert "1510.7" in row and "151070.0" not in text and "| 62.0 |" in row
    assert task_label("gqa_testdev") == "gqa_testdev" and task_label("res_refcoco+_testA") == "RefCOCO+ testA"


def _oracle_card(folder, scoring_protocol):
    card = {"card_version": 1, "title": "oracle on the sample RefCOCO val", "backend": "oracle", "weights": "package",
            "data": "sample", "checkpoints": [], "model_args": {}, "generation_protocol": None,
            "scoring_protocol": scoring_protocol, "tasks": ["res_refcoco_val"],
            "leaderboard": {"model": "oracle (sample)", "source": "measured", "protocol": "flmm"},
            "reported": {"res_refcoco_val": {"ciou": 1.0, "giou": 1.0}}, "tolerance": {"ciou": 0.0, "giou": 0.0},
            "citation": None}
    path = folder / f"oracle-{scoring_protocol}.yaml"
    path.write_text(yaml.safe_dump(card))
    return path


def test_scoring_protocol_reaches_the_task_through_the_run_path(tmp_path, capsys):
    path = _oracle_card(tmp_path, "flmm")
    assert main(["reproduce", str(path), "--no-cache", "--bootstrap", "0", "--output", str(tmp_path / "a")]) == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["metric_config"]["res_refcoco_val"]["protocol"] == "flmm"
    assert "2 PASS, 0 FAIL" in capsys.readouterr().out
    default = _oracle_card(tmp_path, None)     # the task's default (lisa) is not the entry's protocol
    assert main(["reproduce", str(default), "--no-cache", "--bootstrap", "0", "--output", str(tmp_path / "b")]) == 1
    assert "FAIL scored under protocol 'lisa', the entry under 'flmm'" in capsys.readouterr().out
