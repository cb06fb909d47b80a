"""results.json: the lm-eval-like record of a run, written atomically.

Schema (version 1; documented in docs/results.md):

    {"schema_version": 1,
     "results":        {task: {metric: value}},          fractions as the official scripts compute them
     "intervals":      {task: {metric: {low, high, confidence, n_resamples, method, seed}}},
     "n_samples":      {task: int},
     "versions":       {task: str},
     "metric_config":  {task: {...}},                     every switch that changes a score
     "notes":          {task: [str]},                     protocol events a reader must know about
     "config":         {model, model_args, predictions, data_root, seed, git_hash, package_versions,
                        task_hashes, python, platform, command},
     "timing":         {phase: seconds}}

Beside it, `samples/<task>.jsonl` holds one row of per-sample scores per doc, and (for `run`/`infer`)
`predictions/<task>.jsonl` one Prediction per doc.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

from gcgbench.api.hashing import file_sha256
from gcgbench.api.task import TaskResult

SCHEMA_VERSION = 1
RECORDED_PACKAGES = ("gcgbench", "numpy", "pycocotools", "pycocoevalcap", "torch", "transformers", "sentence-transformers")


def build_results(task_results: Sequence[TaskResult], config: dict[str, Any], timing: dict[str, float]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "results": {r.task: r.metrics for r in task_results},
        "intervals": {r.task: r.intervals for r in task_results},
        "n_samples": {r.task: r.n_samples for r in task_results},
        "versions": {r.task: r.version for r in task_results},
        "metric_config": {r.task: r.metric_config for r in task_results},
        "notes": {r.task: r.notes for r in task_results},
        "config": config,
        "timing": timing,
    }


def environment_config(annotation_files: Iterable[Path]) -> dict[str, Any]:
    """Provenance: git hash of the harness, package versions, hashes of the annotation files scored."""
    return {
        "git_hash": git_hash(),
        "package_versions": package_versions(),
        "task_hashes": {str(path): file_sha256(path) for path in annotation_files},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv),
    }


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_hash() -> str | None:
    """The commit of the gcgbench checkout in use, with `-dirty` when it has local changes; None outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def write_run_outputs(output: Path, results: dict[str, Any], task_results: Sequence[TaskResult]) -> None:
    """results.json plus `samples/<task>.jsonl`: one row of per-sample scores per doc (reports read these)."""
    for result in task_results:
        write_jsonl_atomic(output / "samples" / f"{result.task}.jsonl", result.per_sample)
    write_json_atomic(output / "results.json", results)


def write_jsonl_atomic(path: Path, rows: Iterable[Any], allow_nan: bool = True) -> None:
    """One JSON value per line, atomically. `allow_nan=False` refuses NaN/Infinity (ValueError) rather than
    writing the non-JSON tokens Python's json module writes for them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps(row, separators=(",", ":"), allow_nan=allow_nan) + "\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2, allow_nan=True)
            stream.write("\n")
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
