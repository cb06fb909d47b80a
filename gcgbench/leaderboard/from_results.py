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
from gcgbench.leaderboard.entry import SCALE, SOURCES, Entry
from gcgbench.leaderboard.files import now
from gcgbench.metrics.gcg import RENAMED
from gcgbench.runner.run_dir import read_results_file, results_file
from gcgbench.tasks.registry import canonical_task

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
    Each entry is built as the JSON object a leaderboard file holds and read back through the one entry
    schema (`Entry.from_json`), so whatever `add` would write, `load` reads; a value the schema refuses
    is an InputError naming the results.json key it came from.
    """
    if source not in SOURCES:
        raise InputError("--source", None, f"must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "reported" and not citation:
        raise InputError("--citation", None, "a reported entry needs --citation (where the numbers were published)")
    for option, value in (("--model", model), ("--citation", citation)):
        if value is not None and (not value.strip() or not value.isprintable()):
            raise InputError(option, None, f"must be one line of printable text, got {value!r}")
    config = _section(results, results_path, "config")
    name = model or run_model_name(config)
    if not name:
        raise InputError(results_path, "config.model", "the run names no model (a `gcgbench score` run?): pass --model NAME")
    fingerprint = config.get("fingerprint") or {"name": name, "args": config.get("model_args") or {}}
    if not isinstance(fingerprint, Mapping):
        raise InputError(results_path, "config.fingerprint", f"must be an object, got {type(fingerprint).__name__}")
    fingerprint = dict(fingerprint)
    if source == "reported":
        fingerprint = {**fingerprint, "citation": citation}
    scores, versions = _section(results, results_path, "results"), _section(results, results_path, "versions")
    chosen = list(scores) if tasks is None else [canonical_task(task) for task in tasks]
    unknown = [task for task in chosen if task not in scores or task not in versions]
    if unknown:
        raise InputError(results_path, None, f"no results for {', '.join(map(repr, unknown))}; it has "
                                             f"{', '.join(map(repr, scores)) or 'none'}")
    package_versions = config.get("package_versions") or {}
    harness = package_versions.get("gcgbench") if isinstance(package_versions, Mapping) else None
    made = datetime.fromtimestamp(Path(results_path).stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sections = {key: _section(results, results_path, key) for key in ("metric_config", "intervals", "n_samples", "notes")}
    entries = []
    for task in chosen:
        metric_config = sections["metric_config"].get(task)
        protocol = metric_config.get("protocol") if isinstance(metric_config, Mapping) else None
        version = versions[task]
        obj = {
            "model": name, "task": task,
            "task_version": str(version) if isinstance(version, (str, int)) and not isinstance(version, bool) else version,
            "protocol": protocol or "default", "source": source, "fingerprint": fingerprint, "scale": SCALE,
            "metrics": scores[task], "intervals": sections["intervals"].get(task), "n": sections["n_samples"].get(task),
            "harness_version": harness, "git_hash": config.get("git_hash"), "date": made, "added": now(),
            "citation": citation, "metric_config": metric_config, "notes": sections["notes"].get(task),
        }
        keys = {"task_version": f"versions.{task}", "protocol": f"metric_config.{task}.protocol",
                "metrics": f"results.{task}", "intervals": f"intervals.{task}", "n": f"n_samples.{task}",
                "metric_config": f"metric_config.{task}", "notes": f"notes.{task}", "git_hash": "config.git_hash",
                "harness_version": "config.package_versions.gcgbench", "fingerprint": "config.fingerprint",
                "model": "--model" if model else "config.model", "citation": "--citation"}
        entries.append(Entry.from_json(obj, results_path, task, names=keys))
    return entries


def _section(results: Mapping[str, Any], path: Path, key: str) -> Mapping[str, Any]:
    """A top-level object of a results.json ({} when absent); anything but an object is an InputError."""
    value = results.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(path, key, f"must be an object, got {type(value).__name__}")
    return value


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
    return _renamed_metrics(payload), path


def _renamed_metrics(payload: dict[str, Any]) -> dict[str, Any]:
    """Older results.json files name some metrics by their former names (metrics.gcg.RENAMED): read them
    under the current ones."""
    for section in ("results", "intervals"):
        found = payload.get(section)
        if not isinstance(found, dict):
            continue          # not an object: the entry schema refuses it, naming the key
        for task, values in found.items():
            if isinstance(values, dict) and any(old in values for old in RENAMED):
                payload[section][task] = {RENAMED.get(name, name) if RENAMED.get(name) not in values else name: value
                                          for name, value in values.items()}
    return payload
