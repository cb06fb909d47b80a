"""Usage errors: every command of `gcgbench --help`, driven with no arguments, a bogus option and a bad
value, ends with typer's usage panel and exit status 2, never a traceback; bare `gcgbench` prints the
help and exits 0 (issue 15, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer.main

from gcgbench.cli.app import app, main

ROOT = Path(__file__).resolve().parents[1]


def leaf_commands(command=None, path=()):
    """(path, click command) of every runnable command, subcommands of groups included."""
    command = command or typer.main.get_command(app)
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [(path, command)]
    found = []
    for name, sub in sorted(subcommands.items()):
        found += leaf_commands(sub, path + (name,))
    return found


def groups(command=None, path=()):
    command = command or typer.main.get_command(app)
    found = []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if getattr(sub, "commands", None) is not None:
            found += [path + (name,)] + groups(sub, path + (name,))
    return found


def annotation(param):
    """The Python type of an option (typer's own parameters carry it; click's carry `.type`)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        return {"integer": int, "float": float}.get(getattr(param.type, "name", ""), str)
    kind = descriptor.annotation
    arguments = [a for a in typing.get_args(kind) if a is not type(None)]
    return arguments[0] if typing.get_origin(kind) is typing.Union and len(arguments) == 1 else kind


def bad_value_arguments(command):
    """Arguments that give one option a value it cannot take: 'abc' for a number, no value at all for a
    string or path option, a value for a flag."""
    options = [p for p in command.params if getattr(p, "opts", None) and p.opts[0].startswith("--")
               and p.opts[0] != "--help"]
    numeric = [p for p in options if annotation(p) in (int, float) and not p.is_flag]
    if numeric:
        return [numeric[0].opts[0], "abc"]
    valued = [p for p in options if not p.is_flag]
    if valued:
        return [valued[0].opts[0]]  # the option's value is missing
    if options:
        return [f"{options[0].opts[0]}=abc"]  # a flag takes no value
    return None


COMMANDS = leaf_commands()
NAMES = [" ".join(path) for path, _ in COMMANDS]


def run_main(argv, capsys):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_command_is_covered():
    assert {"run", "infer", "score", "validate", "export", "check", "report", "tasks", "models", "demo",
            "cache info", "cache prune", "leaderboard add", "leaderboard show", "leaderboard publish"} <= set(NAMES)


@pytest.mark.parametrize("path,command", COMMANDS, ids=NAMES)
def test_missing_required_arguments_is_a_usage_error(path, command, capsys):
    if not any(p.required for p in command.params):
        pytest.skip("runs without arguments")
    code, output = run_main(path, capsys)
    assert code == 2, output
    assert "Traceback" not in output and "Missing" in output


@pytest.mark.parametrize("path,command", COMMANDS, ids=NAMES)
def test_bogus_option_is_a_usage_error(path, command, capsys):
    code, output = run_main([*path, "--bogus-option"], capsys)
    assert code == 2, output
    assert "Traceback" not in output and "No such option" in output


@pytest.mark.parametrize("path,command", COMMANDS, ids=NAMES)
def test_bad_value_is_a_usage_error(path, command, capsys):
    arguments = bad_value_arguments(command)
    if arguments is None:
        pytest.skip("no options")
    code, output = run_main([*path, *arguments], capsys)
    assert code == 2, output
    assert "Traceback" not in output and "Error" in output


@pytest.mark.parametrize("path", groups(), ids=lambda p: " ".join(p))
def test_group_without_subcommand_prints_help_and_exits_2(path, capsys):
    code, output = run_main(path, capsys)
    assert code == 2 and "Usage" in output and "Traceback" not in output


def test_bare_gcgbench_prints_help_and_exits_0(capsys):
    code = main([])
    captured = capsys.readouterr()
    assert code == 0 and "Usage" in captured.out and "Commands" in captured.out


def test_unknown_command_and_named_cases_from_the_issue(capsys):
    for argv in (["bogus"], ["run", "--model", "oracle", "--task", "gcg", "--batch-size", "abc"],
                 ["run", "--model", "oracle", "--task", "gcg", "--limit", "abc"]):
        code, output = run_main(argv, capsys)
        assert code == 2 and "Traceback" not in output, (argv, output)


@pytest.mark.parametrize("argv,option", [
    (["run", "--model", "oracle", "--task", "gcg_val", "--batch-size", "0"], "--batch-size"),
    (["run", "--model", "oracle", "--task", "gcg_val", "--limit", "-1"], "--limit"),
    (["infer", "--model", "oracle", "--task", "gcg_val", "--limit", "0"], "--limit"),
    (["run", "--model", "oracle", "--task", "gcg_val", "--bootstrap", "-1"], "--bootstrap"),
    (["infer", "--model", "oracle", "--task", "gcg_val", "--bootstrap", "-5"], None),
    (["run", "--model", "oracle", "--task", "gres_grefcoco_val", "--min-mask-area", "0"], "--min-mask-area"),
    (["score", "--task", "gcg_val", "--predictions", "no-such-folder", "--bootstrap", "-1"], "--bootstrap"),
], ids=["batch-size 0", "limit -1", "limit 0", "run bootstrap -1", "infer takes no bootstrap", "min-mask-area 0",
        "score bootstrap -1"])
def test_numbers_out_of_range_are_refused_before_anything_loads(argv, option, tmp_path, capsys):
    """One line naming the option, exit 2, and no run folder written (the check comes before data or models)."""
    output = tmp_path / "out"
    code, text = run_main([*argv, "--output", str(output)], capsys)
    assert code == 2 and "Traceback" not in text, text
    if option is not None:
        assert f"error: {option}: must be" in text, text
    assert not output.exists()


def test_keyboard_interrupt_takes_the_interrupted_path(monkeypatch, capsys):
    from gcgbench.cli import listing

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "task_names", interrupted)
    code, output = run_main(["tasks"], capsys)
    assert code == 130 and "interrupted" in output


def real(*argv):
    environment = dict(os.environ, COLUMNS="80")
    return subprocess.run([sys.executable, "-m", "gcgbench", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=environment, timeout=120)


def test_real_process_exit_statuses():
    bare = real()
    assert bare.returncode == 0 and "Usage" in bare.stdout and "Traceback" not in bare.stderr
    bad = real("run", "--model", "oracle", "--task", "gcg", "--limit", "abc")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--limit" in bad.stderr
    missing = real("leaderboard", "show")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "Missing argument" in missing.stderr


def test_paths_that_cannot_be_used_are_one_line_errors(tmp_path, capsys):
    """An output under a plain file, a replay file that does not exist, a --data-root that does not exist: one
    line naming the path, exit 2, no traceback."""
    run = tmp_path / "run"
    assert main(["run", "--model", "oracle", "--task", "gcg_val", "--bootstrap", "0", "--no-cache",
                 "--output", str(run)]) == 0
    capsys.readouterr()
    plain_file = tmp_path / "a-file"
    plain_file.write_text("x")
    cases = [
        (["diagnose", str(run), "--output", str(plain_file / "diagnosis")], str(plain_file / "diagnosis")),
        (["run", "--model", "replay", "--task", "gcg_val", "--model-args", f"predictions={tmp_path / 'nope.jsonl'}",
          "--output", str(tmp_path / "replayed")], f"error: --model-args: predictions: {tmp_path / 'nope.jsonl'}: not found"),
        (["report", str(run), "--data-root", str(tmp_path / "no-data"), "--output", str(tmp_path / "r.html")],
         f"error: {tmp_path / 'no-data'}: --data-root folder not found"),
    ]
    for argv, needle in cases:
        code, text = run_main(argv, capsys)
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        assert code == 2 and "Traceback" not in text and len(errors) == 1 and needle in errors[0], (argv, text)
    assert not (tmp_path / "replayed").exists() and not (tmp_path / "r.html").exists()
