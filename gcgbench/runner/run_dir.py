"""The run folder: the one place that knows its layout, and reads and writes it.

    OUT/results.json               lm-evaluation-harness-like results (schema in docs/results.md)
    OUT/predictions/<task>.jsonl   one `Prediction.to_json()` per line, in doc order
    OUT/samples/<task>.jsonl       one row of per-sample scores per doc (or per phrase for PNG)

Every file is written atomically (temporary file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.jsonio import iter_jsonl, write_json_atomic, write_jsonl_atomic
from gcgbench.api.types import Prediction

RESULTS_FILE = "results.json"
PREDICTIONS_FOLDER = "predictions"
SAMPLES_FOLDER = "samples"


@dataclass(frozen=True)
class RunDir:
    """A run directory `root` (it need not exist yet when writing)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # ------------------------------------------------------------------ paths

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS_FILE

    def predictions_path(self, task: str) -> Path:
        return self.root / PREDICTIONS_FOLDER / f"{task}.jsonl"

    def samples_path(self, task: str) -> Path:
        return self.root / SAMPLES_FOLDER / f"{task}.jsonl"

    def is_run(self) -> bool:
        """A folder holding results.json or a predictions/ folder."""
        return self.results_path.is_file() or (self.root / PREDICTIONS_FOLDER).is_dir()

    def has_predictions(self, task: str) -> bool:
        return self.predictions_path(task).is_file()

    def prediction_tasks(self) -> list[str]:
        """The tasks with a predictions file, sorted."""
        return sorted(path.stem for path in (self.root / PREDICTIONS_FOLDER).glob("*.jsonl"))

    # ------------------------------------------------------------------ writing

    def write_predictions(self, task: str, predictions: Sequence[Prediction]) -> None:
        write_prediction_jsonl(self.predictions_path(task), predictions)

    def write_samples(self, task: str, rows: Iterable[Any]) -> None:
        write_jsonl_atomic(self.samples_path(task), rows)

    def write_results(self, results: dict[str, Any]) -> None:
        write_json_atomic(self.results_path, results)

    # ------------------------------------------------------------------ reading

    def iter_predictions(self, task: str) -> Iterator[tuple[int, Prediction]]:
        """(line number, Prediction) of each line of predictions/<task>.jsonl; a missing file or a bad line is
        an InputError naming the file and the line."""
        path = self.predictions_path(task)
        for line_number, obj in iter_jsonl(path, f"predictions of {task} (predictions/{task}.jsonl)"):
            yield line_number, Prediction.from_json(obj, path, f"line {line_number}")

    def read_predictions(self, task: str) -> dict[str, Prediction]:
        """Predictions by doc id; {} when the run has no predictions file for `task`."""
        if not self.has_predictions(task):
            return {}
        return {prediction.doc_id: prediction for _, prediction in self.iter_predictions(task)}

    def read_samples(self, task: str) -> list[dict[str, Any]] | None:
        """The per-sample rows of `task`, or None when the run has none."""
        path = self.samples_path(task)
        if not path.is_file():
            return None
        return [row for _, row in iter_jsonl(path, f"per-sample scores of {task}")]

    def read_results_json(self) -> Any:
        """results.json parsed (any JSON value; the schema is checked by its readers)."""
        return read_results_file(self.results_path)


def write_prediction_jsonl(path: Path, predictions: Sequence[Prediction]) -> None:
    """A predictions JSONL (a run's, or a standalone one `score --predictions` and `replay` read): one
    `Prediction.to_json()` per line, atomically; NaN or Infinity (not JSON) is refused."""
    try:
        write_jsonl_atomic(path, (prediction.to_json() for prediction in predictions), allow_nan=False)
    except ValueError as error:
        raise InputError(path, None, f"a prediction holds NaN or Infinity, which JSON cannot store ({error})") from None


def results_file(path: Path) -> Path:
    """The results.json of a run directory, or `path` itself when it names a file."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() else path


def read_results_file(path: Path) -> Any:
    """A results file parsed; missing, malformed or non-UTF-8 → one InputError line naming it."""
    path = results_file(path)
    if not path.is_file():
        raise InputError(path, None, "results file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(path, None, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start} of the bad chunk)") from None
    except RecursionError:
        raise InputError(path, None, "JSON nested too deeply to read") from None
