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

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from gcgbench.api.hashing import file_sha256
from gcgbench.api.task import TaskResult, TaskSpec
from gcgbench.runner.run_dir import RunDir

SCHEMA_VERSION = 1
RECORDED_PACKAGES = ("gcgbench", "numpy", "pycocotools", "pycocoevalcap", "opencv-python-headless", "torch", "transformers", "sentence-transformers")


def build_results(task_results: Sequence[TaskResult], config: dict[str, Any], timing: dict[str, float],
                  specs: Mapping[str, TaskSpec] | None = None) -> dict[str, Any]:
    """The results.json payload; `specs` (task name → spec) adds `higher_is_better` for the listed metrics."""
    specs = specs or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "results": {r.task: r.metrics for r in task_results},
        "intervals": {r.task: r.intervals for r in task_results},
        "n_samples": {r.task: r.n_samples for r in task_results},
        "versions": {r.task: r.version for r in task_results},
        "metric_config": {r.task: r.metric_config for r in task_results},
        "higher_is_better": {r.task: dict(specs[r.task].higher_is_better) for r in task_results if r.task in specs},
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
    run = RunDir(output)
    for result in task_results:
        run.write_samples(result.task, result.per_sample)
    run.write_results(results)
