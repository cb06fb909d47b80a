"""What every task family shares: the spec it is bound to, its name and version, no upload file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from gcgbench.api.task import TaskSpec
from gcgbench.api.types import Doc, Prediction


@dataclass(frozen=True)
class SpecTask:
    """Base of the family classes: a task is its family's code bound to one `tasks/*.yaml` spec."""

    spec: TaskSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    def submission_files(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> dict[str, bytes]:
        """Locally scored splits have no evaluation-server upload."""
        return {}
