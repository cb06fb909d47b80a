"""Leaderboard entries from a run: a results.json (schema 1) read and turned into `Entry`s (docs/leaderboards.md).

`read_results` reads a run's results.json (or the run directory holding one); `entries_from_results` makes
one entry per task of it. A run on the bundled synthetic sample gets its own model name (`run_model_name`,
`<model> (sample)`), so it never takes the slot of numbers on the real split. Schema, load, save and locking
of the leaderboard files themselves are `files.py`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.leaderboard.files import SOURCES, Entry, now
from gcgbench.runner.run_dir import read_results_file, results_file

SAMPLE_SUFFIX = " (sample)"


def run_model_name(config: Mapping[str, Any]) -> str | None:
    """The leaderboard name of a run's model; runs on the bundled synthetic sample are named apart
    (`<model> (sample)`) so they never take the slot of, or get compared with, numbers on the real split."""
    name = config.get("model")
    return f"{name}{SAMPLE_SUFFIX}" if name and config.get("sample_data") else name


def is_sample_model(model: str) -> bool:
    """An entry scored on the bundled synthetic sample (see `run_model_name`)."""
    return model.endswith(SAMPLE_SUFFIX)


def entries_from_results(
    results: Mapping[str, Any],
    results_path: Path,
    model: str | None = None,
    source: str = "measured",
    citation: str | None = None,
    tasks: Sequence[str] | None = None,
) -> list[Entry]:
    """One entry per task of a results.json (schema 1), optionally only `tasks`.

    The model is `model`, else the run's `config.model`; the fingerprint is the run's backend fingerprint
    (for `gcgbench score` runs, which have none: `{"name", "args"}`), plus the citation when reported.
    """
    if source not in SOURCES:
        raise InputError("--source", None, f"must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "reported" and not citation:
        raise InputError("--citation", None, "a reported entry needs --citation (where the numbers were published)")
    config = results.get("config") or {}
    name = model or run_model_name(config)
    if not name:
        raise InputError(results_path, "config.model", "the run names no model (a `gcgbench score` run?): pass --model NAME")
    fingerprint = dict(config.get("fingerprint") or {"name": name, "args": config.get("model_args") or {}})
    if source == "reported":
        fingerprint = {**fingerprint, "citation": citation}
    chosen = list(results["results"]) if tasks is None else list(tasks)
    unknown = [task for task in chosen if task not in results["results"] or task not in results["versions"]]
    if unknown:
        raise InputError(results_path, None, f"no results for {', '.join(unknown)}; it has {', '.join(results['results'])}")
    package_versions = config.get("package_versions") or {}
    made = datetime.fromtimestamp(Path(results_path).stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = []
    for task in chosen:
        metric_config = dict((results.get("metric_config") or {}).get(task) or {})
        entries.append(Entry(
            model=name, task=task, task_version=str(results["versions"][task]),
            protocol=str(metric_config.get("protocol") or "default"), source=source,
            metrics={k: float("nan") if v is None else float(v) for k, v in results["results"][task].items()},
            fingerprint=fingerprint, intervals=dict((results.get("intervals") or {}).get(task) or {}),
            n=(results.get("n_samples") or {}).get(task), harness_version=package_versions.get("gcgbench"),
            git_hash=config.get("git_hash"), date=made, added=now(), citation=citation, metric_config=metric_config,
            notes=tuple((results.get("notes") or {}).get(task) or ()),
        ))
    return entries


def read_results(path: Path) -> tuple[dict[str, Any], Path]:
    """A results.json (or a run directory holding one), schema 1 only: (payload, path of results.json)."""
    path = results_file(path)
    payload = read_results_file(path)
    if not isinstance(payload, dict) or "results" not in payload:
        raise InputError(path, None, "not a gcgbench results.json (no 'results')")
    if payload.get("schema_version") != 1:
        raise InputError(path, "schema_version", f"results schema {payload.get('schema_version')!r} is not 1, "
                                                 "the only one this gcgbench reads (docs/results.md)")
    for key in ("versions", "n_samples"):
        if not isinstance(payload.get(key), dict):
            raise InputError(path, key, "missing or not an object")
    return payload, path
