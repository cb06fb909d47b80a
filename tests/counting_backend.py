"""A test backend: answers with the ground truth, slowly, and logs every doc it generates (one line each,
flushed at once) so tests can count generations across a killed and a resumed process."""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

from gcgbench.models.oracle import OracleBackend


class CountingBackend(OracleBackend):
    ARGS = {"log": "file to append generated doc ids to", "delay": "seconds per batch"}

    def __init__(self, log: str, delay: float):
        super().__init__(name="counting")
        self.log, self.delay = log, delay

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "CountingBackend":
        return cls(args["log"], float(args.get("delay", "0")))

    def generate(self, requests, settings):
        time.sleep(self.delay)
        answers = super().generate(requests, settings)
        with open(self.log, "a") as handle:
            handle.write("".join(f"{r.doc_id}\n" for r in requests))
            handle.flush()
            os.fsync(handle.fileno())
        return answers

    def fingerprint(self) -> Mapping[str, Any]:
        return {"name": "counting", "args": {}}
