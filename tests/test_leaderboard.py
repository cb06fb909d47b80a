"""Leaderboard files: seeded published numbers, add/show/publish round trips, fingerprint conflicts,
schema versions, atomic and concurrent writes, and the HTML leaderboard rendered in headless Chromium.

`run_cli` and `chromium` are shared with test_check.py and test_report.py."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pandas
import pytest
import typer
from PIL import Image

from gcgbench.api.errors import GcgbenchError
from gcgbench.leaderboard import emergent, files, from_results, plots, publish, seed, tables

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def run_cli(argv: list[str]) -> int:
    """`gcgbench ARGV` as `gcgbench.cli.app.main` runs it; until app.py registers the leaderboard commands,
    through a local app with the same registration lines."""
    import click

    from gcgbench.cli import app as app_module
    from gcgbench.cli import leaderboard

    names = {c.name for c in app_module.app.registered_commands} | {g.name for g in app_module.app.registered_groups}
    if {"leaderboard", "check", "report"} <= names:
        return app_module.main(argv)
    local = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    local.add_typer(leaderboard.app, name="leaderboard")
    local.command("check", help=leaderboard.check.__doc__)(leaderboard.check)
    local.command("report", help=leaderboard.report.__doc__)(leaderboard.report)
    try:
        outcome = local(args=argv, standalone_mode=False)
    except GcgbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except click.ClickException as error:
        error.show()
        return error.exit_code
    return outcome if isinstance(outcome, int) else 0


def chromium(tmp_path: Path, url: str, screenshot: Path | None = None, size: str = "1200,1600") -> str:
    """Load `url` in headless Chromium: the DOM after scripts ran, and a screenshot if asked. Skips the test
    when no Chromium is installed (CI: `apt-get install -y chromium`)."""
    binary = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if binary is None:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium)")
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'chromium-profile'}",
            f"--window-size={size}"]
    if screenshot is not None:
        subprocess.run(base + [f"--screenshot={screenshot}", url], capture_output=True, timeout=60, check=True)
        assert screenshot.is_file() and screenshot.stat().st_size > 0
    done = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def results_payload(model: str = "m", fingerprint: dict | None = None, task: str = "gcg_val",
                    metrics: dict | None = None, protocol: str = "glamm", version: str = "1") -> dict:
    """A minimal results.json (schema 1) for one task."""
    metrics = metrics or {"meteor": 0.15, "cider": 0.45, "ap50": 0.3, "miou": 0.65, "mask_recall": 0.40}
    intervals = {k: {"low": v - 0.02, "high": v + 0.02, "confidence": 0.95, "n_resamples": 100,
                     "method": "percentile", "seed": 0, "n_nan": 0} for k, v in metrics.items()}
    return {
        "schema_version": 1, "results": {task: metrics}, "intervals": {task: intervals}, "n_samples": {task: 12},
        "versions": {task: version}, "metric_config": {task: {"protocol": protocol}}, "notes": {task: []},
        "config": {"model": model, "model_args": {}, "fingerprint": fingerprint or {"name": model, "args": {}},
                   "git_hash": "abc123", "package_versions": {"gcgbench": "0.1.0"}},
        "timing": {},
    }


def read_published_csv(path: Path) -> "pandas.DataFrame":
    """The published CSV as docs/leaderboards.md says to read it: names as text ("NA" is a model name), empty
    numbers as missing."""
    return pandas.read_csv(path, keep_default_na=False, na_values={c: [""] for c in ("value", "low", "high", "n")},
                           dtype={"version": str, "n": "Int64"})


def write_results(folder: Path, payload: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(payload))
    return folder / "results.json"


# ------------------------------------------------------------------------------------------- seeded files


def test_seeded_files_hold_the_published_numbers_as_fractions():
    boards = {board.family: board for board in files.load_all(REPO / "leaderboards")}
    assert set(boards) >= {"gcg", "res", "captioning"}
    for board in boards.values():
        for entry in board.find(source="reported"):
            assert entry.citation and entry.task_version == "1"

    def value(family, model, task, metric):
        [entry] = boards[family].find(task=task, model=model)
        return entry.metrics[metric]

    glamm_val = boards["gcg"].find(task="gcg_val", model="GLaMM")[0]
    assert glamm_val.metrics == {"meteor": 0.162, "cider": 0.472, "ap50": 0.308, "miou": 0.663, "mask_recall": 0.418}
    assert glamm_val.protocol == "glamm" and "GCG_Table" in glamm_val.citation
    assert value("gcg", "GLaMM", "gcg_test", "mask_recall") == 0.408
    assert value("gcg", "GLaMM†", "gcg_test", "cider") == 0.379
    assert value("gcg", "DiffLMM + a&s", "gcg_test", "mask_recall") == 0.442
    assert value("res", "GLaMM (FT)", "res_refcoco_val", "ciou") == 0.795
    assert value("res", "GLaMM (FT)", "res_refcocog_test", "ciou") == 0.749
    flmm = {e.task: e for e in boards["res"].find(model="F-LMM")}
    assert {t: e.metrics["ciou"] for t, e in flmm.items()} == {
        "res_refcoco_val": 0.761, "res_refcoco+_val": 0.664, "res_refcocog_val": 0.671}
    assert {e.protocol for e in flmm.values()} == {"flmm"}
    assert boards["res"].find(model="X-Decoder")[0].task == "res_refcocog_val"  # "-" columns are left out
    assert value("captioning", "GLaMM (FT)", "regcap_vg_test", "cider") == 1.805


def test_seed_module_regenerates_the_committed_reported_entries(tmp_path):
    """The committed files are the seed plus measured entries added since (e.g. the tiny model's)."""
    seed.write_seed(tmp_path)
    for path in sorted(tmp_path.glob("*.json")):
        committed = json.loads((REPO / "leaderboards" / path.name).read_text())
        committed["entries"] = [entry for entry in committed["entries"] if entry["source"] == "reported"]
        assert json.loads(path.read_text()) == committed, path.name


# ------------------------------------------------------------------------------------- add / show / publish


def test_add_show_publish_round_trip(tmp_path, capsys):
    board_dir = tmp_path / "boards"
    shutil.copytree(REPO / "leaderboards", board_dir)
    seeded = files.load(board_dir / "gcg.json")  # published numbers only: the repo's measured rows change
    seeded.entries = [entry for entry in seeded.entries if entry.source == "reported"]
    files.save(seeded)
    run = write_results(tmp_path / "run", results_payload("ours", metrics={
        "meteor": 0.17, "cider": 0.50, "ap50": 0.31, "miou": 0.70, "mask_recall": 0.45, "mask_recall_max_matching": 0.47}))
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(board_dir)]) == 0
    assert "added ours gcg_val@1 (glamm, measured)" in capsys.readouterr().out
    entry = files.load(board_dir / "gcg.json").find(task="gcg_val", model="ours")[0]
    assert entry.metrics["mask_recall"] == 0.45 and entry.n == 12 and entry.git_hash == "abc123"
    assert entry.harness_version == "0.1.0" and entry.source == "measured" and entry.date and entry.added
    assert entry.intervals["miou"]["low"] == pytest.approx(0.68)
    assert entry.fingerprint == {"name": "ours", "args": {}} and len(entry.fingerprint_sha256) == 64

    assert run_cli(["leaderboard", "show", "gcg_val", "--dir", str(board_dir)]) == 0
    shown = capsys.readouterr().out
    assert "ours" in shown and "45.0 [43.0–47.0]" in shown and "41.8" in shown and "reported [1]" in shown

    assert run_cli(["leaderboard", "publish", "--format", "md", "--dir", str(board_dir)]) == 0
    markdown = capsys.readouterr().out
    row = next(line for line in markdown.splitlines() if line.startswith("| ours |"))
    assert "| measured |" in row and "**45.0**" in row and "**70.0**" in row and "**50.0**" in row
    glamm = next(line for line in markdown.splitlines() if line.startswith("| GLaMM | reported"))
    assert "| 41.8 |" in glamm and "| **43.5** |" in glamm  # gcg_test: nothing measured, GLaMM still best CIDEr

    out = tmp_path / "published"
    for fmt in ("latex", "csv"):
        assert run_cli(["leaderboard", "publish", "--format", fmt, "--dir", str(board_dir), "--output", str(out),
                        "--no-plots"]) == 0
    latex = (out / "leaderboards.tex").read_text()
    assert r"\textbf{45.0}" in latex and r"GLaMM$^\dagger$" in latex and r"\multicolumn{5}{c}{val}" in latex
    table = read_published_csv(out / "leaderboards.csv")
    assert tuple(table.columns) == publish.CSV_COLUMNS
    ours = table[(table.model == "ours") & (table.metric == "mask_recall")]
    assert ours[["family", "task", "version", "protocol", "source", "n"]].values.tolist() == [
        ["gcg", "gcg_val", "1", "glamm", "measured", 12]]
    assert ours.value.tolist() == [0.45] and ours.low.tolist() == [pytest.approx(0.43)]
    assert len(table) == sum(len(e.metrics) for b in files.load_all(board_dir) for e in b.entries)
    assert sorted(p.name for p in out.iterdir()) == ["leaderboards.csv", "leaderboards.tex"]  # --no-plots


def test_publish_writes_plots_of_the_headline_metrics(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (a gcgbench dependency)")
    payload = results_payload("ours", metrics={"mask_recall": 0.45})
    board = files.load(REPO / "leaderboards" / "gcg.json")
    board.add(from_results.entries_from_results(payload, write_results(tmp_path / "run", payload))[0])
    assert run_cli(["leaderboard", "publish", "--format", "html", "--dir", str(REPO / "leaderboards"),
                    "--output", str(tmp_path / "site")]) == 0
    for family in ("gcg", "res", "captioning"):
        assert (tmp_path / "site" / f"{family}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = tables.build_table(board)
    image = Image.open(io.BytesIO(plots.plot_png(table)))
    assert image.width > 300 and image.height > 150
    assert table.headline == "mask_recall" and [c.task for c in table.columns if c.metric == "mask_recall"] == [
        "gcg_val", "gcg_test"]


def test_different_fingerprint_is_refused_unless_replace(tmp_path, capsys):
    board_dir = tmp_path / "boards"
    first = write_results(tmp_path / "a", results_payload("m", {"name": "m", "args": {"checkpoint": "v1"}}))
    second = write_results(tmp_path / "b", results_payload("m", {"name": "m", "args": {"checkpoint": "v2"}},
                                                           metrics={"mask_recall": 0.9}))
    assert run_cli(["leaderboard", "add", str(first), "--dir", str(board_dir)]) == 0
    assert run_cli(["leaderboard", "add", str(first), "--dir", str(board_dir)]) == 0
    assert "updated m gcg_val@1" in capsys.readouterr().out  # same fingerprint: a re-run updates in place
    before = (board_dir / "gcg.json").read_bytes()
    assert run_cli(["leaderboard", "add", str(second), "--dir", str(board_dir)]) == 2
    error = capsys.readouterr().err
    assert "another fingerprint" in error and "pass --replace" in error
    assert (board_dir / "gcg.json").read_bytes() == before
    assert run_cli(["leaderboard", "add", str(second), "--dir", str(board_dir), "--replace"]) == 0
    assert "replaced m gcg_val@1" in capsys.readouterr().out
    [entry] = files.load(board_dir / "gcg.json").entries
    assert entry.metrics == {"mask_recall": 0.9} and entry.fingerprint["args"] == {"checkpoint": "v2"}


def test_reported_entries_need_a_citation_and_sit_beside_measured_ones(tmp_path, capsys):
    board_dir = tmp_path / "boards"
    run = write_results(tmp_path / "run", results_payload("GLaMM"))
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(board_dir), "--source", "reported"]) == 2
    assert "--citation" in capsys.readouterr().err
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(board_dir), "--source", "reported",
                    "--citation", "Someone et al. 2025, Table 1"]) == 0
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(board_dir)]) == 0
    board = files.load(board_dir / "gcg.json")
    assert sorted(e.source for e in board.entries) == ["measured", "reported"]
    assert board.find(source="reported")[0].fingerprint["citation"] == "Someone et al. 2025, Table 1"


def test_score_runs_without_a_model_name_need_model(tmp_path, capsys):
    payload = results_payload()
    payload["config"].update(model=None, fingerprint=None)
    run = write_results(tmp_path / "run", payload)
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(tmp_path / "b")]) == 2
    assert "pass --model" in capsys.readouterr().err
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(tmp_path / "b"), "--model", "mine"]) == 0
    assert files.load(tmp_path / "b" / "gcg.json").entries[0].fingerprint == {"name": "mine", "args": {}}


# ------------------------------------------------------------------------------------------ schema versions


def board_file(tmp_path: Path, payload: dict) -> Path:
    path = tmp_path / "gcg.json"
    path.write_text(json.dumps(payload))
    return path


def current_payload() -> dict:
    entry = seed.seed_entries()[0].to_json()
    return {"schema_version": 1, "family": "gcg", "scale": "fraction", "entries": [entry]}


@pytest.mark.parametrize("change, message", [
    ({"schema_version": 2}, "newer than this gcgbench reads"),
    ({"schema_version": 0}, "older than this gcgbench reads"),
    ({"schema_version": "1"}, "must be an integer"),
    ({"scale": "points"}, "must be 'fraction'"),
])
def test_other_schema_versions_are_refused_with_a_clear_message(tmp_path, change, message, capsys):
    path = board_file(tmp_path, {**current_payload(), **change})
    before = path.read_bytes()
    with pytest.raises(GcgbenchError, match=message):
        files.load(path)
    run = write_results(tmp_path / "run", results_payload())
    assert run_cli(["leaderboard", "add", str(run), "--file", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert path.read_bytes() == before  # never overwritten


def test_files_without_a_version_or_with_points_entries_are_not_misread(tmp_path):
    payload = current_payload()
    del payload["schema_version"]
    with pytest.raises(GcgbenchError, match="no 'schema_version'"):
        files.load(board_file(tmp_path, payload))
    payload = current_payload()
    payload["entries"][0]["scale"] = "points"
    with pytest.raises(GcgbenchError, match=r"entries\[0\].*'scale' must be 'fraction'"):
        files.load(board_file(tmp_path, payload))
    payload = current_payload()
    payload["entries"][0]["fingerprint"]["name"] = "edited"
    with pytest.raises(GcgbenchError, match="does not match"):
        files.load(board_file(tmp_path, payload))


def test_an_older_schema_with_a_migration_is_migrated(tmp_path, monkeypatch):
    def from_zero(payload):  # a hypothetical v0: values in points under "rows"
        entries = []
        for row in payload["rows"]:
            entry = dict(row, scale="fraction", metrics={k: v / 100 for k, v in row["metrics"].items()})
            entries.append(entry)
        return {"schema_version": 1, "family": payload["family"], "scale": "fraction", "entries": entries}

    monkeypatch.setitem(files.MIGRATIONS, 0, from_zero)
    row = current_payload()["entries"][0]
    row.pop("scale")
    row.pop("fingerprint_sha256")
    row["metrics"] = {"mask_recall": 27.0}
    board = files.load(board_file(tmp_path, {"schema_version": 0, "family": "gcg", "rows": [row]}))
    assert board.migrated_from == 0 and board.entries[0].metrics == {"mask_recall": 0.27}
    files.save(board)
    assert json.loads((tmp_path / "gcg.json").read_text())["schema_version"] == 1


# --------------------------------------------------------------------------------------- atomic, concurrent


def test_writes_are_atomic_and_leave_nothing_behind(tmp_path, monkeypatch):
    path = tmp_path / "gcg.json"
    board = files.Leaderboard(path, "gcg", [seed.seed_entries()[0]])
    files.save(board)
    before = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) & 0o044  # readable by others, unlike mkstemp's 0600

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(files.json, "dump", explode)
    with pytest.raises(RuntimeError):
        files.save(files.Leaderboard(path, "gcg", seed.seed_entries()[:3]))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gcg.json"]


def test_concurrent_adds_keep_every_entry(tmp_path):
    entries = [files.Entry(model=f"m{i}", task="gcg_val", task_version="1", protocol="glamm", source="measured",
                           metrics={"mask_recall": i / 10}, fingerprint={"name": f"m{i}"}) for i in range(8)]
    threads = [threading.Thread(target=files.add_entries, args=([entry], tmp_path)) for entry in entries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.model for e in files.load(tmp_path / "gcg.json").entries) == [f"m{i}" for i in range(8)]
    assert sorted(os.listdir(tmp_path)) == ["gcg.json"]


# ------------------------------------------------------------------------------------ HTML in a browser


def test_html_leaderboard_renders_in_chromium(tmp_path):
    pytest.importorskip("matplotlib", reason="the HTML page embeds plots made with matplotlib")
    boards = files.load_all(REPO / "leaderboards")
    for board in boards:  # the published numbers only: measured entries in the repo change as models do
        board.entries = [entry for entry in board.entries if entry.source == "reported"]
    payload = results_payload("ours", metrics={"meteor": 0.2, "mask_recall": 0.5})
    ours = from_results.entries_from_results(payload, write_results(tmp_path / "run", payload))
    boards[[b.family for b in boards].index("gcg")].add(ours[0])
    text, written = publish.publish(boards, "html", tmp_path / "site")
    page = tmp_path / "site" / "leaderboards.html"
    assert page in written and "http" not in text.replace("http-equiv", "")  # nothing fetched from outside
    shot = tmp_path / "shot.png"
    dom = chromium(tmp_path, page.as_uri(), shot, size="1400,2400")
    aas_rows = emergent.emergent_board(boards).entries                   # + the emergent-grounding section
    assert dom.count('class="leaderboard"') == len([b for b in boards if b.entries]) + bool(aas_rows)
    assert '<tr class="reported"><td>GLaMM</td><td>reported [1]</td>' in dom
    assert "<td>ours</td><td>measured</td>" in dom and "<b>50.0</b>" in dom and "<b>47.2</b>" in dom
    assert "<td>F-LMM</td>" in dom and "<td>flmm</td>" in dom  # mixed protocols get a column
    assert dom.count('src="data:image/png;base64,') == len([b for b in boards if b.entries]) + bool(aas_rows)

    pixels = Image.open(shot).convert("RGB")
    colours = pixels.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page
    assert max(count for count, _ in colours) < 0.95 * pixels.width * pixels.height
    measured_row = sum(count for count, colour in colours if colour == (0xEE, 0xF7, 0xEE))
    assert measured_row > 500  # the measured row's background is on screen


def test_sample_data_rows_are_named_apart_and_never_best(tmp_path):
    payload = results_payload("ours", metrics={"meteor": 0.99, "cider": 9.0, "ap50": 0.99, "miou": 0.99,
                                               "mask_recall": 0.99, "mask_recall_max_matching": 0.99})
    payload["config"]["sample_data"] = True
    [entry] = from_results.entries_from_results(payload, write_results(tmp_path / "run", payload))
    assert entry.model == "ours (sample)"
    board = files.load(REPO / "leaderboards" / "gcg.json")
    board.entries = [e for e in board.entries if e.source == "reported"] + [entry]
    table = tables.build_table(board)
    assert "ours (sample)" not in [row.model for row in table.rows]  # not ranked with the real split
    glamm = next(row for row in table.rows if row.model == "GLaMM")
    assert any(table.is_best(glamm, column) for column in table.columns)
    apart = tables.build_table(board, sample=True)
    assert apart.sample and [row.model for row in apart.rows] == ["ours (sample)"]
    assert not any(apart.is_best(apart.rows[0], column) for column in apart.columns)


def test_sample_runs_are_kept_out_of_rankings_and_plots(tmp_path, capsys, monkeypatch):
    """The committed gcg.json holds sample-data runs whose numbers beat GLaMM's: `show` lists them in a table of
    their own below the ranking, `publish` in a section after the rankings, and no plot draws them."""
    board_dir = tmp_path / "boards"
    board_dir.mkdir()
    shutil.copy(REPO / "leaderboards" / "gcg.json", board_dir / "gcg.json")
    payload = results_payload("ours", metrics={"meteor": 0.99, "cider": 9.0, "ap50": 0.99, "miou": 0.99,
                                               "mask_recall": 0.99})
    payload["config"]["sample_data"] = True
    assert run_cli(["leaderboard", "add", str(write_results(tmp_path / "run", payload)), "--dir", str(board_dir)]) == 0
    capsys.readouterr()
    assert run_cli(["leaderboard", "show", "gcg_val", "--dir", str(board_dir)]) == 0
    shown = capsys.readouterr().out
    ranking, apart = shown.split("runs on the bundled synthetic sample")
    assert "GLaMM" in ranking and "(sample)" not in ranking
    assert "ours (sample)" in apart and "GLaMM" not in apart

    plotted: list[list[str]] = []
    real_plot = publish.plot_png
    monkeypatch.setattr(publish, "plot_png", lambda table: plotted.append([r.model for r in table.rows]) or real_plot(table))
    for fmt in ("md", "latex", "html"):
        assert run_cli(["leaderboard", "publish", "--format", fmt, "--dir", str(board_dir), "--output",
                        str(tmp_path / fmt)] + ([] if fmt == "html" else ["--no-plots"])) == 0
    assert plotted and not any(from_results.is_sample_model(m) for models in plotted for m in models)
    markdown = (tmp_path / "md" / "leaderboards.md").read_text()
    ranked, section = markdown.split("## Runs on the bundled synthetic sample (not ranked)")
    assert "(sample)" not in ranked and "| ours (sample) | measured |" in section and "**" not in section
    latex = (tmp_path / "latex" / "leaderboards.tex").read_text()
    assert latex.index("ours (sample)") > latex.index("not comparable with the tables above")
    page = (tmp_path / "html" / "leaderboards.html").read_text()
    assert page.index("<td>ours (sample)</td>") > page.index('id="sample-runs"') > page.index("<td>GLaMM</td>")
    assert run_cli(["leaderboard", "publish", "--format", "md", "--dir", str(board_dir), "--no-sample-runs"]) == 0
    assert "(sample)" not in capsys.readouterr().out


def test_emergent_grounding_section_gathers_the_a_and_s_rows(tmp_path, capsys):
    """Reported a&s rows (fingerprint method attend-and-segment) and measured llava-as / difflmm / aas runs of
    GCG, RES and PNG form one extra table; other rows (GLaMM, an `ours` run) stay out of it."""
    board_dir = tmp_path / "boards"
    shutil.copytree(REPO / "leaderboards", board_dir)
    for family in ("gcg", "res"):
        board = files.load(board_dir / f"{family}.json")
        board.entries = [entry for entry in board.entries if entry.source == "reported"]
        files.save(board)
    assert [e.model for e in files.load(board_dir / "gcg.json").entries if emergent.is_emergent(e)] == [
        "DiffLMM + a&s", "DiffLMM + a&s (ICCV 2025)"]
    aas_run = results_payload("aas", {"name": "aas", "family": "qwen2_5_vl", "args": {}}, "res_refcoco_val",
                              {"ciou": 0.41, "giou": 0.40, "point_accuracy": 0.62}, protocol="lisa")
    other = results_payload("ours", task="gcg_val")
    for name, payload in (("aas", aas_run), ("ours", other)):
        assert run_cli(["leaderboard", "add", str(write_results(tmp_path / name, payload)), "--dir", str(board_dir)]) == 0
    capsys.readouterr()
    assert run_cli(["leaderboard", "publish", "--format", "md", "--dir", str(board_dir)]) == 0
    markdown = capsys.readouterr().out
    section = markdown.split("### Emergent grounding")[1]
    lines = section.splitlines()
    for model in ("DiffLMM + a&s", "DiffLMM + a&s (ICCV 2025)"):
        shown = model.replace("&", "&amp;")                              # names are escaped in every output
        assert any(line.startswith(f"| {shown} | reported") for line in lines), model
    row = next(line for line in section.splitlines() if line.startswith("| aas |"))
    assert "41.0" in row and "62.0" in row                              # RES cIoU and point accuracy
    assert "GCG test Recall" in section and "RefCOCO val cIoU" in section and "RefCOCO val PointAcc" in section
    assert "| ours |" not in section and "| GLaMM |" not in section
