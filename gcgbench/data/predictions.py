"""Reading predictions from any of the forms `gcgbench score --predictions` accepts.

- a gcgbench predictions JSONL: one `Prediction.to_json()` per line;
- a run directory: its `predictions/<task>.jsonl`;
- for GCG, a GLaMM-style folder of `<image_id>.json` files (read by `gcgbench.data.grandf`).

Every doc must have exactly one prediction and every mask the doc's image size; anything else is an
InputError naming the file and the line — a prediction is never silently dropped. `gcgbench score` keeps
this strict: a prediction for a doc the task does not have is an error there (a wrong file or split).

One relaxation, for the `replay` backend only (`predictions_beyond_docs()`): a run that asks for part of a
task (`--limit`, or one torchrun rank's shard) replays a file made for more of it, so predictions for docs
outside the requested ones are skipped (after being parsed) instead of refused. Every requested doc still
needs exactly one prediction.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction
from gcgbench.api.jsonio import iter_jsonl, require
from gcgbench.runner.run_dir import RunDir

FolderReader = Callable[[Path, Sequence[Doc]], dict[str, Prediction]]

_BEYOND_DOCS: ContextVar[bool] = ContextVar("gcgbench_predictions_beyond_docs", default=False)


@contextmanager
def predictions_beyond_docs() -> Iterator[None]:
    """Within the block, readers skip predictions of docs they were not given (replay of a subset)."""
    token = _BEYOND_DOCS.set(True)
    try:
        yield
    finally:
        _BEYOND_DOCS.reset(token)


def beyond_docs_allowed() -> bool:
    """True inside `predictions_beyond_docs()`: a prediction for a doc not asked for is skipped, not refused."""
    return _BEYOND_DOCS.get()


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
    for line_number, obj in iter_jsonl(path, "predictions file", strict=True):
        record = f"line {line_number}"
        prediction = Prediction.from_json(obj, path, record)
        if prediction.doc_id not in sizes and beyond_docs_allowed():
            continue
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
