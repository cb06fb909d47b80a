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


def files_sha256(files: Mapping[str, Any]) -> dict[str, Any]:
    """{role: hashes} for a backend's checkpoint files, by content only (no path is kept):

    a file → its sha256; a folder → `folder_sha256` ({relative path: sha256}); `(root, [files])` →
    {path relative to root: sha256} of those files that exist; None → None (the role is not used)."""
    out: dict[str, Any] = {}
    for role, value in files.items():
        if value is None:
            out[role] = None
        elif isinstance(value, tuple):
            root, listed = Path(value[0]), value[1]
            out[role] = {str(Path(p).relative_to(root)): cached_sha256(Path(p)) for p in listed if Path(p).is_file()}
        elif Path(value).is_dir():
            out[role] = folder_sha256(Path(value))
        else:
            out[role] = cached_sha256(Path(value))
    return out


def backend_fingerprint(name: str, options: Any, files: Mapping[str, Any], protocols: Any = None,
                        **extra: Any) -> dict[str, Any]:
    """The one fingerprint every backend gives (docs/cache.md): its name, its typed options without the
    paths (`BackendOptions.fingerprint_args`; the `protocol` option replaced by the protocol each request
    kind runs under, `ProtocolTable.resolved`), the sha256 of its checkpoint files (`files_sha256`), and `extra` facts that change
    answers (an implementation version, the conversation template...). Moving a checkpoint folder keeps
    the fingerprint; changing a byte of it, an option or a protocol changes it."""
    args = {k: v for k, v in options.fingerprint_args().items() if k != "protocol"}
    fingerprint = {"name": name, "args": args, "files_sha256": files_sha256(files), **extra}
    if protocols is not None:
        fingerprint["protocols"] = protocols.resolved(getattr(options, "protocol", None) or None)
    return fingerprint
