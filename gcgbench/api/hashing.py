"""Hashes that identify things: canonical JSON, fingerprints, files and folders of checkpoints.

One spelling of JSON (keys sorted, no spaces) is hashed everywhere a dict must hash the same on every
machine: backend fingerprints in the generation cache and in leaderboard entries. File hashes of large
checkpoints are cached by (resolved path, size, mtime) in `~/.cache/gcgbench/file-sha256.json`, so a
fingerprint costs a full read only the first time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping


def canonical_json(obj: Any) -> str:
    """The one JSON spelling that is hashed and stored: keys sorted, no spaces."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def text_sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def fingerprint_sha256(fingerprint: Mapping[str, Any]) -> str:
    """sha256 of a backend fingerprint's canonical JSON."""
    return text_sha256(canonical_json(dict(fingerprint)))


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (no caching: annotation files change in place)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gcgbench" / "file-sha256.json"


_MEMORY: dict[str, str] = {}


def cached_sha256(path: Path) -> str:
    """sha256 of a file, cached by (resolved path, size, mtime_ns) in memory and in the user cache folder."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    if key in _MEMORY:
        return _MEMORY[key]
    cache_file = _hash_cache_path()
    try:
        stored = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        stored = {}
    if not isinstance(stored, dict):
        stored = {}
    if key not in stored:
        stored[key] = file_sha256(path)
        _write_atomic(cache_file, json.dumps(stored, indent=0, sort_keys=True))
    _MEMORY[key] = stored[key]
    return stored[key]


def _write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, staging = tempfile.mkstemp(prefix=".file-sha256.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(staging, path)
    except OSError:
        pass  # a read-only cache folder only costs re-hashing next time


def folder_sha256(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` (names starting with '.' skipped)."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    return {str(p.relative_to(folder)): cached_sha256(p) for p in files}
