"""What a model backend implements, and the settings every generation runs under."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction, Request


@dataclass(frozen=True)
class GenerationSettings:
    """Run-wide settings a backend generates under; all part of the cache key and of results.json."""

    seed: int = 0
    batch_size: int = 1
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "batch_size": self.batch_size, "device": self.device}


def sample_seed(run_seed: int, doc_id: str) -> int:
    """The seed of one sample: derived from the run seed and the doc id only, so a stochastic backend
    gives the same answer for a doc whatever the batch, shard or world size."""
    digest = hashlib.sha256(f"{run_seed}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def parse_model_args(text: str | None) -> dict[str, str]:
    """`k=v,k2=v2` → {"k": "v", "k2": "v2"} (values may contain '='; keys may not repeat)."""
    args: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError("--model-args", item, "expected key=value")
        if key in args:
            raise InputError("--model-args", key, "given twice")
        args[key] = value.strip()
    return args


class Backend(Protocol):
    """A model that answers requests.

    `supported_kinds` lists the `Request.kind`s it can answer; the runner refuses other tasks up front.
    `prepare(task, docs)` is called once per task before its requests (backends that need the task's
    files, e.g. `oracle` and `replay`, read them there). `fingerprint()` identifies the model exactly
    (name, arguments, checkpoint file hashes): a changed checkpoint must change it, so cached
    generations of the old one are never reused.
    """

    name: str
    supported_kinds: frozenset[str]

    def prepare(self, task: Any, docs: Sequence[Doc]) -> None: ...

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]: ...

    def fingerprint(self) -> Mapping[str, Any]: ...
