"""A test backend with typed options and a protocol table: answers with the ground truth, and stamps the
protocol each request ran under into the prediction's extras."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from gcgbench.api.hashing import backend_fingerprint
from gcgbench.api.options import BackendOptions, option
from gcgbench.api.protocols import GenerationProtocol, ProtocolTable
from gcgbench.models.oracle import OracleBackend

CONSTRUCTED: list[str] = []


@dataclass(frozen=True)
class ProtocolOptions(BackendOptions):
    protocol: str = option("generation protocol (default: each kind's)", "")
    max_new_tokens: int = option("generation length", 4, minimum=1)


class ProtocolBackend(OracleBackend):
    Options = ProtocolOptions
    PROTOCOLS = ProtocolTable(
        (GenerationProtocol("first", ("grounded_caption", "segment"), "owner/repo:eval.py", "the official one"),
         GenerationProtocol("second", ("grounded_caption",), "gcgbench", "ours")),
        {"grounded_caption": "first", "segment": "first"})
    ARGS = {info.name: info.help for info in ProtocolOptions.describe()}

    def __init__(self, options: ProtocolOptions):
        super().__init__(name="protocols")
        self.options = options
        CONSTRUCTED.append(options.protocol)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "ProtocolBackend":
        return cls(ProtocolOptions.parse(args, "protocols"))

    def generate(self, requests, settings):
        answers = super().generate(requests, settings)
        for request, answer in zip(requests, answers):
            answer.extras["protocol"] = self.PROTOCOLS.resolve(request.kind, self.options.protocol or None)
        return answers

    def fingerprint(self) -> Mapping[str, Any]:
        return backend_fingerprint(self.name, self.options, {}, self.PROTOCOLS)
