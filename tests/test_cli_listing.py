"""Listings never cut identifiers (piped or in an 80-column terminal); `--json` on `tasks`, `models`,
`cache info` and `leaderboard show`; `cache info` on a corrupt database is one line (issue 15, items 9, 12)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path


from gcgbench.cli.app import main
from gcgbench.models.registry import BACKENDS
from gcgbench.tasks.registry import all_specs, task_names

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def identifiers() -> set[str]:
    specs = all_specs()
    return set(task_names()) | {m for name in task_names() for m in specs[name].metrics} | set(BACKENDS)


def cells(text: str) -> set[str]:
    """Every table cell's text (box characters and padding removed)."""
    found = set()
    for line in ANSI.sub("", text).splitlines():
        for cell in re.split(r"[│┃]", line):
            found.update(cell.strip().strip("()").split(", "))
    return found


def test_piped_listings_show_every_name_whole():
    environment = dict(os.environ, COLUMNS="80")
    shown = set()
    for command in ("tasks", "models"):
        done = subprocess.run([sys.executable, "-m", "gcgbench", command], capture_output=True, text=True,
                              env=environment, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        shown |= cells(done.stdout)
    assert identifiers() <= shown


def test_an_80_column_terminal_shows_every_name_whole(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    shown = set()
    for command in ("tasks", "models"):
        assert main([command]) == 0
        output = capsys.readouterr().out
        shown |= cells(output)
    missing = identifiers() - shown
    assert not missing


def test_json_listings(capsys, tmp_path):
    assert main(["tasks", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["task"] for row in listed["tasks"]] == task_names() and listed["sample_data"] is True
    gcg = next(row for row in listed["tasks"] if row["task"] == "gcg_val")
    assert gcg["aliases"] == ["gcg"] and "mask_recall" in gcg["metrics"] and gcg["family"] == "gcg"

    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert {row["model"] for row in models} == set(BACKENDS)
    assert next(row for row in models if row["model"] == "replay")["arguments"].keys() == {"predictions"}

    assert main(["cache", "info", "--cache", str(tmp_path / "cache"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 0 and info["path"].endswith("generations.sqlite")

    assert main(["leaderboard", "show", "gcg_val", "--dir", str(ROOT / "leaderboards"), "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["task"] == "gcg_val" and any(e["model"] == "GLaMM" for e in board["entries"])


def test_cache_info_on_a_corrupt_database_is_one_line(tmp_path, capsys):
    folder = tmp_path / "cache"
    folder.mkdir()
    with sqlite3.connect(folder / "generations.sqlite") as connection:  # schema version right, tables gone
        connection.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    assert main(["cache", "info", "--cache", str(folder)]) == 2
    captured = capsys.readouterr()
    assert "not a usable gcgbench cache" in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
