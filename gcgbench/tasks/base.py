"""What every task family shares: the spec it is bound to, its name and version, its request kind, no
scoring protocol and no upload file unless the family says otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

from gcgbench.api.task import TaskSpec
from gcgbench.api.types import Doc, Prediction


@dataclass(frozen=True)
class SpecTask:
    """Base of the family classes: a task is its family's code bound to one `tasks/*.yaml` spec."""

    spec: TaskSpec
    request_kind: ClassVar[str] = ""    # the `Request.kind` of every request of the family

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        """The names `--protocol` may take for this task (none: the family has one way of scoring)."""
        return ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    def submission_files(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> dict[str, bytes]:
        """Locally scored splits have no evaluation-server upload."""
        return {}
