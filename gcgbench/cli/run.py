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
from gcgbench.api.errors import InputError
from gcgbench.models.embedded import embedded_model_note
from gcgbench.models.registry import check_backend, load_backend
from gcgbench.runner.devices import check_device
from gcgbench.runner.evaluate import RunPlan
from gcgbench.runner.evaluate import run as run_plan
from gcgbench.runner.preflight import check_output_folder, check_scoring_protocol, preflight
from gcgbench.runner.shard import (
    current_shard,
    destroy_process_group,
    init_process_group,
)
from gcgbench.runner.store import default_cache_dir, open_cache
from gcgbench.tasks.registry import check_overrides, get_tasks

Model = typer.Option(..., "--model", help="Backend name (see `gcgbench models`).")
ModelArgs = typer.Option(None, "--model-args", help="Backend arguments, k=v,k2=v2.")
Tasks = typer.Option(..., "--task", help="Task name(s), comma separated (see `gcgbench tasks`).")
Limit = typer.Option(None, "--limit", help="Only the first N docs of each task.")
BatchSize = typer.Option(1, "--batch-size", help="Requests per backend call.")
Cache = typer.Option(None, "--cache", help="Generation cache folder (default: ~/.cache/gcgbench).")
NoCache = typer.Option(False, "--no-cache", help="Neither read nor write the generation cache.")


def run(
    model: str = Model, model_args: Optional[str] = ModelArgs, task: str = Tasks,
    data_root: Optional[Path] = opt.DataRoot, data_config: Optional[Path] = opt.DataConfig,
    limit: Optional[int] = Limit, output: Optional[Path] = opt.Output, batch_size: int = BatchSize,
    device: str = opt.Device, seed: int = opt.Seed, text_model: Optional[str] = opt.TextModel,
    bootstrap: int = opt.Bootstrap, protocol: Optional[str] = opt.Protocol,
    cache: Optional[Path] = Cache, no_cache: bool = NoCache, min_mask_area: Optional[int] = opt.MinMaskArea,
    meteor: opt.CaptionImplementation = opt.Meteor, tokenizer: opt.CaptionImplementation = opt.Tokenizer,
) -> None:
    execute(model, model_args, task, data_root, data_config, limit, output, batch_size, device, seed,
            text_model, bootstrap, protocol, _cache_folder(cache, no_cache), score=True, min_mask_area=min_mask_area,
            meteor=meteor.value, tokenizer=tokenizer.value)


def infer(
    model: str = Model, model_args: Optional[str] = ModelArgs, task: str = Tasks,
    data_root: Optional[Path] = opt.DataRoot, data_config: Optional[Path] = opt.DataConfig,
    limit: Optional[int] = Limit, output: Optional[Path] = opt.Output, batch_size: int = BatchSize,
    device: str = opt.Device, seed: int = opt.Seed, cache: Optional[Path] = Cache, no_cache: bool = NoCache,
) -> None:
    execute(model, model_args, task, data_root, data_config, limit, output, batch_size, device, seed,
             None, 0, None, _cache_folder(cache, no_cache), score=False)


def _cache_folder(cache: Path | None, no_cache: bool) -> Path | None:
    if no_cache:
        return None
    return cache or default_cache_dir()


def execute(model, model_args, task, data_root, data_config, limit, output, batch_size, device, seed,
            text_model, bootstrap, protocol, cache_folder: Path | None, score: bool,
            min_mask_area: int | None = None, meteor: str = "python", tokenizer: str = "python") -> dict | None:
    """`run` (score=True) or `infer` (score=False) with every option given; what the commands, `demo` and
    `reproduce` call. Returns the run's results payload on the main rank (None on the other ranks)."""
    console = Console(stderr=True)
    opt.check_min_mask_area(min_mask_area)
    opt.check_bootstrap(bootstrap)
    shard = current_shard()
    if batch_size < 1:
        raise InputError("--batch-size", None, f"must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise InputError("--limit", None, f"must be at least 1 (leave it out for every doc), got {limit}")
    check_device(shard.device(device))   # imports torch unless cpu
    paths = resolve_data_paths(data_root, data_config)
    tasks = get_tasks(task)
    check_overrides(paths)
    if paths.is_sample and shard.is_main:
        console.print(f"no --data-root: using the bundled synthetic sample at {paths.root}", soft_wrap=True,
                      markup=False, highlight=False)
    arguments = parse_model_args(model_args)
    check_backend(model, arguments)
    if output is None:
        # every rank must agree on the folder, so the timestamp is not allowed to differ between them
        output = Path("out") / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}" if shard.world_size == 1 else Path("out") / model
    check_output_folder(output)
    text_model = default_text_model(text_model, paths.is_sample)
    check_scoring_protocol(tasks, protocol)
    generation_protocols = plan_generation_protocols(model, arguments, tasks)   # before any model loads
    scoring = ScoringOptions(text_model=text_model, bootstrap_resamples=bootstrap, seed=seed, protocol=protocol,
                             min_mask_area=min_mask_area, meteor=meteor, tokenizer=tokenizer)
    if score:
        preflight(tasks, paths, text_model, java=scoring.needs_java)
    init_process_group(shard, device)
    note = embedded_model_note(model, arguments)
    if note and shard.is_main:
        console.print(note)
    with phase(f"importing {model}"):   # torch, transformers: seconds on a cold start
        backend = load_backend(model, arguments)
    plan = RunPlan(
        model=model, model_args=arguments, tasks=tasks, paths=paths,
        settings=GenerationSettings(seed=seed, batch_size=batch_size, device=shard.device(device)),
        scoring=scoring,
        limit=limit, output=output, cache=open_cache(cache_folder),
        extra_config={"generation_protocol": generation_protocols, "scoring_protocol": protocol,
                      "model_options": _model_options(backend)},
    )
    with progress_display(console, disable=not shard.is_main) as bars, listening(PhaseRows(bars)):
        results = run_plan(plan, backend, progress_factory(bars), score=score, shard=shard)
    plan.cache.close()
    destroy_process_group(shard)
    if not shard.is_main:
        return None
    _report_cache_use(console, results, plan.cache.db_path, shard.world_size)
    if score:
        with phase("printing results", show=False):
            print_results(Console(), results)
        console.print(f"results: {output / 'results.json'}")
    console.print(f"predictions: {output / 'predictions'}")
    return results


def _report_cache_use(console: Console, results: dict, cache_path: Path | None, world_size: int) -> None:
    """One line per task: how many predictions came from the cache and how many were generated."""
    timing = results.get("timing", {})
    where = "rank 0's share: " if world_size > 1 else ""
    for name in results.get("versions", {}):
        cached, generated = timing.get(f"{name}.cached_docs"), timing.get(f"{name}.generated_docs")
        if cached is None or generated is None:
            continue
        source = f"from the cache {cache_path}" if cache_path is not None else "from the cache"
        console.print(f"{name}: {where}{cached} of {cached + generated} predictions {source}, {generated} generated",
                      soft_wrap=True, markup=False, highlight=False)


def plan_generation_protocols(model: str, arguments: dict[str, str], tasks: list) -> dict[str, str] | None:
    """{task: generation protocol} from the backend's protocol table (`protocol=` in --model-args, else each
    kind's default); an unknown protocol, or one a task's kind lacks, fails here in one line. None for a
    backend of one's own that declares no protocols."""
    table = getattr(check_backend(model, arguments), "PROTOCOLS", None)
    if table is None:
        return None
    return table.plan([(t.name, t.request_kind) for t in tasks], arguments.get("protocol") or None)


def _model_options(backend: object) -> dict | None:
    """The backend's typed options as parsed (results.json `config.model_options`), where it has them."""
    options = getattr(backend, "options", None)
    return options.to_json() if hasattr(options, "to_json") else None
