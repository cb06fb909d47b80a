"""`gcgbench run` (infer then score) and `gcgbench infer` (predictions only; `score` can follow later)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gcgbench.api.backend import GenerationSettings, parse_model_args
from gcgbench.api.phases import listening, phase
from gcgbench.api.task import ScoringOptions
from gcgbench.cli import options as opt
from gcgbench.cli.render import print_results
from gcgbench.cli.status import PhaseRows, progress_display, progress_factory
from gcgbench.cli.score import default_text_model
from gcgbench.data.paths import resolve_data_paths
from gcgbench.models.registry import load_backend
from gcgbench.models.embedded import embedded_model_note
from gcgbench.runner.evaluate import RunPlan
from gcgbench.runner.evaluate import run as run_plan
from gcgbench.runner.preflight import preflight
from gcgbench.runner.shard import (
    current_shard,
    destroy_process_group,
    init_process_group,
)
from gcgbench.runner.store import default_cache_dir, open_cache
from gcgbench.tasks.registry import get_task

Model = typer.Option(..., "--model", help="Backend name (see `gcgbench models`).")
ModelArgs = typer.Option(None, "--model-args", help="Backend arguments, k=v,k2=v2.")
Tasks = typer.Option(..., "--task", help="Task name(s), comma separated (see `gcgbench tasks`).")
Limit = typer.Option(None, "--limit", help="Only the first N docs of each task.")
BatchSize = typer.Option(1, "--batch-size", help="Requests per backend call.")
Device = typer.Option("cpu", "--device", help="cpu or cuda[:N].")
Cache = typer.Option(None, "--cache", help="Generation cache folder (default: ~/.cache/gcgbench).")
NoCache = typer.Option(False, "--no-cache", help="Neither read nor write the generation cache.")


def run(
    model: str = Model, model_args: Optional[str] = ModelArgs, task: str = Tasks,
    data_root: Optional[Path] = opt.DataRoot, data_config: Optional[Path] = opt.DataConfig,
    limit: Optional[int] = Limit, output: Optional[Path] = opt.Output, batch_size: int = BatchSize,
    device: str = Device, seed: int = opt.Seed, text_model: Optional[str] = opt.TextModel,
    bootstrap: int = opt.Bootstrap, protocol: Optional[str] = opt.Protocol,
    cache: Optional[Path] = Cache, no_cache: bool = NoCache,
) -> None:
    execute(model, model_args, task, data_root, data_config, limit, output, batch_size, device, seed,
             text_model, bootstrap, protocol, _cache_folder(cache, no_cache), score=True)


def infer(
    model: str = Model, model_args: Optional[str] = ModelArgs, task: str = Tasks,
    data_root: Optional[Path] = opt.DataRoot, data_config: Optional[Path] = opt.DataConfig,
    limit: Optional[int] = Limit, output: Optional[Path] = opt.Output, batch_size: int = BatchSize,
    device: str = Device, seed: int = opt.Seed, cache: Optional[Path] = Cache, no_cache: bool = NoCache,
) -> None:
    execute(model, model_args, task, data_root, data_config, limit, output, batch_size, device, seed,
             None, 0, None, _cache_folder(cache, no_cache), score=False)


def _cache_folder(cache: Path | None, no_cache: bool) -> Path | None:
    if no_cache:
        return None
    return cache or default_cache_dir()


def execute(model, model_args, task, data_root, data_config, limit, output, batch_size, device, seed,
            text_model, bootstrap, protocol, cache_folder: Path | None, score: bool) -> None:
    """`run` (score=True) or `infer` (score=False) with every option given; what the commands and `demo` call."""
    console = Console(stderr=True)
    paths = resolve_data_paths(data_root, data_config)
    if paths.is_sample:
        console.print(f"no --data-root: using the bundled synthetic sample at {paths.root}")
    tasks = [get_task(name.strip()) for name in task.split(",") if name.strip()]
    text_model = default_text_model(text_model, paths.is_sample)
    if score:
        preflight(tasks, paths, text_model)
    shard = current_shard()
    init_process_group(shard, device)
    arguments = parse_model_args(model_args)
    note = embedded_model_note(model, arguments)
    if note and shard.is_main:
        console.print(note)
    with phase(f"importing {model}"):   # torch, transformers: seconds on a cold start
        backend = load_backend(model, arguments)
    if output is None:
        # every rank must agree on the folder, so the timestamp is not allowed to differ between them
        output = Path("out") / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}" if shard.world_size == 1 else Path("out") / model
    plan = RunPlan(
        model=model, model_args=arguments, tasks=tasks, paths=paths,
        settings=GenerationSettings(seed=seed, batch_size=batch_size, device=shard.device(device)),
        scoring=ScoringOptions(text_model=text_model, bootstrap_resamples=bootstrap, seed=seed, protocol=protocol),
        limit=limit, output=output, cache=open_cache(cache_folder),
    )
    with progress_display(console, disable=not shard.is_main) as bars, listening(PhaseRows(bars)):
        results = run_plan(plan, backend, progress_factory(bars), score=score, shard=shard)
    plan.cache.close()
    destroy_process_group(shard)
    if not shard.is_main:
        return
    if score:
        with phase("printing results", show=False):
            print_results(Console(), results)
        console.print(f"results: {output / 'results.json'}")
    console.print(f"predictions: {output / 'predictions'}")
