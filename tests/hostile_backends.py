"""Backends that misbehave, for tests/test_hostile_input.py."""

from __future__ import annotations

import dataclasses

from gcgbench.models.oracle import OracleBackend


class NanBackend(OracleBackend):
    """The oracle's answers with a NaN in `extras`: not JSON, so the runner must refuse it."""

    def generate(self, requests, settings):
        return [dataclasses.replace(answer, extras={"peak": float("nan")})
                for answer in super().generate(requests, settings)]
