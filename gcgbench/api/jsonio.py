"""JSON and JSONL files: reading with errors that name the file and the record; writing atomically.

Whatever the bytes, reading ends in a value or one `InputError`: not UTF-8 (with the line), not JSON,
or nested too deeply for the parser (e.g. 100 000 opening brackets) are all input errors.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from gcgbench.api.errors import InputError


TOO_DEEP = "JSON nested too deeply to read"


def load_json(path: Path, what: str) -> Any:
    """Parse a JSON file; a missing or malformed file is one InputError line saying what it should be."""
    if not path.is_file():
        raise InputError(path, None, f"{what} not found")
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise InputError(path, f"line {error.lineno}", f"not valid JSON ({error.msg})") from None
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start} of the bad chunk)") from None
    except RecursionError:
        raise InputError(path, None, TOO_DEEP) from None


def iter_jsonl(path: Path, what: str, strict: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line of a JSONL file. `strict` refuses the
    NaN/Infinity tokens Python's json module reads but JSON does not have."""
    if not path.is_file():
        raise InputError(path, None, f"{what} not found")
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(path, f"line {line_number}", f"not UTF-8 text (byte {error.start})") from None
            if not line.strip():
                continue
            try:
                parsed = json.loads(line, parse_constant=_refuse_constant) if strict else json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(path, f"line {line_number}", f"not valid JSON ({error.msg})") from None
            except ValueError as error:  # NaN / Infinity under `strict`
                raise InputError(path, f"line {line_number}", str(error)) from None
            except RecursionError:
                raise InputError(path, f"line {line_number}", TOO_DEEP) from None
            yield line_number, parsed


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (write null, or leave the value out)")


def require(condition: bool, path: Path, record: str | None, problem: str) -> None:
    """Raise InputError(path, record, problem) unless `condition` holds."""
    if not condition:
        raise InputError(path, record, problem)


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
