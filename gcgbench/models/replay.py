"""`replay`: predictions made elsewhere, served through the normal runner path.

`--model-args predictions=PATH` names a gcgbench predictions JSONL, a run directory (its
`predictions/<task>.jsonl`), or the task family's upstream layout (GLaMM per-image folder for GCG).
The fingerprint hashes the files read, so replaying changed predictions never hits a stale cache.

The file may cover more docs than the run asks for (`--limit`, or a torchrun rank's share): predictions of
other docs are skipped; every doc asked for still needs exactly one (data/predictions.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.protocols import single_protocol_table
from gcgbench.api.types import Doc, Prediction, Request
from gcgbench.data.predictions import predictions_beyond_docs
from gcgbench.models.oracle import ALL_KINDS


@dataclass
class ReplayBackend:
    predictions_path: Path
    name: str = "replay"
    supported_kinds: frozenset[str] = ALL_KINDS
    _answers: dict[str, Prediction] = field(default_factory=dict)

    ARGS = {"predictions": "a predictions JSONL, a run directory, or a GLaMM per-image folder (required)"}
    PROTOCOLS = single_protocol_table("replay", sorted(ALL_KINDS), "gcgbench", "the stored predictions, unchanged")

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "ReplayBackend":
        if "predictions" not in args:
            raise InputError("--model-args", None, "replay needs predictions=PATH")
        path = Path(args["predictions"]).expanduser()
        if not path.exists():
            raise InputError("--model-args", "predictions", f"{path}: not found (a predictions JSONL, a run directory "
                                                            "or a GLaMM per-image folder)")
        return cls(path)

    def prepare(self, task: Any, docs: Sequence[Doc]) -> None:
        with predictions_beyond_docs():
            self._answers = dict(task.read_predictions(self.predictions_path, docs))

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        return [self._answers[request.doc_id] for request in requests]

    def fingerprint(self) -> Mapping[str, Any]:
        return {"name": self.name, "args": {"predictions": str(self.predictions_path)},
                "content_sha256": _tree_sha256(self.predictions_path)}


def _tree_sha256(path: Path) -> str | None:
    """sha256 over the relative names and bytes of every file under `path` (or of the file itself)."""
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()
