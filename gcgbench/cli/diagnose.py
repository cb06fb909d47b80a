"""`gcgbench diagnose RUN_DIR` (why recall was lost) and `gcgbench compare RUN_A RUN_B ...` (paired differences
and a side-by-side viewer), from the files a run already wrote; no model is loaded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from gcgbench.cli import options as opt

TextModel = typer.Option(
    None, "--text-model",
    help="Phrase similarity for GCG buckets: a local bert-base-uncased folder, or 'minilm'. Default: the model the run used.",
)
from gcgbench.api.errors import InputError
from gcgbench.views import compare as comparing
DataRoot = typer.Option(None, "--data-root", envvar="GCGBENCH_DATA",
                        help="Where the task's ground truth and images are. Default: the run's recorded data root.")
Tasks = typer.Option(None, "--task", help="Only these tasks (comma separated). Default: every diagnosable task.")


def _console() -> Console:
    """Tables need ~130 columns; a pipe or file (no terminal width) gets that rather than rich's 80."""
    console = Console()
    return console if console.is_terminal else Console(width=140)


def _tasks(task: str | None) -> list[str] | None:
    return [name.strip() for name in task.split(",") if name.strip()] if task else None


def diagnose(
    run_dir: Path = typer.Argument(..., help="A run directory (results.json, samples/, predictions/)."),
    output: Optional[Path] = typer.Option(None, "--output", help="Folder for diagnosis.json and the pages (default RUN_DIR/diagnosis)."),
    data_root: Optional[Path] = DataRoot, text_model: Optional[str] = TextModel, task: Optional[str] = Tasks,
) -> None:
    """Why recall was lost: every missed GT phrase in one bucket, recall by size/objects/frequency, plots."""
    from gcgbench.views.diagnose.build import diagnose_run

    json_path, pages = diagnose_run(run_dir, output, data_root, text_model, _tasks(task))
    console = _console()
    import json

    payload = json.loads(json_path.read_text(encoding="utf-8"))
    for name, found in payload["tasks"].items():
        if found["family"] == "gcg":
            table = Table(title=f"{name}: {found['misses']} of {found['labels']} GT phrases missed "
                                f"(mask recall {100 * found['mask_recall']:.1f})")
            for column in ("bucket", "GT phrases", "share", "recall if fixed alone"):
                table.add_column(column, justify="left" if column == "bucket" else "right")
            for bucket, value in found["buckets"].items():
                delta = value["delta_recall"]
                table.add_row(bucket, str(value["count"]), f"{100 * value['share']:.1f}",
                              "n/a" if delta is None else f"{100 * delta:+.1f}")
            console.print(table)
        for note in found["notes"]:
            console.print(f"note: {name}: {note}")
    for name, reason in payload["skipped"].items():
        console.print(f"note: {name} skipped ({reason})")
    console.print(f"wrote {json_path}")
    for page in pages:
        console.print(f"wrote {page}")


def compare(
    runs: List[Path] = typer.Argument(..., help="Two or more run directories; the first is the baseline."),
    output: Optional[Path] = typer.Option(None, "--output", help="Folder for compare.json and compare.html "
                                                               "(default out/compare-<time>)."),
    data_root: Optional[Path] = DataRoot, text_model: Optional[str] = TextModel, task: Optional[str] = Tasks,
    resamples: int = typer.Option(1000, "--resamples", help="Paired bootstrap resamples (images)."),
    seed: int = opt.Seed,
    max_samples: int = typer.Option(100, "--max-samples", help="Samples in the viewer per task (largest |difference| first)."),
) -> None:
    """Paired-bootstrap differences of every shared task and metric, diagnoses side by side, and a viewer."""
    import json

    from gcgbench.views.compare_view import write_page

    if max_samples < 1:
        raise InputError("--max-samples", None, f"must be at least 1, got {max_samples}")
    comparison = comparing.compare_runs(runs, data_root, text_model, _tasks(task), resamples, seed)
    target = Path(output) if output is not None else Path("out") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    console = _console()
    labels = comparison.labels
    table = Table(title=f"run − {labels[0]} (×100; 95% paired bootstrap over images, {resamples} resamples)")
    for column in ("task", "metric", "run", labels[0], "run value", "Δ", "95% interval", "verdict"):
        table.add_column(column, justify="right" if column in ("Δ", "95% interval", labels[0], "run value") else "left",
                         no_wrap=column in ("metric", "95% interval", "verdict"))
    colours = {"better": "green", "worse": "red"}
    for delta in comparison.deltas:
        interval = "" if delta.low is None else f"{100 * delta.low:+.1f} … {100 * delta.high:+.1f}"
        verdict = delta.verdict
        table.add_row(delta.task, delta.metric, delta.run, f"{100 * delta.baseline_value:.1f}", f"{100 * delta.value:.1f}",
                      f"{100 * delta.delta:+.1f}", interval,
                      f"[{colours[verdict]}]{verdict}[/]" if verdict in colours else verdict)
    console.print(table)
    for task_name, diagnoses in comparison.diagnoses.items():
        if diagnoses[0].family != "gcg":
            continue
        buckets = Table(title=f"{task_name}: missed GT phrases by bucket (count, share ×100)")
        buckets.add_column("bucket")
        for label in labels:
            buckets.add_column(label, justify="right")
        for name in diagnoses[0].summary["buckets"]:
            buckets.add_row(name, *(f"{d.summary['buckets'][name]['count']} ({100 * d.summary['buckets'][name]['share']:.1f})"
                                    for d in diagnoses))
        console.print(buckets)
    for note in comparison.notes:
        console.print(f"note: {note}")
    (target / "compare.json").write_text(json.dumps(comparing.summary(comparison), indent=1, allow_nan=False) + "\n",
                                         encoding="utf-8")
    page = write_page(comparison, target / "compare.html", max_samples)
    console.print(f"wrote {target / 'compare.json'}")
    console.print(f"wrote {page}")
