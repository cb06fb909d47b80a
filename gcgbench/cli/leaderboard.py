"""`gcgbench leaderboard add|show|publish`, `gcgbench check` and `gcgbench report`.

Leaderboard files live in `leaderboards/` (or `--dir`, or $GCGBENCH_LEADERBOARDS), one per task family;
their schema is in docs/leaderboards.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gcgbench.api.errors import InputError
from gcgbench.leaderboard import files, from_results
from gcgbench.leaderboard.entry import is_points_metric
from gcgbench.cli.listing import print_json
from gcgbench.leaderboard import check as checking
from gcgbench.leaderboard import publish as publishing
from gcgbench.leaderboard.tables import LAYOUTS, METRIC_LABELS
from gcgbench.tasks.registry import canonical_task
from gcgbench.views.run_report import build_report

app = typer.Typer(help="Leaderboard files: add runs or published numbers, show a task, publish tables and plots.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

Directory = typer.Option(files.DEFAULT_DIRECTORY, "--dir", envvar="GCGBENCH_LEADERBOARDS",
                         help="Folder of leaderboard files (one per task family).")
File = typer.Option(None, "--file", help="One leaderboard file to use instead of the family files in --dir.")


def wide_console() -> Console:
    """A terminal's own width; 200 columns when writing to a file or a CI log (rich would use 80)."""
    import sys

    return Console() if sys.stdout.isatty() else Console(width=200)


@app.command("add")
def add(
    results: Path = typer.Argument(..., help="results.json (or the run folder holding it)."),
    file: Optional[Path] = File,
    directory: Path = Directory,
    replace: bool = typer.Option(False, "--replace", help="Overwrite an entry of the same model made by another "
                                                          "fingerprint (refused otherwise)."),
    source: str = typer.Option("measured", "--source", help="measured (scored by gcgbench) or reported (published)."),
    citation: Optional[str] = typer.Option(None, "--citation", help="Where reported numbers were published (required "
                                                                    "with --source reported)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name on the leaderboard (default: the run's)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only these tasks of the results, comma separated."),
) -> None:
    """Add one entry per task of a results.json to the leaderboard files."""
    payload, path = from_results.read_results(results)
    tasks = [t.strip() for t in task.split(",") if t.strip()] if task else None
    entries = from_results.entries_from_results(payload, path, model=model, source=source, citation=citation, tasks=tasks)
    console = Console(highlight=False)
    for target, entry, outcome in files.add_entries(entries, directory, file, replace_different=replace):
        console.print(f"{outcome} {entry.model} {entry.task_at_version} ({entry.protocol}, {entry.source}) in {target}",
                      markup=False, soft_wrap=True)


@app.command("show")
def show(
    task: str = typer.Argument(..., help="Task name or alias, e.g. gcg_val or gcg."),
    file: Optional[Path] = File,
    directory: Path = Directory,
    as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON (fractions, as stored)."),
) -> None:
    """Every entry for TASK, best headline metric first (×100, one decimal; 95% intervals where measured).
    Runs on the bundled synthetic sample are listed apart, below: they are not comparable."""

    task = canonical_task(task)
    board = files.load(board_path(task, file, directory))
    entries = board.find(task=task)
    if not entries:
        tasks = sorted({e.task for e in board.entries})
        raise InputError(board.path, None, f"no entry for task {task!r}; it has {', '.join(tasks) or 'no entry at all'}")
    if as_json:
        headline, ranked = rank_entries(board.family, entries)
        print_json({"task": task, "file": str(board.path), "headline": headline,
                    "entries": [{**entry.to_json(), "sample_data": from_results.is_sample_model(entry.model)}
                                for entry in ranked]})
        return
    real = [e for e in entries if not from_results.is_sample_model(e.model)]
    sample = [e for e in entries if from_results.is_sample_model(e.model)]
    console = wide_console()
    if real:
        print_entries(console, f"{task} ({board.path}, ×100)", board.family, real)
    if sample:
        print_entries(console, f"{task}: runs on the bundled synthetic sample, not comparable with the real split "
                               "(×100)", board.family, sample)


def board_path(task: str, file: Optional[Path], directory: Path) -> Path:
    """The leaderboard file of TASK; a missing --file, folder or family file is an InputError saying which."""
    if file is not None:
        if not Path(file).is_file():
            raise InputError(file, None, "leaderboard file not found")
        return Path(file)
    require_folder(directory)
    path = files.file_for(task, directory)
    if not path.is_file():
        present = ", ".join(sorted(p.name for p in Path(directory).glob("*.json"))) or "none"
        raise InputError(path, None, f"no leaderboard file for the {files.family_of(task)!r} family, so no entry for "
                                     f"{task} (files in {directory}: {present})")
    return path


def require_folder(directory: Path) -> None:
    """The leaderboard folder must exist: a missing one is named as such (not as a missing entry)."""
    if not Path(directory).is_dir():
        raise InputError(directory, None, "leaderboard folder not found (run from the gcgbench checkout, or pass "
                                          "--dir or set GCGBENCH_LEADERBOARDS)")


def rank_entries(family: str, entries: list[files.Entry]) -> tuple[str, list[files.Entry]]:
    """(headline metric, entries best first; entries without the headline last)."""

    layout = LAYOUTS.get(family)
    headline = layout.headline if layout else sorted({m for e in entries for m in e.metrics})[0]

    def rank(entry: files.Entry) -> tuple[bool, float]:
        value = entry.metrics.get(headline, math.nan)
        return (math.isnan(value), 0.0 if math.isnan(value) else -value)

    return headline, sorted(entries, key=rank)


def print_entries(console: Console, title: str, family: str, entries: list[files.Entry]) -> None:
    """One rich table of `entries`, best headline metric first; names are printed as text, never as markup."""
    from rich.text import Text

    layout = LAYOUTS.get(family)
    names = [m for m in (layout.metrics if layout else ()) if any(m in e.metrics for e in entries)]
    names += sorted({m for e in entries for m in e.metrics} - set(names)) if layout is None else []
    headline, ranked = rank_entries(family, entries)

    def scaled(value: float, points: bool) -> str:
        return f"{value if points else 100 * value:.1f}"

    table = Table(title=Text(title))
    for column in ("model", "source", "version", "protocol", "n"):
        table.add_column(column)
    for name in names:
        table.add_column(Text(METRIC_LABELS.get(name, name)), justify="right")
    table.add_column("date")
    citations: list[str] = []
    for entry in ranked:
        cells = []
        for name in names:
            value, interval = entry.metrics.get(name), entry.intervals.get(name)
            points = is_points_metric(name, entry.metric_config)
            text = "-" if value is None or math.isnan(value) else scaled(value, points)
            if interval and interval.get("low") is not None and interval.get("high") is not None:
                text += f" [{scaled(interval['low'], points)}–{scaled(interval['high'], points)}]"
            cells.append(text)
        if entry.citation and entry.citation not in citations:
            citations.append(entry.citation)
        source = entry.source + (f" [{citations.index(entry.citation) + 1}]" if entry.citation else "")
        table.add_row(*(Text(text) for text in (entry.model, source, entry.task_version, entry.protocol)),
                      "" if entry.n is None else str(entry.n), *cells, Text((entry.date or "")[:10]))
    console.print(table)
    for number, citation in enumerate(citations, 1):
        console.print(f"[{number}] {citation}", markup=False, highlight=False)


@app.command("publish")
def publish(
    fmt: str = typer.Option("md", "--format", help="md, latex, html or csv."),
    output: Optional[Path] = typer.Option(None, "--output", help="Folder for leaderboards.<ext> and <family>.png "
                                                                 "(default: print the table)."),
    directory: Path = Directory,
    file: Optional[Path] = File,
    plots: bool = typer.Option(True, "--plots/--no-plots", help="PNG plots of headline metrics (with --output; "
                                                               "embedded in html)."),
    sample_runs: bool = typer.Option(True, "--sample-runs/--no-sample-runs", help="Runs on the bundled synthetic "
                                     "sample in tables of their own after the rankings (never ranked or plotted)."),
) -> None:
    """Tables shaped like the papers' (×100, one decimal, best in bold, reported vs measured marked); csv: one
    tidy long table (family, task, version, protocol, model, source, metric, value, low, high, n, citation)."""

    if fmt not in publishing.EXTENSIONS:
        raise InputError("--format", None, f"must be one of {', '.join(publishing.EXTENSIONS)}, got {fmt!r}")
    if file is not None and not Path(file).is_file():
        raise InputError(file, None, "leaderboard file not found")
    if file is None:
        require_folder(directory)
    boards = [files.load(file)] if file is not None else files.load_all(directory)
    if not any(board.entries for board in boards):
        raise InputError(file if file is not None else directory, None, "no leaderboard entry to publish")
    text, written = publishing.publish(boards, fmt, output, plots, sample_runs)
    if output is None:
        typer.echo(text, nl=False)
    else:
        console = Console(highlight=False)
        for path in written:
            console.print(f"wrote {path}", markup=False, soft_wrap=True)


def check(
    results: Path = typer.Argument(..., help="results.json of the run to check (or its folder)."),
    against: Path = typer.Option(..., "--against", help="Leaderboard file or folder, or a baseline results.json/run folder."),
    tolerance: float = typer.Option(0.0, "--tolerance", help="Allowed drop per metric, as a fraction (0.01 = 1.0 point)."),
    model: Optional[str] = typer.Option(None, "--model", help="Leaderboard model to compare with (default: the run's)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Only these metrics, comma separated."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Paired-bootstrap resamples (per-sample files of both runs)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the paired bootstrap."),
    ignore_intervals: bool = typer.Option(False, "--ignore-intervals", help="Judge by --tolerance alone."),
    json_output: Optional[Path] = typer.Option(None, "--json", help="Also write the comparison as JSON here."),
    task: Optional[str] = typer.Option(None, "--task", help="Only these tasks of the run, comma separated."),
    allow_large_tolerance: bool = typer.Option(False, "--allow-large-tolerance",
                                               help="Accept a --tolerance above 0.05 (5 points)."),
) -> None:
    """Compare a run with its leaderboard entry or a baseline run; exit 1 on a regression (docs/leaderboards.md)."""

    if bootstrap < 1:
        raise InputError("--bootstrap", None, f"must be at least 1, got {bootstrap}")
    metrics = [m.strip() for m in metric.split(",") if m.strip()] if metric is not None else None
    tasks = [t.strip() for t in task.split(",") if t.strip()] if task is not None else None
    report = checking.check(results, against, tolerance=tolerance, model=model, metrics=metrics, resamples=bootstrap,
                            seed=seed, use_intervals=not ignore_intervals, tasks=tasks,
                            allow_large_tolerance=allow_large_tolerance)
    checking.render(report, wide_console())
    if json_output is not None:
        json_output.parent.mkdir(parents=True, exist_ok=True)
        json_output.write_text(json.dumps(checking.summary(report), indent=2) + "\n", encoding="utf-8")
    if not report.passed:
        raise typer.Exit(code=1)


def report(
    run_dir: Path = typer.Argument(..., help="Run folder (results.json, samples/, predictions/)."),
    output: Optional[Path] = typer.Option(None, "--output", help="HTML file to write (default RUN_DIR/report.html)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Where the images are, if not where the run "
                                                                       "read them."),
    max_side: int = typer.Option(256, "--max-side", help="Longest image side in pixels (images are downscaled)."),
    task: Optional[str] = typer.Option(None, "--task", help="Only these tasks, comma separated."),
    truth: bool = typer.Option(True, "--truth/--no-truth", help="Outline the ground-truth masks."),
) -> None:
    """One self-contained HTML page of a run: images with mask overlays, answers, scores, worst first."""

    tasks = [canonical_task(t.strip()) for t in task.split(",") if t.strip()] if task else None
    path = build_report(run_dir, output, data_root=data_root, max_side=max_side, tasks=tasks, truth=truth)
    Console().print(f"wrote {path}")
