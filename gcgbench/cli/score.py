"""Score predictions made elsewhere (GLaMM per-image folder or gcgbench JSONL) against a task's ground truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gcgbench.api.task import ScoringOptions
from gcgbench.cli.render import print_results
from gcgbench.runner.results import build_results, environment_config, write_json_atomic
from gcgbench.tasks.registry import get_task


def score(
    task: str = typer.Option(..., "--task", help="Task name, e.g. gcg_val (see `gcgbench tasks`)."),
    predictions: Path = typer.Option(..., "--predictions", help="GLaMM-style folder of <image_id>.json or a predictions JSONL."),
    data_root: Path = typer.Option(..., "--data-root", help="Folder laid out like GLaMM's data/ (GranDf/annotations/val_test/...)."),
    text_model: Optional[str] = typer.Option(
        None, "--text-model",
        help="Phrase similarity for mask recall: a local bert-base-uncased folder (official), or 'minilm'.",
    ),
    output: Optional[Path] = typer.Option(None, "--output", help="Folder for results.json."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for 95% intervals (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
) -> None:
    started = time.perf_counter()
    chosen = get_task(task)
    docs = chosen.docs(data_root)
    loaded = time.perf_counter()
    predicted = chosen.read_predictions(predictions, docs)
    read = time.perf_counter()
    options = ScoringOptions(text_model=text_model, bootstrap_resamples=bootstrap, seed=seed)
    result = chosen.score(docs, predicted, options)
    scored = time.perf_counter()
    config = {
        "model": None,
        "model_args": None,
        "predictions": str(predictions),
        "data_root": str(data_root),
        "seed": seed,
        **environment_config(chosen.annotation_files(data_root)),
    }
    timing = {"load_ground_truth_s": loaded - started, "read_predictions_s": read - loaded, "score_s": scored - read}
    results = build_results([result], config, timing)
    console = Console()
    print_results(console, results)
    if output is not None:
        write_json_atomic(output / "results.json", results)
        console.print(f"wrote {output / 'results.json'}")
