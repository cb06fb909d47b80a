"""Leaderboard files: one versioned JSON file per task family in `leaderboards/` (docs/leaderboards.md).

A file holds entries; an entry is one (model, task@version, protocol, source) with its fingerprint,
metric values (fractions, as results.json holds them), 95% intervals, n, harness version, git hash,
date and, for published numbers, a citation. Rules:

- writes are atomic (temporary file in the same folder, then rename) under an advisory lock, so a
  reader never sees half a file and two concurrent `add`s do not lose each other's entry;
- adding an entry whose slot (model, task@version, protocol, source) holds a DIFFERENT fingerprint
  is refused unless `replace=True`; the same fingerprint updates the entry in place;
- a file of another schema version is migrated (`MIGRATIONS`) or refused with a message saying why,
  never read as if it were the current one.

The entry itself and its schema (what `load` accepts and `save` writes) are `entry.py`; entries made from a
run's results.json (`read_results`, `entries_from_results`) are `from_results.py`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.leaderboard.entry import SCALE, SCHEMA_VERSION, Entry
from gcgbench.tasks.registry import all_specs

DEFAULT_DIRECTORY = Path("leaderboards")
# schema_version found in a file -> function returning the payload one version up (none yet: 1 is the first)
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class ConflictError(GcgbenchError):
    """An add would replace an entry made by a different model build (fingerprint)."""


@dataclass
class Leaderboard:
    """The entries of one file, in file order. `family` names the task family the file is for."""

    path: Path
    family: str
    entries: list[Entry] = field(default_factory=list)
    migrated_from: int | None = None

    def find(self, task: str | None = None, model: str | None = None, source: str | None = None) -> list[Entry]:
        return [e for e in self.entries if (task is None or e.task == task) and (model is None or e.model == model)
                and (source is None or e.source == source)]

    def add(self, entry: Entry, replace_different: bool = False) -> str:
        """Put `entry` in its slot: "added", "updated" (same fingerprint) or "replaced" (`replace_different`).

        Raises ConflictError when the slot holds another fingerprint and `replace_different` is False.
        """
        for position, old in enumerate(self.entries):
            if old.slot != entry.slot:
                continue
            if old.fingerprint_sha256 != entry.fingerprint_sha256 and not replace_different:
                raise ConflictError(
                    f"{self.path}: {entry.model} on {entry.task_at_version} ({entry.protocol}, {entry.source}) already "
                    f"has an entry with another fingerprint ({old.fingerprint_sha256[:12]} != "
                    f"{entry.fingerprint_sha256[:12]}); pass --replace to overwrite it"
                )
            outcome = "updated" if old.fingerprint_sha256 == entry.fingerprint_sha256 else "replaced"
            self.entries[position] = entry
            return outcome
        self.entries.append(entry)
        return "added"

    def to_json(self) -> dict[str, Any]:
        ordered = sorted(self.entries, key=lambda e: (e.task, e.task_version, e.protocol, e.source, e.model))
        return {"schema_version": SCHEMA_VERSION, "family": self.family, "scale": SCALE,
                "entries": [entry.to_json() for entry in ordered]}


def family_of(task: str) -> str:
    """The task's family from its YAML spec; for a task this install does not know, its name's prefix."""
    spec = all_specs().get(task)
    return spec.family if spec is not None else task.split("_", 1)[0]


def file_for(task: str, directory: Path = DEFAULT_DIRECTORY) -> Path:
    return Path(directory) / f"{family_of(task)}.json"


def load(path: Path, family: str | None = None) -> Leaderboard:
    """Read a leaderboard file (a missing file is an empty board of `family`, or the file's stem)."""
    path = Path(path)
    if not path.exists():
        return Leaderboard(path, family or path.stem)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(path, None, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start} of the bad chunk)") from None
    except RecursionError:
        raise InputError(path, None, "JSON nested too deeply to read") from None
    except OSError as error:
        raise InputError(path, None, f"cannot read ({error.strerror})") from None
    payload, migrated_from = migrate(payload, path)
    if not isinstance(payload.get("entries"), list):
        raise InputError(path, "entries", "must be a list")
    if payload.get("scale", SCALE) != SCALE:
        raise InputError(path, "scale", f"must be {SCALE!r}, got {payload.get('scale')!r}")
    entries = [Entry.from_json(obj, path, f"entries[{i}]") for i, obj in enumerate(payload["entries"])]
    board = Leaderboard(path, str(payload.get("family") or family or path.stem), [], migrated_from)
    for entry in entries:
        if any(other.slot == entry.slot for other in board.entries):
            raise InputError(path, None, f"two entries for {entry.model} on {entry.task_at_version} "
                                         f"({entry.protocol}, {entry.source})")
        board.entries.append(entry)
    return board


def migrate(payload: Any, path: Path) -> tuple[dict[str, Any], int | None]:
    """Bring a parsed file to SCHEMA_VERSION, or refuse it: (payload, the version it was migrated from)."""
    if not isinstance(payload, dict):
        raise InputError(path, None, "not a gcgbench leaderboard file (expected a JSON object)")
    if "schema_version" not in payload:
        raise InputError(path, None, "not a gcgbench leaderboard file: it has no 'schema_version' "
                                     f"(this gcgbench writes schema {SCHEMA_VERSION}, docs/leaderboards.md)")
    found = payload["schema_version"]
    if not isinstance(found, int) or isinstance(found, bool):
        raise InputError(path, "schema_version", f"must be an integer, got {found!r}")
    if found > SCHEMA_VERSION:
        raise InputError(path, None, f"schema_version {found} is newer than this gcgbench reads ({SCHEMA_VERSION}); "
                                     "upgrade gcgbench to read or change it")
    original, version = found, found
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise InputError(path, None, f"schema_version {version} is older than this gcgbench reads and has no "
                                         f"migration to {SCHEMA_VERSION}; re-create the file with `gcgbench leaderboard add`")
        payload = step(payload)
        version = payload.get("schema_version", version + 1)
    return payload, (original if original != SCHEMA_VERSION else None)


def save(board: Leaderboard) -> None:
    """Write atomically: a temporary file in the same folder, fsync, then rename over the old file.

    NaN values are written as null; non-ASCII names (GLaMM†) stay readable (UTF-8); the file gets the
    usual 0644-minus-umask mode (mkstemp's 0600 would hide a committed leaderboard from other users).
    Every entry is checked against the entry schema first (an InputError, nothing written, when one fails),
    so entries made in Python (seed.py, other tools) cannot write a file `load` refuses either.
    """
    path = Path(board.path)
    payload = _finite(board.to_json())
    for index, obj in enumerate(payload["entries"]):  # what is written is what `load` reads: the one schema
        Entry.from_json(obj, path, f"entries[{index}] (not written)")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2, ensure_ascii=False, allow_nan=False)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def locked(path: Path, timeout_s: float = 30.0) -> Iterator[None]:
    """An advisory lock on the folder holding `path` around a read-modify-write, so concurrent adds do not
    lose each other's entries (flock on the directory itself: no lock file is left behind; a no-op where
    fcntl is missing, where the atomic rename still keeps readers safe)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise GcgbenchError(f"{folder}: another process holds its lock for more than {timeout_s:.0f} s")
                time.sleep(0.05)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def add_entries(entries: Sequence[Entry], directory: Path = DEFAULT_DIRECTORY, file: Path | None = None,
                replace_different: bool = False) -> list[tuple[Path, Entry, str]]:
    """Add entries to their family files (or all to `file`); each file is written once, atomically.

    A conflict in any entry stops before anything is written. Returns (file, entry, outcome) per entry.
    """
    by_file: dict[Path, list[Entry]] = {}
    for entry in entries:
        by_file.setdefault(Path(file) if file is not None else file_for(entry.task, directory), []).append(entry)
    done: list[tuple[Path, Entry, str]] = []
    with contextlib.ExitStack() as stack:
        for folder in sorted({path.resolve().parent for path in by_file}):
            stack.enter_context(locked(folder / "_"))
        boards = {}
        for path, chosen in by_file.items():
            boards[path] = load(path, family=family_of(chosen[0].task))
            for entry in chosen:
                done.append((path, entry, boards[path].add(entry, replace_different)))
        for board in boards.values():
            save(board)
    return done


def load_all(directory: Path = DEFAULT_DIRECTORY) -> list[Leaderboard]:
    """Every `*.json` leaderboard in `directory`, sorted by file name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, None, "leaderboard folder not found")
    return [load(path) for path in sorted(directory.glob("*.json"))]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(obj: Any) -> Any:
    """The payload with every NaN/inf float (metric configs, interval bounds) written as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj
