"""The shipped tiny checkpoints' recipe (scripts/tiny_recipe.py): one list of steps for `make train-tiny` and
`make verify-tiny`, run in order, each started from a folder an earlier step made, finished steps skipped only
when their arguments are unchanged, and the shipped folders copied into the package layout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import tiny_recipe as recipe  # noqa: E402


def test_every_start_is_an_earlier_step_and_every_shipped_folder_is_made():
    order = list(recipe.STEPS)
    for step, (option, source) in recipe.STARTS.items():
        assert option in ("--init-from", "--base-llava")
        assert order.index(source) < order.index(step), (step, source)
    assert set(recipe.SHIPPED) <= set(order)
    assert set(recipe.SHIPPED.values()) == {p.name for p in recipe.CHECKPOINTS.iterdir() if p.is_dir()}


def test_the_command_ends_with_the_start_folder_and_output(tmp_path):
    folders = {name: tmp_path / name for name in recipe.STEPS}
    command = recipe.step_command("llava-as", folders)
    assert command[1].endswith("train_tiny.py")
    assert command[-4:] == ["--init-from", str(tmp_path / "llava-ft3"), "--output", str(tmp_path / "llava-as")]
    # the option given last wins: the llava-as fine-tunes' own learning rate and threads over FINETUNE's
    assert _last(recipe.STEPS["llava-as"], "--lr") == "5e-4"
    assert _last(recipe.STEPS["llava-as"], "--res-answer") == "unstated"
    assert _last(recipe.STEPS["llava-ft3"], "--threads") == "2"
    assert _last(recipe.STEPS["llava-ft2"], "--threads") == "1"


def _last(arguments, option):
    """The value argparse keeps: that of the option's last occurrence."""
    return [value for name, value in zip(arguments, arguments[1:]) if name == option][-1]


class _Done:
    returncode = 0


def _fake_training(calls):
    def run(command):
        output = Path(command[command.index("--output") + 1])
        calls.append(output.name)
        output.mkdir(parents=True, exist_ok=True)
        (output / "weights.bin").write_text(output.name)
        (output / ".train_state.pt").write_text("state")
        return _Done()
    return run


def test_steps_run_in_order_and_finished_ones_are_skipped(tmp_path, monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(recipe.subprocess, "run", _fake_training(calls))
    folders = recipe.retrain(tmp_path)
    assert calls == list(recipe.STEPS)
    marker = json.loads((folders["llava-as"] / recipe.MARKER).read_text())
    assert marker["arguments"] == recipe.step_command("llava-as", folders)[2:]

    calls.clear()
    recipe.retrain(tmp_path)
    assert calls == []
    assert "done before" in capsys.readouterr().out

    # a step whose recorded arguments differ (a changed recipe) or whose marker is unreadable runs again
    (folders["difflmm"] / recipe.MARKER).write_text(json.dumps({"arguments": ["--steps", "1"]}))
    (folders["sam"] / recipe.MARKER).write_text("{not json")
    recipe.retrain(tmp_path)
    assert calls == ["sam", "difflmm"]


def test_install_copies_the_shipped_steps_without_marker_or_state(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe.subprocess, "run", _fake_training([]))
    folders = recipe.retrain(tmp_path / "train")
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "tiny-sam").mkdir(parents=True)
    (checkpoints / "tiny-sam" / "stale.pth").write_text("old")
    recipe.install(folders, checkpoints)
    for step, target in recipe.SHIPPED.items():
        assert sorted(p.name for p in (checkpoints / target).iterdir()) == ["weights.bin"]
        assert (checkpoints / target / "weights.bin").read_text() == step


def test_a_failed_step_stops_the_recipe_with_one_line_and_keeps_the_steps_before(tmp_path, monkeypatch, capsys):
    calls: list[str] = []
    succeed = _fake_training(calls)

    def run(command):
        if command[command.index("--output") + 1].endswith("difflmm-4ep"):
            calls.append("difflmm-4ep")
            return type("Failed", (), {"returncode": 3})()
        return succeed(command)

    monkeypatch.setattr(recipe.subprocess, "run", run)
    assert recipe.main(["--output", str(tmp_path)]) == 1
    assert calls == ["llava-8ep", "sam", "difflmm-4ep"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step difflmm-4ep failed" in err and "again to resume" in err
    assert (tmp_path / "sam" / recipe.MARKER).is_file() and not (tmp_path / "difflmm-4ep" / recipe.MARKER).exists()


def test_verify_tiny_runs_the_same_steps_and_reports_a_failed_one_in_one_line(tmp_path, monkeypatch, capsys):
    import verify_tiny

    def failing(command):
        return type("Failed", (), {"returncode": 2})()

    monkeypatch.setattr(recipe.subprocess, "run", failing)
    assert verify_tiny.main(["--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step llava-8ep failed" in err
