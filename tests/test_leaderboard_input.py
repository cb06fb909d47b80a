"""Leaderboards under bad and hostile input (issue 15): `add` validates with the reader's one schema, so it
never writes a file that `show`, `publish` or `check` then refuse; names are data in every output format;
sample-data runs, missing files and task aliases are reported as what they are."""

from __future__ import annotations

import copy
import html
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcgbench.leaderboard import entry as entry_schema
from gcgbench.leaderboard import files, from_results, plots, publish, tables
from gcgbench.views import run_report as report
from tests.test_leaderboard import REPO, chromium, read_published_csv, results_payload, run_cli, write_results

HOSTILE_NAMES = ("$\\undefinedcommand$", "[/]", "[bold]x[/bold]", "<script>alert(1)</script>",
                 '"><img src=x onerror=alert(1)>', "a|b*c_d`e`~f~ [l](javascript:alert(1)) &lt; \\", "NA",
                 "=cmd|' /C calc'!A0", "50% & $5 #1 {x} ^ ~ \\\\", "[2pt] row")


def one_error_line(text: str) -> str:
    """stderr of a refused command: exactly one line, `error: ...`, no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in text, text
    return lines[0]


# ---------------------------------------------------------------------- add validates with the reader's schema


def set_n(p, v): p["n_samples"]["gcg_val"] = v                                    # noqa: E704
def set_interval(p, v): p["intervals"]["gcg_val"]["miou"] = v                       # noqa: E704
def set_low(p, v): p["intervals"]["gcg_val"]["miou"]["low"] = v                     # noqa: E704
def set_metric(p, v): p["results"]["gcg_val"]["miou"] = v                           # noqa: E704
def set_notes(p, v): p["notes"]["gcg_val"] = v                                      # noqa: E704


@pytest.mark.parametrize("mutate, value, where", [
    (set_n, "many", "n_samples.gcg_val"), (set_n, -5, "n_samples.gcg_val"), (set_n, 12.5, "n_samples.gcg_val"),
    (set_n, True, "n_samples.gcg_val"),
    (set_interval, 0.5, "intervals.gcg_val.miou"), (set_low, "x", "intervals.gcg_val.miou"),
    (set_low, 0.9, "intervals.gcg_val.miou"),  # low above high
    (set_metric, 97.5, "results.gcg_val.miou"), (set_metric, "0.5", "results.gcg_val.miou"),
    (set_metric, True, "results.gcg_val.miou"), (set_metric, -0.1, "results.gcg_val.miou"),
    (set_metric, math.inf, "results.gcg_val.miou"), (set_metric, math.nan, "results.gcg_val.miou"),
    (set_notes, "a note", "notes.gcg_val"), (set_notes, [1], "notes.gcg_val"),
    (lambda p, v: p["results"]["gcg_val"].update(cider=v), 10.5, "results.gcg_val.cider"),
    (lambda p, v: p["metric_config"].update(gcg_val=v), ["glamm"], "metric_config.gcg_val"),
    (lambda p, v: p["versions"].update(gcg_val=v), 1.5, "versions.gcg_val"),
    (lambda p, v: p["config"].update(model=v), "two\nlines", "config.model"),
    (lambda p, v: p["config"].update(fingerprint=v), "abc", "config.fingerprint"),
    (lambda p, v: p.update(intervals=v), [1], "intervals"),
])
def test_add_refuses_what_the_reader_would_refuse_and_writes_nothing(tmp_path, capsys, mutate, value, where):
    payload = results_payload()
    mutate(payload, value)
    run = write_results(tmp_path / "run", payload)
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(tmp_path / "boards")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"results.json: {where}" in line
    assert not (tmp_path / "boards" / "gcg.json").exists()


def test_metric_ranges_fractions_cider_and_mme_points(tmp_path, capsys):
    """Fractions in [0, 1]; CIDEr in [0, 10]; MME's point-scale metrics up to 200 / 2000 / 800."""
    run = write_results(tmp_path / "run", results_payload(metrics={"cider": 9.5, "miou": 1.0, "ap50": 0.0}))
    assert from_results.entries_from_results(*from_results.read_results(run))[0].metrics["cider"] == 9.5
    mme = {"perception": 1500.0, "cognition": 620.5, "existence_score": 195.0, "existence_acc": 0.99}
    payload = results_payload(task="mme", metrics=mme)
    payload["metric_config"]["mme"]["points_metrics"] = "perception, cognition, *_score"
    [entry] = from_results.entries_from_results(payload, write_results(tmp_path / "mme", payload))
    assert entry.metrics == mme and entry_schema.is_points_metric("perception", entry.metric_config)
    assert run_cli(["leaderboard", "add", str(tmp_path / "mme"), "--dir", str(tmp_path / "b")]) == 0
    assert run_cli(["leaderboard", "show", "mme", "--dir", str(tmp_path / "b")]) == 0
    shown = capsys.readouterr().out  # the VQA layout's MME columns: points as they are, never ×100
    assert "1500.0" in shown and "620.5" in shown and "150000" not in shown and "62050" not in shown
    for name, value in (("perception", 2000.5), ("cognition", 801.0), ("existence_score", 201.0),
                        ("existence_acc", 1.5)):
        bad = copy.deepcopy(payload)
        bad["results"]["mme"][name] = value
        with pytest.raises(files.InputError, match=f"results.mme.{name}: must lie in"):
            from_results.entries_from_results(bad, write_results(tmp_path / name, bad))
    without_points = copy.deepcopy(payload)
    del without_points["metric_config"]["mme"]["points_metrics"]
    with pytest.raises(files.InputError, match="must lie in \\[0, 1\\]"):
        from_results.entries_from_results(without_points, write_results(tmp_path / "plain", without_points))


def test_the_reader_refuses_the_same_values_in_a_leaderboard_file(tmp_path):
    """One schema: a hand-edited leaderboard file with a value `add` refuses is refused on load, naming the entry."""
    run = write_results(tmp_path / "run", results_payload())
    files.add_entries(from_results.entries_from_results(*from_results.read_results(run)), tmp_path / "boards")
    path = tmp_path / "boards" / "gcg.json"
    good = json.loads(path.read_text())
    for key, value, message in (("n", 12.5, "'n' must be"), ("notes", "x", "'notes' must be"),
                                ("metrics", {"miou": 97.5}, r"entries\[0\]\.metrics\.miou: must lie in"),
                                ("intervals", {"miou": {"low": "x"}}, r"entries\[0\]\.intervals\.miou: 'low'"),
                                ("model", "[/]\t", "'model' must be one line")):
        payload = copy.deepcopy(good)
        payload["entries"][0][key] = value
        path.write_text(json.dumps(payload))
        with pytest.raises(files.InputError, match=message):
            files.load(path)


# ------------------------------------------------------------ property: add refuses, or leaves a readable file

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([97.5, 0.5, -5, 12.5, 1e308, "0.5", "x", "many", ""]) | st.text(max_size=12)
    | st.sampled_from(HOSTILE_NAMES),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def json_paths(obj, prefix=()):
    """Every path into a JSON value (the root excluded), containers and leaves."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from json_paths(value, prefix + (key,))


BASE = results_payload(metrics={"meteor": 0.15, "cider": 0.45, "ap50": 0.3, "miou": 0.65, "mask_recall": 0.40})
BASE["config"]["sample_data"] = False
PATHS = sorted(set(json_paths(BASE)), key=repr)


@st.composite
def mutated_results(draw):
    payload = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = payload
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a container on this path
    return payload


@pytest.fixture(scope="module")
def seeded_boards(tmp_path_factory):
    """The committed gcg leaderboard (every mutated run is a gcg_val run) and the clean run, for `check`."""
    folder = tmp_path_factory.mktemp("boards")
    (folder / "boards").mkdir()
    shutil.copy(REPO / "leaderboards" / "gcg.json", folder / "boards" / "gcg.json")
    clean = write_results(folder / "clean", copy.deepcopy(BASE))
    return folder / "boards", clean


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(payload=mutated_results())
def test_every_add_refuses_with_one_line_or_leaves_files_every_reader_reads(seeded_boards, capsys, payload):
    boards, clean = seeded_boards
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        shutil.copytree(boards, scratch / "boards")
        (scratch / "run").mkdir()
        (scratch / "run" / "results.json").write_text(json.dumps(payload))
        capsys.readouterr()
        code = run_cli(["leaderboard", "add", str(scratch / "run"), "--dir", str(scratch / "boards")])
        out, err = capsys.readouterr()
        assert code in (0, 2), (code, out, err)
        if code == 2:
            one_error_line(err)
            assert (scratch / "boards" / "gcg.json").read_bytes() == (boards / "gcg.json").read_bytes()
            return
        [board] = files.load_all(scratch / "boards")
        for task in sorted({e.task for e in board.entries}):
            assert run_cli(["leaderboard", "show", task, "--dir", str(scratch / "boards")]) == 0
        for fmt in ("md", "latex", "csv", "html"):
            publish.publish([board], fmt, plots=False)
        plots.plot_png(tables.build_table(board))
        code = run_cli(["check", str(clean), "--against", str(scratch / "boards"), "--bootstrap", "10"])
        err = capsys.readouterr().err
        assert code in (0, 1) or (code == 2 and "nothing to compare" in one_error_line(err)), err


# ------------------------------------------------------------------------------- names are data in every format


@pytest.fixture(scope="module")
def hostile_board(tmp_path_factory):
    """A gcg board whose measured and reported entries carry hostile model names, protocols and citations."""
    folder = tmp_path_factory.mktemp("hostile")
    entries = []
    for index, name in enumerate(HOSTILE_NAMES):
        payload = results_payload(name, metrics={"mask_recall": 0.3 + index / 100, "miou": 0.5},
                                  protocol="glamm" if index % 2 else name)
        source, citation = ("reported", f"{name} et al. {index}") if index % 3 == 0 else ("measured", None)
        run = write_results(folder / f"run{index}", payload)
        entries += from_results.entries_from_results(payload, run, source=source, citation=citation)
    files.add_entries(entries, folder / "boards")
    return folder / "boards"


def test_hostile_names_add_and_show_as_text(hostile_board, tmp_path, capsys):
    for index, name in enumerate(HOSTILE_NAMES[:3]):
        run = write_results(tmp_path / f"r{index}", results_payload(name))
        assert run_cli(["leaderboard", "add", str(run), "--dir", str(tmp_path / "b")]) == 0
        assert f"added {name} gcg_val@1" in capsys.readouterr().out
    assert run_cli(["leaderboard", "show", "gcg_val", "--dir", str(hostile_board)]) == 0
    shown = capsys.readouterr().out
    for name in ("$\\undefinedcommand$", "[/]", "[bold]x[/bold]", "<script>alert(1)</script>"):
        assert name in shown


def test_hostile_names_in_plots_are_plain_text(hostile_board):
    table = tables.build_table(files.load(hostile_board / "gcg.json"))
    assert {row.model for row in table.rows} == set(HOSTILE_NAMES)
    image = plots.plot_png(table)
    assert image[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_renders_hostile_names_as_text(hostile_board, capsys):
    from markdown_it import MarkdownIt

    assert run_cli(["leaderboard", "publish", "--format", "md", "--dir", str(hostile_board)]) == 0
    text = capsys.readouterr().out
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert "<strong>x" not in rendered and "<em>" not in rendered and "<code>" not in rendered
    cells = re.findall(r"<td>(.*?)</td>", rendered)
    shown = {html.unescape(cell) for cell in cells}
    for name in HOSTILE_NAMES:
        assert name in shown, name  # the cell shows the name exactly as it is
    citations = [html.unescape(line) for line in re.findall(r"\[\d+\] (.*? et al\. \d+)", rendered)]
    assert set(citations) == {f"{name} et al. {i}" for i, name in enumerate(HOSTILE_NAMES) if i % 3 == 0}


def test_latex_escapes_every_special_character(hostile_board):
    text, _ = publish.publish([files.load(hostile_board / "gcg.json")], "latex", plots=False)
    assert r"\$\textbackslash{}undefinedcommand\$" in text
    assert r"{[}2pt{]} row &" in text  # never read as \\[2pt]
    assert r"50\% \& \$5 \#1 \{x\} \textasciicircum{} \textasciitilde{} \textbackslash{}\textbackslash{}" in text
    assert r"\textless{}script\textgreater{}" in text and "<" not in text.replace(r"\textless{}", "")
    body = text.split(r"\midrule")[1].split(r"\bottomrule")[0]
    rows = body.strip().splitlines()
    assert len(rows) == len(HOSTILE_NAMES) and all(len(re.findall(r"(?<!\\)&", row)) == 4 for row in rows)
    assert "\n[" not in text  # no line starts with "[", which LaTeX would read as the optional argument of \\


def test_csv_is_one_tidy_table_pandas_reads_with_every_name_intact(hostile_board, tmp_path):
    _, written = publish.publish(files.load_all(hostile_board) + files.load_all(REPO / "leaderboards"), "csv",
                                 tmp_path, plots=False)
    table = read_published_csv(written[0])
    assert tuple(table.columns) == publish.CSV_COLUMNS
    assert set(HOSTILE_NAMES) <= set(table.model)
    reported = table[table.source == "reported"]
    assert (reported.citation != "").all() and (table[table.source == "measured"].citation == "").all()
    glamm = table[(table.model == "GLaMM") & (table.task == "gcg_val") & (table.metric == "mask_recall")]
    assert glamm.value.tolist() == [0.418] and glamm.family.tolist() == ["gcg"] and glamm.n.isna().all()
    assert glamm.low.isna().all() and glamm.high.isna().all()  # a published number has no interval
    assert table.value.dtype.kind == "f" and table.version.map(type).eq(str).all()
    entries = [e for b in files.load_all(hostile_board) + files.load_all(REPO / "leaderboards") for e in b.entries]
    assert len(table) == sum(len(e.metrics) for e in entries)


def test_html_page_shows_hostile_names_as_text_in_chromium(hostile_board, tmp_path):
    boards = [files.load(hostile_board / "gcg.json")]
    text, _ = publish.publish(boards, "html", tmp_path / "site")
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    dom = chromium(tmp_path, (tmp_path / "site" / "leaderboards.html").as_uri(), tmp_path / "shot.png", "1400,1600")
    assert dom.count("<img") == 1 and "<script" not in dom  # the plot only: nothing injected ran or loaded
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in dom
    assert "<td>\"&gt;&lt;img src=x onerror=alert(1)&gt;</td>" in dom


def test_report_page_escapes_every_value_of_the_results():
    hostile = '<script>alert("n")</script>'
    results = {"results": {"gcg_val": {"miou": 0.5}}, "n_samples": {"gcg_val": hostile},
               "config": {"model": "<b>m</b>", "git_hash": '"><img src=x>'}}
    card = report.Card("<i>t</i>", "<u>d</u>", (0.1,), "<s>label</s>", None, 0, 0,
                       report.answer_html(None), report.scores_html([{"text": "<em>x</em>", "<k>": "<v>"}]))
    page = report.render_page(results, [card], ["<script>note</script>"], "<title>")
    for raw in (hostile, "<b>m</b>", "<img src=x>", "<i>t</i>", "<u>d</u>", "<s>label</s>", "<em>x</em>", "<k>",
                "<script>note", "<title></title>"):
        assert raw not in page, raw
    assert "n=&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own filter script


# --------------------------------------------------------------------- missing files, folders; task aliases


def test_show_says_which_file_or_folder_is_missing(tmp_path, capsys, monkeypatch):
    shutil.copytree(REPO / "leaderboards", tmp_path / "boards")
    (tmp_path / "boards" / "png.json").unlink(missing_ok=True)
    assert run_cli(["leaderboard", "show", "png_val", "--dir", str(tmp_path / "boards")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "png.json: no leaderboard file for the 'png' family" in line and "gcg.json" in line
    monkeypatch.delenv("GCGBENCH_LEADERBOARDS", raising=False)
    monkeypatch.chdir(tmp_path)  # outside the checkout: no leaderboards/ here
    assert run_cli(["leaderboard", "show", "gcg_val"]) == 2
    assert "leaderboards: leaderboard folder not found" in one_error_line(capsys.readouterr().err)
    assert run_cli(["leaderboard", "publish"]) == 2
    assert "leaderboard folder not found" in one_error_line(capsys.readouterr().err)
    assert run_cli(["leaderboard", "show", "gcg_val", "--file", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: leaderboard file not found" in one_error_line(capsys.readouterr().err)
    assert run_cli(["leaderboard", "show", "gcg_test", "--file", str(tmp_path / "boards" / "res.json")]) == 2
    assert "no entry for task 'gcg_test'; it has res_" in one_error_line(capsys.readouterr().err)


def test_task_aliases_work_in_every_task_argument(tmp_path, capsys):
    run = write_results(tmp_path / "run", results_payload("ours"))
    assert run_cli(["leaderboard", "add", str(run), "--dir", str(tmp_path / "b"), "--task", "gcg"]) == 0
    assert "added ours gcg_val@1" in capsys.readouterr().out
    assert run_cli(["leaderboard", "show", "gcg", "--dir", str(tmp_path / "b")]) == 0
    assert "ours" in capsys.readouterr().out
    assert run_cli(["report", str(run.parent), "--task", "gcg", "--output", str(tmp_path / "r.html")]) == 0
    assert 'no samples/gcg_val.jsonl' in (tmp_path / "r.html").read_text()
    from gcgbench.cli.app import main

    (run.parent / "predictions").mkdir()
    (run.parent / "predictions" / "gcg_val.jsonl").write_text("")
    assert main(["export", str(run.parent), "--task", "gcg", "--output", str(tmp_path / "glamm")]) == 0


def test_save_refuses_entries_made_in_python_that_load_would_refuse(tmp_path):
    path = tmp_path / "gcg.json"
    bad = files.Entry(model="m", task="gcg_val", task_version="1", protocol="glamm", source="measured",
                      metrics={"miou": 65.0}, fingerprint={"name": "m"})
    with pytest.raises(files.InputError, match=r"entries\[0\] \(not written\)\.metrics\.miou: must lie in"):
        files.save(files.Leaderboard(path, "gcg", [bad]))
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_check_prints_names_and_paths_as_text():
    import io

    from rich.console import Console

    from gcgbench.leaderboard import check

    report = check.CheckReport("runs/[/]/results.json", "[bold]GLaMM[/] gcg_val@1 reported", 0.0, notes=["[/] note"],
                               checks=[check.MetricCheck("gcg_val", "[x]", 0.5, 0.4, "tolerance only", "regression",
                                                         "[/] below")])
    stream = io.StringIO()
    check.render(report, Console(file=stream, width=200))
    shown = stream.getvalue()
    for text in ("runs/[/]/results.json", "[bold]GLaMM[/] gcg_val@1", "[/] note", "[x]", "regression ([/] below)"):
        assert text in shown, text
