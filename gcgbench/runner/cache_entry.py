"""Generation cache entries: the key, the entry to store, and the check that a stored row is sound (docs/cache.md).

`cache_key` is the sha256 of everything that can change an answer (backend fingerprint, task@version, doc,
request content hash, keyed settings); `make_entry` turns a prediction into a `CacheEntry`, its row in the
clear. A row whose payload fails its checksum or decoding is a `CorruptEntry`: reported (`warn_corrupt` by
default) and treated as a miss. The SQLite store that holds the entries is `store.py`. Stdlib only.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from gcgbench import __version__
from gcgbench.api.backend import GenerationSettings
from gcgbench.api.hashing import canonical_json, fingerprint_sha256, text_sha256
from gcgbench.api.types import Prediction, Request

SCHEMA_VERSION = 1  # of the key format and of the database (docs/cache.md): a new one never collides
UNKEYED_SETTINGS = frozenset({"batch_size"})  # recorded per entry, not keyed: see docs/cache.md


class CacheCorruptionWarning(UserWarning):
    """A cache row failed its checksum or could not be decoded; it was treated as a miss."""


def keyed_settings(settings: GenerationSettings) -> dict[str, Any]:
    """The settings in the key: all of `settings.to_json()` but UNKEYED_SETTINGS (a deny-list, so a
    new field is keyed by default), the device reduced to its type (ranks use cuda:0..cuda:N)."""
    values = {name: value for name, value in settings.to_json().items() if name not in UNKEYED_SETTINGS}
    if isinstance(values.get("device"), str):
        values["device"] = values["device"].split(":", 1)[0]
    return values


def cache_key(fingerprint: Mapping[str, Any], task: str, version: str, request: Request,
              settings: GenerationSettings) -> str:
    """sha256 over the canonical JSON of everything that can change the answer (docs/cache.md)."""
    return text_sha256(canonical_json({
        "schema": SCHEMA_VERSION, "fingerprint": fingerprint_sha256(fingerprint), "task": task,
        "version": version, "doc": request.doc_id, "request": request.content_hash(),
        "settings": keyed_settings(settings),
    }))


@dataclass(frozen=True)
class CacheEntry:
    """One prediction ready to store, with its key components in the clear."""

    key: str
    prediction: Prediction
    model: str
    fingerprint_json: str
    fingerprint_sha256: str
    task: str
    task_version: str
    doc_id: str
    request_sha256: str
    settings_json: str
    batch_size: int | None
    provenance_json: str = "{}"

    def row(self, created: float) -> tuple[Any, ...]:
        payload = canonical_json(self.prediction.to_json()).encode("ascii")
        return (self.key, self.model, self.fingerprint_sha256, self.task, self.task_version, self.doc_id,
                self.request_sha256, self.settings_json, self.batch_size, self.provenance_json, payload,
                text_sha256(payload), created, __version__)


def make_entry(fingerprint: Mapping[str, Any], task: str, version: str, request: Request,
               settings: GenerationSettings, prediction: Prediction,
               provenance: Mapping[str, Any] | None = None) -> CacheEntry:
    """The entry for `prediction`, the backend's answer to `request`; `provenance` (world size, rank,
    GPU name...) is recorded but not keyed."""
    if prediction.doc_id != request.doc_id:
        raise ValueError(f"prediction for doc {prediction.doc_id!r} cannot be cached as the answer to {request.doc_id!r}")
    fingerprint_json = canonical_json(dict(fingerprint))
    return CacheEntry(
        key=cache_key(fingerprint, task, version, request, settings), prediction=prediction,
        model=str(fingerprint.get("name", "?")), fingerprint_json=fingerprint_json,
        fingerprint_sha256=text_sha256(fingerprint_json), task=task, task_version=version, doc_id=request.doc_id,
        request_sha256=request.content_hash(), settings_json=canonical_json(keyed_settings(settings)),
        batch_size=settings.batch_size, provenance_json=canonical_json(dict(provenance or {})),
    )


@dataclass(frozen=True)
class CorruptEntry:
    """A row that failed its checksum or decoding; reported, then treated as a miss."""

    path: str
    key: str
    model: str
    task: str
    task_version: str
    doc_id: str
    reason: str

    def message(self) -> str:
        return (f"cache {self.path}: corrupted entry {self.key} ({self.model}, {self.task}@{self.task_version}, "
                f"doc {self.doc_id!r}): {self.reason}; treated as a miss and regenerated")


OnCorrupt = Callable[[CorruptEntry], None]


def warn_corrupt(entry: CorruptEntry) -> None:
    """The default report of a corrupted row: one warning line."""
    warnings.warn(entry.message(), CacheCorruptionWarning, stacklevel=3)


def decode_entry(payload: Any, checksum: Any, doc_id: Any) -> tuple[Prediction | None, str | None]:
    """(prediction, None) for a sound row, (None, why) for a corrupted one; never raises."""
    try:
        data = payload if isinstance(payload, bytes) else str(payload).encode("utf-8", "surrogateescape")
        if text_sha256(data) != checksum:
            return None, "payload checksum mismatch"
        prediction = Prediction.from_json(json.loads(data.decode("utf-8")))
    except Exception as error:  # noqa: BLE001 - any failure to decode is corruption, by definition
        return None, f"undecodable payload ({type(error).__name__}: {str(error)[:200]})"
    if prediction.doc_id != doc_id:
        return None, f"payload answers doc {prediction.doc_id!r}"
    return prediction, None


def entry_ok(payload: Any, checksum: Any, doc_id: Any) -> int:
    """1 for a sound row, 0 for a corrupted one (the SQL function `gcgbench_entry_ok` of the store)."""
    return int(decode_entry(payload, checksum, doc_id)[0] is not None)
