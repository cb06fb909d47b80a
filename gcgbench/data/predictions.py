"""Reading predictions from any of the forms `gcgbench score --predictions` accepts.

- a gcgbench predictions JSONL: one `Prediction.to_json()` per line;
- a run directory: its `predictions/<task>.jsonl`;
- for GCG, a GLaMM-style folder of `<image_id>.json` files (read by `gcgbench.data.grandf`).

Every doc must have exactly one prediction and every mask the doc's image size; anything else is an
InputError naming the file and the line — a prediction is never silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction
from gcgbench.api.jsonio import iter_jsonl, require, write_jsonl_atomic
from gcgbench.runner.run_dir import RunDir

FolderReader = Callable[[Path, Sequence[Doc]], dict[str, Prediction]]


def read_predictions(
    path: Path, docs: Sequence[Doc], task_name: str, folder_reader: FolderReader | None = None
) -> dict[str, Prediction]:
    """Predictions for `docs` from a JSONL file, a run directory, or a task-specific folder layout."""
    path = Path(path)
    run_file = RunDir(path).predictions_path(task_name)
    if path.is_dir() and run_file.is_file():
        return read_prediction_jsonl(run_file, docs)
    if path.is_file():
        return read_prediction_jsonl(path, docs)
    if path.is_dir() and folder_reader is not None:
        return folder_reader(path, docs)
    if path.is_dir():
        raise InputError(path, None, f"no predictions/{task_name}.jsonl in this folder")
    raise InputError(path, None, "predictions not found (expected a JSONL file or a folder)")


def read_prediction_jsonl(path: Path, docs: Sequence[Doc]) -> dict[str, Prediction]:
    sizes = {doc.doc_id: (doc.height, doc.width) for doc in docs}
    predictions: dict[str, Prediction] = {}
    for line_number, obj in iter_jsonl(path, "predictions file"):
        record = f"line {line_number}"
        prediction = Prediction.from_json(obj, path, record)
        require(prediction.doc_id in sizes, path, record, f"doc_id {prediction.doc_id!r} is not a doc of this task")
        require(prediction.doc_id not in predictions, path, record, f"second prediction for doc_id {prediction.doc_id!r}")
        for index, mask in enumerate(prediction.masks()):
            require(
                mask.size == sizes[prediction.doc_id], path, f"{record} mask {index}",
                f"RLE size {list(mask.size)} != image size {list(sizes[prediction.doc_id])} (height, width)",
            )
        predictions[prediction.doc_id] = prediction
    missing = [doc.doc_id for doc in docs if doc.doc_id not in predictions]
    if missing:
        raise InputError(path, None, f"{len(missing)} of {len(docs)} docs have no prediction (first: {missing[0]!r})")
    return predictions


def write_prediction_jsonl(path: Path, predictions: Sequence[Prediction]) -> None:
    """A standalone predictions JSONL (what `score --predictions` and `replay` read): one per line, atomically."""
    write_jsonl_atomic(path, (prediction.to_json() for prediction in predictions))
