"""`oracle`: answers every request with the task's ground truth. A perfect score through the whole
runner path proves the readers, requests, prediction store and metrics agree with each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.protocols import single_protocol_table
from gcgbench.api.types import Doc, Prediction, Request

ALL_KINDS = frozenset({"grounded_caption", "segment", "segment_phrases", "segment_categories", "caption", "answer"})


@dataclass
class OracleBackend:
    name: str = "oracle"
    supported_kinds: frozenset[str] = ALL_KINDS
    _answers: dict[str, Prediction] = field(default_factory=dict)

    ARGS = {}
    PROTOCOLS = single_protocol_table("ground-truth", sorted(ALL_KINDS), "gcgbench", "the task's ground truth")

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "OracleBackend":
        return cls()

    def prepare(self, task: Any, docs: Sequence[Doc]) -> None:
        self._answers = {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        return [self._answers[request.doc_id] for request in requests]

    def fingerprint(self) -> Mapping[str, Any]:
        return {"name": self.name, "args": {}}
