"""Reproduction cards: one YAML file per reported leaderboard number we can run (`leaderboards/cards/*.yaml`).

A card says how to re-measure a published (or, for the embedded tiny models, a recorded) leaderboard entry with
gcgbench: which backend, which checkpoint files under `--weights` (with sha256 where known), the `--model-args`
(a template: `{weights}` is replaced by the weights folder), the generation protocol (passed to the backend as
`protocol=NAME`; null = the backend's default), the scoring protocol (`--protocol`; null = the task's default),
the tasks, the numbers the leaderboard holds, and a tolerance per metric. docs/reproduction.md lists them all.

Schema (`card_version: 1`; unknown keys are refused, every error is one line naming the file and the field):

    card_version: 1
    title: str                       # one line, shown by `gcgbench reproduce --list`
    backend: str                     # a `gcgbench models` name
    weights: required | package      # package: the checkpoints shipped in gcgbench (`--weights` optional)
    data: real | sample              # real: `--data-root` required; sample: the bundled synthetic sample
    checkpoints:                     # what must exist under --weights before any model loads
      - name: str                    # where to get it (hub id, file name, URL)
        path: str                    # folder or file under --weights
        files: [str]                 # under `path` (a folder); globs ("model-*.safetensors") and
                                     # alternatives ("model.safetensors | pytorch_model.bin") allowed
        sha256: {file: hex | null}   # exact file names only; null where unknown
        note: str                    # optional: why a sha256 is unknown, how to fetch
    model_args: {key: str}           # values may use {weights}; no commas (they travel as --model-args)
    generation_protocol: str | null
    scoring_protocol: str | null
    text_model: str | null           # optional: --text-model (GCG mask recall), may use {weights}
    tasks: [task]
    batch_size: int                  # optional, default 1
    leaderboard: {model: str, source: reported | measured, protocol: str}
    reported: {task: {metric: number}}   # exactly the leaderboard entry's values (tests check it)
    tolerance: {metric: number}          # |measured − reported| ≤ tolerance passes
    citation: str | null
    resources: str                   # optional: memory/time estimate
    notes: [str]                     # optional: divergences still left, unconfirmed numbers
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.leaderboard.entry import SOURCES
from gcgbench.leaderboard.files import DEFAULT_DIRECTORY, Leaderboard
from gcgbench.tasks.registry import task_names

CARD_VERSION = 1
DEFAULT_CARDS = DEFAULT_DIRECTORY / "cards"
REQUIRED = ("card_version", "title", "backend", "weights", "data", "checkpoints", "model_args", "generation_protocol",
            "scoring_protocol", "tasks", "leaderboard", "reported", "tolerance", "citation")
OPTIONAL = ("text_model", "batch_size", "resources", "notes")
CHECKPOINT_KEYS = ("name", "path", "files", "sha256", "note")
PLACEHOLDERS = {"weights"}
HEX64 = re.compile(r"^[0-9a-f]{64}$")
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    path: str
    files: tuple[str, ...]
    sha256: dict[str, str | None]
    note: str | None = None


@dataclass(frozen=True)
class Card:
    """A validated reproduction card (see the module docstring for the fields)."""

    name: str
    source: Path
    title: str
    backend: str
    weights: str
    data: str
    checkpoints: tuple[Checkpoint, ...]
    model_args: dict[str, str]
    generation_protocol: str | None
    scoring_protocol: str | None
    tasks: tuple[str, ...]
    leaderboard: dict[str, str]
    reported: dict[str, dict[str, float]]
    tolerance: dict[str, float]
    citation: str | None
    text_model: str | None = None
    batch_size: int = 1
    resources: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def resolved_model_args(self, weights: Path) -> dict[str, str]:
        """The model args with `{weights}` filled in, plus `protocol=` when the card names a generation protocol."""
        args = {key: fill(value, weights) for key, value in self.model_args.items()}
        if self.generation_protocol is not None:
            args["protocol"] = self.generation_protocol
        return args

    def resolved_text_model(self, weights: Path) -> str | None:
        return None if self.text_model is None else fill(self.text_model, weights)


def fill(template: str, weights: Path) -> str:
    return template.replace("{weights}", str(weights))


def card_path(name_or_path: str, directory: Path = DEFAULT_CARDS) -> Path:
    """A card by name (`leaderboards/cards/NAME.yaml`) or by its file path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.is_file():
            raise InputError(candidate, None, "card file not found")
        return candidate
    path = Path(directory) / f"{name_or_path}.yaml"
    if not path.is_file():
        folder = Path(directory)
        known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml"))) if folder.is_dir() else "none"
        raise InputError(name_or_path, None, f"no reproduction card of that name in {directory}/ (known: {known})")
    return path


def load_card(path: Path) -> Card:
    """Read and validate one card; any problem raises InputError (file: field: problem)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise InputError(path, None, f"not readable YAML: {str(error).splitlines()[0]}") from None
    return parse_card(raw, path)


def load_cards(directory: Path = DEFAULT_CARDS) -> list[Card]:
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, None, "reproduction card folder not found")
    return [load_card(path) for path in sorted(directory.glob("*.yaml"))]


def parse_card(raw: Any, source: Path) -> Card:
    if not isinstance(raw, Mapping):
        raise InputError(source, None, "a card must be a YAML mapping")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise InputError(source, unknown[0], f"unknown key (card_version {CARD_VERSION} knows "
                                             f"{', '.join(REQUIRED + OPTIONAL)})")
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise InputError(source, missing[0], "required field missing")
    if raw["card_version"] != CARD_VERSION:
        raise InputError(source, "card_version", f"must be {CARD_VERSION}, got {raw['card_version']!r}")
    for key in ("title", "backend"):
        _text(raw[key], source, key)
    _choice(raw["weights"], ("required", "package"), source, "weights")
    _choice(raw["data"], ("real", "sample"), source, "data")
    checkpoints = _checkpoints(raw["checkpoints"], source)
    model_args = _model_args(raw["model_args"], source)
    for key in ("generation_protocol", "scoring_protocol", "citation"):
        if raw[key] is not None:
            _text(raw[key], source, key)
    tasks = _tasks(raw["tasks"], source)
    board = _leaderboard(raw["leaderboard"], source)
    reported = _reported(raw["reported"], tasks, source)
    tolerance = _tolerance(raw["tolerance"], reported, source)
    if board["source"] == "reported" and not raw["citation"]:
        raise InputError(source, "citation", "a card for a reported number needs its citation")
    text_model = raw.get("text_model")
    if text_model is not None:
        _text(text_model, source, "text_model")
        _placeholders(text_model, source, "text_model")
    batch_size = raw.get("batch_size", 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(source, "batch_size", f"must be a positive integer, got {batch_size!r}")
    if raw.get("resources") is not None:
        _text(raw["resources"], source, "resources")
    notes = raw.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) and n for n in notes):
        raise InputError(source, "notes", "must be a list of non-empty strings")
    return Card(name=Path(source).stem, source=Path(source), title=raw["title"], backend=raw["backend"],
                weights=raw["weights"], data=raw["data"], checkpoints=checkpoints, model_args=model_args,
                generation_protocol=raw["generation_protocol"], scoring_protocol=raw["scoring_protocol"], tasks=tasks,
                leaderboard=board, reported=reported, tolerance=tolerance, citation=raw["citation"],
                text_model=text_model, batch_size=batch_size, resources=raw.get("resources"), notes=tuple(notes))


def _text(value: Any, source: Path, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(source, where, f"must be a non-empty string, got {value!r}")
    return value


def _choice(value: Any, allowed: Sequence[str], source: Path, where: str) -> None:
    if value not in allowed:
        raise InputError(source, where, f"must be one of {', '.join(allowed)}, got {value!r}")


def _number(value: Any, source: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(source, where, f"must be a number, got {value!r}")
    return float(value)


def _placeholders(template: str, source: Path, where: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise InputError(source, where, f"malformed placeholder: {error}") from None
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        raise InputError(source, where, f"unknown placeholder {{{unknown[0]}}} (only {{weights}} is filled in)")


def _relative(value: Any, source: Path, where: str) -> str:
    text = _text(value, source, where)
    for part in alternatives(text):
        if not part or Path(part).is_absolute() or ".." in Path(part).parts:
            raise InputError(source, where, f"must be a path relative to --weights without '..', got {text!r}")
    return text


def alternatives(entry: str) -> list[str]:
    """`"a | b"` → ["a", "b"]: a file entry is present when any alternative is."""
    return [part.strip() for part in entry.split("|")]


def _checkpoints(value: Any, source: Path) -> tuple[Checkpoint, ...]:
    if not isinstance(value, list):
        raise InputError(source, "checkpoints", "must be a list (empty for none)")
    result = []
    for index, item in enumerate(value):
        where = f"checkpoints[{index}]"
        if not isinstance(item, Mapping):
            raise InputError(source, where, "must be a mapping with name, path, files, sha256")
        unknown = sorted(set(item) - set(CHECKPOINT_KEYS))
        if unknown:
            raise InputError(source, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(CHECKPOINT_KEYS)})")
        for key in ("name", "path", "files", "sha256"):
            if key not in item:
                raise InputError(source, f"{where}.{key}", "required field missing")
        name = _text(item["name"], source, f"{where}.name")
        path = _relative(item["path"], source, f"{where}.path")
        files = item["files"]
        if not isinstance(files, list):
            raise InputError(source, f"{where}.files", "must be a list of file names (empty: `path` is the file)")
        files = tuple(_relative(f, source, f"{where}.files[{i}]") for i, f in enumerate(files))
        hashes = item["sha256"]
        if not isinstance(hashes, Mapping):
            raise InputError(source, f"{where}.sha256", "must map file names to a sha256 hex digest or null")
        for file, digest in hashes.items():
            if file not in files and not (file == "." and not files):
                raise InputError(source, f"{where}.sha256.{file}", "names no file of 'files' ('.' for a single file)")
            if GLOB_CHARS & set(str(file)) or "|" in str(file):
                raise InputError(source, f"{where}.sha256.{file}", "a glob pattern or alternative cannot have a sha256")
            if digest is not None and not (isinstance(digest, str) and HEX64.match(digest)):
                raise InputError(source, f"{where}.sha256.{file}",
                                 f"must be 64 lowercase hex digits or null, got {digest!r}")
        note = item.get("note")
        if note is not None:
            _text(note, source, f"{where}.note")
        result.append(Checkpoint(name, path, files, dict(hashes), note))
    return tuple(result)


def _model_args(value: Any, source: Path) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InputError(source, "model_args", "must map argument names to string values")
    args = {}
    for key, template in value.items():
        where = f"model_args.{key}"
        if not isinstance(key, str) or not key or "=" in key or "," in key:
            raise InputError(source, where, "argument names are non-empty and hold no '=' or ','")
        if key == "protocol":
            raise InputError(source, where, "set the generation protocol with 'generation_protocol', not model_args")
        if not isinstance(template, str):
            raise InputError(source, where, f"must be a string (quote numbers), got {template!r}")
        if "," in template:
            raise InputError(source, where, "values cannot hold ',' (model args travel as k=v,k2=v2)")
        _placeholders(template, source, where)
        args[key] = template
    return args


def _tasks(value: Any, source: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InputError(source, "tasks", "must be a non-empty list of task names")
    known = set(task_names())
    for index, task in enumerate(value):
        if task not in known:
            raise InputError(source, f"tasks[{index}]", f"unknown task {task!r} (see `gcgbench tasks`)")
    if len(set(value)) != len(value):
        raise InputError(source, "tasks", "a task is listed twice")
    return tuple(value)


def _leaderboard(value: Any, source: Path) -> dict[str, str]:
    if not isinstance(value, Mapping) or set(value) != {"model", "source", "protocol"}:
        raise InputError(source, "leaderboard", "must be a mapping of exactly model, source, protocol")
    for key in ("model", "protocol"):
        _text(value[key], source, f"leaderboard.{key}")
    _choice(value["source"], SOURCES, source, "leaderboard.source")
    return dict(value)


def _reported(value: Any, tasks: Sequence[str], source: Path) -> dict[str, dict[str, float]]:
    if not isinstance(value, Mapping) or not value:
        raise InputError(source, "reported", "must map each task to its reported {metric: value}")
    result = {}
    for task, metrics in value.items():
        if task not in tasks:
            raise InputError(source, f"reported.{task}", "not one of the card's tasks")
        if not isinstance(metrics, Mapping) or not metrics:
            raise InputError(source, f"reported.{task}", "must be a non-empty {metric: value} mapping")
        result[task] = {str(m): _number(v, source, f"reported.{task}.{m}") for m, v in metrics.items()}
    return result


def _tolerance(value: Any, reported: Mapping[str, Mapping[str, float]], source: Path) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise InputError(source, "tolerance", "must map metric names to non-negative numbers")
    result = {}
    for metric, tolerance in value.items():
        number = _number(tolerance, source, f"tolerance.{metric}")
        if number < 0:
            raise InputError(source, f"tolerance.{metric}", f"must be ≥ 0, got {tolerance!r}")
        result[str(metric)] = number
    for task, metrics in reported.items():
        for metric in metrics:
            if metric not in result:
                raise InputError(source, f"tolerance.{metric}", f"missing (reported for {task})")
    return result


def leaderboard_mismatches(card: Card, boards: Sequence[Leaderboard], slack: float = 1e-9) -> list[str]:
    """Where the card's reported numbers differ from its leaderboard entries (one line each; [] = agree).

    The entry is the one of (leaderboard.model, task, leaderboard.protocol, leaderboard.source) at the
    highest task version present; every reported metric must equal the entry's value within `slack`."""
    lines = []
    for task, metrics in card.reported.items():
        slot = (card.leaderboard["model"], task, card.leaderboard["protocol"], card.leaderboard["source"])
        found = [e for b in boards for e in b.entries if (e.model, e.task, e.protocol, e.source) == slot]
        if not found:
            lines.append(f"{card.name}: no {card.leaderboard['source']} leaderboard entry for "
                         f"{card.leaderboard['model']!r} on {task} ({card.leaderboard['protocol']})")
            continue
        entry = max(found, key=lambda e: e.task_version)
        for metric, value in metrics.items():
            held = entry.metrics.get(metric)
            if held is None or abs(held - value) > slack:
                lines.append(f"{card.name}: {task} {metric} is {value} in the card, {held} in the leaderboard")
    return lines
