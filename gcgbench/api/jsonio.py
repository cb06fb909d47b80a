"""JSON and JSONL files: reading with errors that name the file and the record; writing atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from gcgbench.api.errors import InputError


def load_json(path: Path, what: str) -> Any:
    """Parse a JSON file; a missing or malformed file is one InputError line saying what it should be."""
    if not path.is_file():
        raise InputError(path, None, f"{what} not found")
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise InputError(path, f"line {error.lineno}", f"not valid JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8 text") from None


def iter_jsonl(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line of a JSONL file."""
    if not path.is_file():
        raise InputError(path, None, f"{what} not found")
    with path.open("r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(path, f"line {line_number}", f"not valid JSON ({error.msg})") from None


def require(condition: bool, path: Path, record: str | None, problem: str) -> None:
    """Raise InputError(path, record, problem) unless `condition` holds."""
    if not condition:
        raise InputError(path, record, problem)


def write_jsonl_atomic(path: Path, rows: Iterable[Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps(row, separators=(",", ":")) + "\n")
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
