"""The inference and scoring phases, joined by the prediction store.

`infer_task` turns a task's docs into requests, asks the backend in batches, checks every prediction
(right doc, masks of the image's size) and returns them in doc order. `score_task` only reads
predictions. `run` does both for several tasks and writes `results.json` and
`predictions/<task>.jsonl`, the predictions first, so a scoring failure never loses generations.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from gcgbench.api.backend import Backend, GenerationSettings
from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.api.phases import phase
from gcgbench.api.task import DataPaths, ScoringOptions, Task, TaskResult
from gcgbench.api.types import Doc, Prediction, Request
from gcgbench.runner.cache_entry import CorruptEntry
from gcgbench.runner.results import build_results, environment_config, write_run_outputs
from gcgbench.runner.run_dir import RunDir
from gcgbench.runner.shard import Shard, gather_to_main
from gcgbench.runner.store import GenerationCache, NullCache

Progress = Callable[[int], None]


class BackendError(GcgbenchError):
    """A backend returned something the task cannot score (wrong doc, wrong mask size, too few answers)."""


@dataclass
class RunPlan:
    """Everything `run`/`infer` needs; recorded in results.json `config`."""

    model: str
    model_args: Mapping[str, str]
    tasks: Sequence[Task]
    paths: DataPaths
    settings: GenerationSettings
    scoring: ScoringOptions
    limit: int | None = None
    output: Path | None = None
    cache: GenerationCache | NullCache = field(default_factory=NullCache)
    extra_config: dict[str, Any] = field(default_factory=dict)


def select_docs(task: Task, paths: DataPaths, limit: int | None) -> list[Doc]:
    docs = task.docs(paths)
    return docs[:limit] if limit is not None else docs


def check_supported(backend: Backend, task: Task, docs: Sequence[Doc]) -> None:
    """Refuse a task whose request kind the backend cannot answer, before any generation."""
    if not docs:
        return
    kind = task.requests(docs[0]).kind
    if kind not in backend.supported_kinds:
        raise InputError("--task", task.name, f"backend {backend.name!r} cannot answer requests of kind {kind!r}; "
                                              f"it answers: {', '.join(sorted(backend.supported_kinds))}")


def infer_task(
    backend: Backend,
    task: Task,
    docs: Sequence[Doc],
    settings: GenerationSettings,
    progress: Progress | None = None,
    cache: GenerationCache | NullCache | None = None,
    provenance: Mapping[str, Any] | None = None,
    cache_stats: dict[str, Any] | None = None,
    context_docs: Sequence[Doc] | None = None,
) -> list[Prediction]:
    """Predictions for `docs`, in order: cached ones first (never regenerated), then the misses,
    generated `settings.batch_size` requests at a time, each batch committed to the cache at once so a
    killed run loses at most the batch in flight (docs/cache.md). `context_docs` (default `docs`) is what
    `backend.prepare` sees: the whole split, so that a protocol grouping docs (F-LMM's per-image RES sequence,
    GLaMM's multi-turn RES) groups them the same whatever the shard or `--limit`."""
    check_supported(backend, task, docs)
    cache = cache or NullCache()
    requests = [task.requests(doc) for doc in docs]
    fingerprint = dict(backend.fingerprint())
    keys = [cache.key(fingerprint, task.name, task.version, request, settings) for request in requests]
    hits = cache.get_many(keys, on_corrupt=_report_corrupt)
    answers: dict[str, Prediction] = {}
    cached = [(request, hits[key]) for request, key in zip(requests, keys) if key in hits]
    if cached:
        checked = check_predictions(backend.name, [r for r, _ in cached], [p for _, p in cached])
        answers.update((prediction.doc_id, prediction) for prediction in checked)
        if progress is not None:
            progress(len(cached))
    missing = [request for request, key in zip(requests, keys) if key not in hits]
    if missing:
        backend.prepare(task, docs if context_docs is None else context_docs)
        step = max(1, settings.batch_size)
        for start in range(0, len(missing), step):
            batch = missing[start:start + step]
            with phase("generation", show=False):   # the progress bar shows it; a model load inside is its own phase
                returned = backend.generate(batch, settings)
            generated = check_predictions(backend.name, batch, returned)
            cache.put_many(cache.entry(fingerprint, task.name, task.version, request, settings, prediction, provenance)
                           for request, prediction in zip(batch, generated))
            answers.update((prediction.doc_id, prediction) for prediction in generated)
            if progress is not None:
                progress(len(batch))
    if cache_stats is not None:
        cache_stats[task.name] = {"cached": len(cached), "generated": len(missing),
                                  "cached_batch_sizes": {str(b): n for b, n in hits.batch_sizes.items()}}
    return [answers[request.doc_id] for request in requests]


def _report_corrupt(entry: CorruptEntry) -> None:
    print(f"warning: {entry.message()}; regenerating it", file=sys.stderr)


def check_predictions(backend_name: str, requests: Sequence[Request], answers: Sequence[Prediction]) -> list[Prediction]:
    if len(answers) != len(requests):
        raise BackendError(f"backend {backend_name!r} returned {len(answers)} predictions for {len(requests)} requests")
    for request, answer in zip(requests, answers):
        if answer.doc_id != request.doc_id:
            raise BackendError(f"backend {backend_name!r} answered doc {answer.doc_id!r} when asked for {request.doc_id!r}")
        try:  # what is cached and written must be JSON: no NaN or Infinity, JSON-native values only
            json.dumps(answer.to_json(), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise BackendError(f"backend {backend_name!r}, doc {request.doc_id!r}: the prediction is not valid JSON "
                               f"({error}); NaN and Infinity cannot be stored") from None
        for index, mask in enumerate(answer.masks()):
            if mask.size != (request.height, request.width):
                raise BackendError(
                    f"backend {backend_name!r}, doc {request.doc_id!r}: mask {index} has size {list(mask.size)}, "
                    f"image is {[request.height, request.width]}"
                )
    return list(answers)


def score_task(task: Task, docs: Sequence[Doc], predictions: Sequence[Prediction], options: ScoringOptions) -> TaskResult:
    return task.score(docs, {p.doc_id: p for p in predictions}, options)


def run(plan: RunPlan, backend: Backend, progress_factory: Callable[[str, int], Progress] | None = None,
        score: bool = True, shard: Shard = Shard()) -> dict[str, Any] | None:
    """Infer (and score) every task of the plan; write predictions, upload files and results.json.

    Under torchrun every rank infers its share of the docs; rank 0 gathers the predictions, restores doc
    order, writes and scores, and returns the results; the other ranks return None. Every task's request
    kind is checked against the backend first, so an unsupported task stops the run before any model loads.
    """
    results: list[TaskResult] = []
    timing: dict[str, float] = {}
    cache_stats: dict[str, Any] = {}
    selected = []
    for task in plan.tasks:
        started = time.perf_counter()
        docs = select_docs(task, plan.paths, plan.limit)
        check_supported(backend, task, docs)
        selected.append((task, docs, time.perf_counter() - started))
    try:
        for task, docs, reading_s in selected:
            started = time.perf_counter() - reading_s       # a task's infer time includes reading its docs
            mine = shard.take(docs)
            # under torchrun each rank's bar counts its own share of the docs, and says so
            label = task.name if shard.world_size == 1 else f"{task.name} (rank {shard.rank}: {len(mine)} of {len(docs)})"
            progress = progress_factory(label, len(mine)) if progress_factory else None
            provenance = {"world_size": shard.world_size, "rank": shard.rank}
            context = docs if plan.limit is None else task.docs(plan.paths)
            gathered = gather_to_main(shard, infer_task(backend, task, mine, plan.settings, progress, plan.cache,
                                                        provenance, cache_stats, context))
            if gathered is None:
                continue
            position = {doc.doc_id: index for index, doc in enumerate(docs)}
            predictions = sorted(gathered, key=lambda prediction: position[prediction.doc_id])
            inferred = time.perf_counter()
            timing[f"{task.name}.infer_s"] = inferred - started
            if plan.output is not None:
                RunDir(plan.output).write_predictions(task.name, predictions)
                for name, content in task.submission_files(docs, {p.doc_id: p for p in predictions}).items():
                    (plan.output / "submissions").mkdir(parents=True, exist_ok=True)
                    (plan.output / "submissions" / name).write_bytes(content)
            if score:
                with phase(f"scoring {task.name}"):
                    results.append(score_task(task, docs, predictions, plan.scoring))
                timing[f"{task.name}.score_s"] = time.perf_counter() - inferred
    except KeyboardInterrupt:
        # Ctrl-C: the tasks already scored keep their scores (results.json marks the run interrupted);
        # their predictions and every finished batch's generations are already on disk.
        if shard.is_main and plan.output is not None and score and results:
            payload = _payload(plan, backend, shard, results, timing, cache_stats, all_versions=False)
            payload["interrupted"] = {"scored": [r.task for r in results],
                                      "not_scored": [t.name for t in plan.tasks if t.name not in
                                                     {r.task for r in results}]}
            write_run_outputs(plan.output, payload, results)
        raise
    if not shard.is_main:
        return None
    payload = _payload(plan, backend, shard, results, timing, cache_stats, all_versions=True)
    if plan.output is not None and score:
        with phase("writing results"):
            write_run_outputs(plan.output, payload, results)
    return payload


def _payload(plan: RunPlan, backend: Backend, shard: Shard, results: Sequence[TaskResult], timing: dict[str, float],
             cache_stats: Mapping[str, Any], all_versions: bool) -> dict[str, Any]:
    config = {
        "model": plan.model,
        "model_args": dict(plan.model_args),
        "fingerprint": dict(backend.fingerprint()),
        **plan.settings.to_json(),
        "world_size": shard.world_size,
        "limit": plan.limit,
        "data_root": str(plan.paths.root),
        "sample_data": plan.paths.is_sample,
        "data_overrides": {k: dict(v) for k, v in plan.paths.overrides.items()},
        "data_files": {task.name: plan.paths.files_used(task.spec) for task in plan.tasks},
        "cache": None if plan.cache.db_path is None else str(plan.cache.db_path),
        **plan.extra_config,
        **environment_config([f for task in plan.tasks for f in task.annotation_files(plan.paths)]),
    }
    timing = dict(timing)
    for task_name, counts in cache_stats.items():  # how this run went, like wall times: not part of the result
        timing[f"{task_name}.cached_docs"] = counts["cached"]
        timing[f"{task_name}.generated_docs"] = counts["generated"]
    payload = build_results(results, config, timing, {task.name: task.spec for task in plan.tasks})
    if all_versions:
        payload["versions"] = {task.name: task.version for task in plan.tasks}
    return payload
