"""The generation cache: every prediction a backend made, keyed by what produced it (docs/cache.md).

This module is the SQLite store (`GenerationCache`, `NullCache` for `--no-cache`, `open_cache`); the key,
the entry and the soundness check of a stored row are in `cache_entry.py`.

One SQLite database per cache directory (`<dir>/generations.sqlite`, WAL mode). Several processes
may open it at once; each `put_many` is one short transaction, so a killed run loses at most the batch
in flight. Keys hold neither rank nor world size nor batch size, so any run resumes any other's cache.
A corrupted row is reported and treated as a miss, never returned and never raised. Stdlib only.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from gcgbench.api.errors import GcgbenchError
from gcgbench.runner.cache_entry import (
    SCHEMA_VERSION, CacheEntry, CorruptEntry, OnCorrupt, cache_key, decode_entry, entry_ok, make_entry, warn_corrupt,
)

DB_NAME = "generations.sqlite"
BUSY_TIMEOUT_S = 60.0
_CHUNK = 500  # keys per SELECT ... IN (...)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, fingerprint_sha256 TEXT NOT NULL,
    task TEXT NOT NULL, task_version TEXT NOT NULL, doc_id TEXT NOT NULL, request_sha256 TEXT NOT NULL,
    settings TEXT NOT NULL, batch_size INTEGER, provenance TEXT NOT NULL,
    payload BLOB NOT NULL, payload_sha256 TEXT NOT NULL, created REAL NOT NULL, gcgbench_version TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task, task_version);
CREATE INDEX IF NOT EXISTS entries_model ON entries (model, fingerprint_sha256);
"""
_COLUMNS = ("key", "model", "fingerprint_sha256", "task", "task_version", "doc_id", "request_sha256", "settings",
            "batch_size", "provenance", "payload", "payload_sha256", "created", "gcgbench_version")
# Insert; on a key already present, replace the row only if the stored one is corrupted.
_UPSERT = (
    f"INSERT INTO entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT(key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _COLUMNS[1:])} "
    "WHERE NOT gcgbench_entry_ok(entries.payload, entries.payload_sha256, entries.doc_id)"
)


class CacheError(GcgbenchError):
    """The cache cannot be used at all (not a database, another schema version, unwritable)."""


class CacheHits(dict):
    """`get_many`'s answer: key -> Prediction, plus how many hits each generation batch size gave
    (`batch_sizes`), so a run can record that it mixed predictions made under other batch sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: dict[int | None, int] = {}


@dataclass(frozen=True)
class CacheInfo:
    """What `gcgbench cache info` prints."""

    path: str | None
    entries: int = 0
    size_bytes: int = 0
    by_model: dict[str, int] = field(default_factory=dict)
    by_fingerprint: dict[str, int] = field(default_factory=dict)  # "name sha256[:12]" -> entries
    by_task: dict[str, int] = field(default_factory=dict)  # "task@version" -> entries
    by_batch_size: dict[int | None, int] = field(default_factory=dict)
    oldest: float | None = None  # Unix time of the oldest / newest entry
    newest: float | None = None


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/gcgbench` or `~/.cache/gcgbench`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gcgbench"


class GenerationCache:
    """The cache in directory `path` (created if missing), or in the SQLite file `path` if it names one.

    Open one instance per process (and thread); an instance carried across `fork` or pickled to a
    spawned worker opens a fresh connection there. The connection opens on first use.
    """

    enabled = True

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = BUSY_TIMEOUT_S):
        path = Path(path)
        self.db_path = path if path.suffix in {".sqlite", ".db"} or path.is_file() else path / DB_NAME
        self.busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._inherited: list[sqlite3.Connection] = []

    key = staticmethod(cache_key)
    entry = staticmethod(make_entry)

    def __getstate__(self) -> dict[str, Any]:
        return {"db_path": self.db_path, "busy_timeout": self.busy_timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["db_path"], state["busy_timeout"])

    def __enter__(self) -> "GenerationCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GenerationCache({str(self.db_path)!r})"

    # -- connection ---------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid != os.getpid():
            # Never close a connection inherited across fork (SQLite forbids it); just stop using it.
            self._inherited.append(self._connection)
            self._connection, self._pid = None, os.getpid()
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _open(self) -> sqlite3.Connection:
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise CacheError(f"cache {self.db_path}: cannot open ({error})") from None
        conn.text_factory = lambda data: data.decode("utf-8", "replace")
        conn.create_function("gcgbench_entry_ok", 3, entry_ok, deterministic=True)
        try:
            self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            conn.execute("PRAGMA synchronous=FULL")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                with self._transaction(conn):  # first open: create the schema (a no-op if a rank won the race)
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0]
        except sqlite3.Error as error:
            conn.close()
            raise CacheError(f"cache {self.db_path}: not a usable gcgbench cache ({error})") from None
        if version != str(SCHEMA_VERSION):
            conn.close()
            raise CacheError(f"cache {self.db_path} has schema version {version}; this gcgbench reads "
                             f"version {SCHEMA_VERSION}: use another --cache directory")
        return conn

    def _retry(self, action: Callable[[], Any]) -> Any:
        """Run `action`, retrying while another process holds the lock (journal-mode changes and the
        first schema creation can report SQLITE_BUSY without waiting)."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                return action()
            except sqlite3.OperationalError as error:
                busy = "locked" in str(error) or "busy" in str(error)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield
            self._retry(lambda: conn.execute("COMMIT"))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    # -- reads and writes ---------------------------------------------------------------------------
    def get_many(self, keys: Iterable[str], on_corrupt: OnCorrupt | None = None) -> CacheHits:
        """The stored predictions of those `keys` that are present and sound. Each corrupted row is
        passed to `on_corrupt` (default: one warning line) and left out, as a miss."""
        report = on_corrupt or warn_corrupt
        wanted = list(dict.fromkeys(keys))
        conn = self._conn()
        found = CacheHits()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            try:
                rows = conn.execute(
                    "SELECT key, payload, payload_sha256, doc_id, model, task, task_version, batch_size FROM entries "
                    f"WHERE key IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
            except sqlite3.Error as error:
                raise CacheError(f"cache {self.db_path}: cannot read ({error})") from None
            for key, payload, checksum, doc_id, model, task, version, batch_size in rows:
                prediction, reason = decode_entry(payload, checksum, doc_id)
                if prediction is None:
                    report(CorruptEntry(str(self.db_path), key, model, task, version, doc_id, reason or "?"))
                else:
                    found[key] = prediction
                    found.batch_sizes[batch_size] = found.batch_sizes.get(batch_size, 0) + 1
        return found

    def put_many(self, entries: Iterable[CacheEntry]) -> int:
        """Store `entries` in one transaction; returns how many rows were written. A key already
        present is left alone (another rank generated it first) unless its row is corrupted."""
        entries = list(entries)
        if not entries:
            return 0
        now = time.time()
        rows = [entry.row(now) for entry in entries]
        fingerprints = {(e.fingerprint_sha256, e.model, e.fingerprint_json) for e in entries}
        conn = self._conn()
        try:
            with self._transaction(conn):
                conn.executemany("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)", sorted(fingerprints))
                before = conn.total_changes
                conn.executemany(_UPSERT, rows)
                return conn.total_changes - before
        except sqlite3.Error as error:
            raise CacheError(f"cache {self.db_path}: cannot write ({error})") from None

    def info(self) -> CacheInfo:
        """What the cache holds; `CacheError` (one line) when its tables cannot be read (a corrupt file)."""
        try:
            return self._info()
        except sqlite3.Error as error:
            raise CacheError(f"cache {self.db_path}: not a usable gcgbench cache ({error})") from None

    def _info(self) -> CacheInfo:
        conn = self._conn()
        count, oldest, newest = conn.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM entries").fetchone()

        def grouped(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql).fetchall()

        size = sum(p.stat().st_size for p in (self.db_path, self.db_path.with_name(self.db_path.name + "-wal"))
                   if p.exists())
        return CacheInfo(
            path=str(self.db_path), entries=count, size_bytes=size,
            by_model=dict(grouped("SELECT model, COUNT(*) FROM entries GROUP BY model ORDER BY model")),
            by_fingerprint={f"{name} {sha[:12]}": n for name, sha, n in grouped(
                "SELECT model, fingerprint_sha256, COUNT(*) FROM entries GROUP BY 1, 2 ORDER BY 1, 2")},
            by_task={f"{task}@{version}": n for task, version, n in grouped(
                "SELECT task, task_version, COUNT(*) FROM entries GROUP BY 1, 2 ORDER BY 1, 2")},
            by_batch_size=dict(grouped("SELECT batch_size, COUNT(*) FROM entries GROUP BY 1 ORDER BY 1")),
            oldest=oldest, newest=newest,
        )

    def prune(self, older_than: timedelta | float | None = None, task: str | None = None,
              model: str | None = None, fingerprint: str | None = None, vacuum: bool = False) -> int:
        """Delete the entries matching every filter given: created more than `older_than` (a timedelta
        or seconds) ago, of `task` (`name` or `name@version`), of `model` (fingerprint name), of a
        fingerprint (sha256 prefix). At least one filter is required. Returns the entries deleted."""
        clauses: list[str] = []
        params: list[Any] = []
        if older_than is not None:
            seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else float(older_than)
            clauses.append("created < ?")
            params.append(time.time() - seconds)
        if task is not None:
            name, _, version = task.partition("@")
            clauses.append("task = ?")
            params.append(name)
            if version:
                clauses.append("task_version = ?")
                params.append(version)
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if fingerprint is not None:
            if not fingerprint or any(c not in "0123456789abcdef" for c in fingerprint.lower()):
                raise ValueError(f"fingerprint must be a sha256 hex prefix, got {fingerprint!r}")
            clauses.append("fingerprint_sha256 LIKE ?")
            params.append(fingerprint.lower() + "%")
        if not clauses:
            raise ValueError("prune needs at least one filter (older_than, task, model or fingerprint)")
        conn = self._conn()
        with self._transaction(conn):
            deleted = conn.execute(f"DELETE FROM entries WHERE {' AND '.join(clauses)}", params).rowcount
            conn.execute("DELETE FROM fingerprints WHERE sha256 NOT IN (SELECT fingerprint_sha256 FROM entries)")
        if vacuum:
            self._retry(lambda: conn.execute("VACUUM"))
        return deleted


class NullCache:
    """`--no-cache`: the GenerationCache interface, storing nothing and finding nothing."""

    enabled = False
    db_path = None
    key = staticmethod(cache_key)
    entry = staticmethod(make_entry)

    def get_many(self, keys: Iterable[str], on_corrupt: OnCorrupt | None = None) -> CacheHits:
        return CacheHits()

    def put_many(self, entries: Iterable[CacheEntry]) -> int:
        return 0

    def info(self) -> CacheInfo:
        return CacheInfo(path=None)

    def prune(self, older_than: timedelta | float | None = None, task: str | None = None,
              model: str | None = None, fingerprint: str | None = None, vacuum: bool = False) -> int:
        return 0

    def close(self) -> None:
        pass

    def __enter__(self) -> "NullCache":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def open_cache(path: str | os.PathLike[str] | None) -> GenerationCache | NullCache:
    """`--cache DIR` → GenerationCache(DIR); None (`--no-cache`) → NullCache()."""
    return NullCache() if path is None else GenerationCache(path)

