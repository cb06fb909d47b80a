"""A run directory as `diagnose` and `compare` read it: results.json, per-sample rows, predictions, docs.

One place reads the run folder layout (docs/results.md) for the two commands, so it can be swapped for the
runner's `RunDir` type when that lands:

- `results.json` (schema 1) through `from_results.read_results`;
- `samples/<task>.jsonl`: the per-sample rows `score`/`run` wrote (`rows.read_rows`);
- `predictions/<task>.jsonl`: what `run`, `infer` and `replay` runs wrote; a `gcgbench score` run has none
  and is read from the source it recorded (`config.predictions`: a GLaMM per-image folder, a JSONL or a run
  directory) through the task's own reader, so predictions made elsewhere diagnose like any run;
- the task's docs (ground truth, images) from `--data-root`, the run's recorded data root, or the bundled
  sample (`report.load_docs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.runner.run_dir import RunDir
from gcgbench.api.task import DataPaths
from gcgbench.api.types import Doc, Prediction
from gcgbench.leaderboard import files, from_results, rows
from gcgbench.views import run_report as report
from gcgbench.tasks.registry import get_task


@dataclass
class RunReader:
    """A run directory, read lazily; `path` is the folder holding results.json."""

    path: Path
    results: Mapping[str, Any]
    data_root: Path | None = None
    _rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _docs: dict[str, dict[str, Doc]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: Path, data_root: Path | None = None) -> "RunReader":
        results, results_path = from_results.read_results(Path(path))
        return cls(results_path.parent, results, None if data_root is None else Path(data_root))

    @property
    def results_path(self) -> Path:
        return RunDir(self.path).results_path

    @property
    def config(self) -> Mapping[str, Any]:
        return self.results.get("config") or {}

    @property
    def label(self) -> str:
        """What tables call this run: its model (with `(sample)` on the bundled sample), else its folder."""
        return from_results.run_model_name(self.config) or self.path.name

    @property
    def tasks(self) -> list[str]:
        return list(self.results["results"])

    def family(self, task: str) -> str:
        return files.family_of(task)

    def version(self, task: str) -> str:
        return str((self.results.get("versions") or {}).get(task))

    def metric_config(self, task: str) -> Mapping[str, Any]:
        return (self.results.get("metric_config") or {}).get(task) or {}

    def protocol(self, task: str) -> str:
        return str(self.metric_config(task).get("protocol") or "default")

    def metrics(self, task: str) -> dict[str, float]:
        return {name: float("nan") if value is None else float(value)
                for name, value in (self.results["results"].get(task) or {}).items()
                if value is None or isinstance(value, (int, float))}

    def require_task(self, task: str) -> None:
        if task not in self.results["results"]:
            raise InputError(self.results_path, None, f"no results for {task}; it has {', '.join(self.tasks) or 'none'}")

    def rows(self, task: str) -> list[dict[str, Any]]:
        """`samples/<task>.jsonl`; InputError when the run has none (every diagnosis needs them)."""
        found = self._rows.get(task)
        if found is None:
            found = rows.read_rows(self.path, task)
            if found is None:
                raise InputError(RunDir(self.path).samples_path(task), None,
                                 "no per-sample rows for this task (a run scored before samples/ existed? rescore it)")
            self._rows[task] = found
        return found

    def annotation_paths(self, task: str) -> list[Path]:
        """Where the run read the task's annotation files (its recorded data root and overrides)."""

        root = self.config.get("data_root")
        if not root:
            return []
        paths = DataPaths(Path(root), self.config.get("data_overrides") or {}, bool(self.config.get("sample_data")))
        try:
            return get_task(task).annotation_files(paths)
        except InputError:
            return []

    def ground_truth_hashes(self, task: str) -> list[str | None]:
        """sha256 of each annotation file of the task, as the run recorded them (None: not recorded)."""
        recorded = self.config.get("task_hashes") or {}
        return [recorded.get(str(path)) for path in self.annotation_paths(task)]

    def docs(self, task: str) -> dict[str, Doc]:
        """The task's docs by id (ground truth, image paths); InputError when they cannot be read."""
        found = self._docs.get(task)
        if found is None:
            found, problem = report.load_docs(task, self.config, self.data_root)
            if problem:
                raise InputError(self.path, None, f"{problem}; pass --data-root")
            self._docs[task] = found
        return found

    def scored_docs(self, task: str) -> list[Doc]:
        """The docs the run scored, in the order of its rows (a `--limit` run scored the first N only)."""
        docs, order = self.docs(task), dict.fromkeys(str(row.get("doc_id")) for row in self.rows(task))
        unknown = [doc_id for doc_id in order if doc_id not in docs]
        if unknown:
            raise InputError(RunDir(self.path).samples_path(task), None,
                             f"doc {unknown[0]!r} is not a doc of {task} under this data root ({len(unknown)} unknown)")
        return [docs[doc_id] for doc_id in order]

    def predictions(self, task: str, docs: Sequence[Doc]) -> dict[str, Prediction]:
        """The run's predictions for `docs`: `predictions/<task>.jsonl`, else the source a `score` run names."""

        own = RunDir(self.path).predictions_path(task)
        if own.is_file():
            wanted = {doc.doc_id for doc in docs}
            return {doc_id: p for doc_id, p in RunDir(self.path).read_predictions(task).items() if doc_id in wanted}
        source = self.config.get("predictions")
        if source and Path(source).exists():
            return dict(get_task(task).read_predictions(Path(source), docs))
        raise InputError(self.path, None, f"no predictions/{task}.jsonl, and the predictions this run scored "
                                          f"({source or 'not recorded'}) are not on disk: cannot diagnose {task}")
