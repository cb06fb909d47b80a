"""One leaderboard entry and THE schema it is read and written with (docs/leaderboards.md, "Entry").

`Entry.from_json` validates a JSON object as an entry: `files.load` reads every entry of a file through it,
`from_results.entries_from_results` builds each new entry as that JSON object and reads it back through it, and
`files.save` checks every entry with it before writing. One schema, so `add` never writes what `load` refuses.
Metric values are fractions; `metric_range` says where each metric may lie (CIDEr and MME's points differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, NoReturn

from gcgbench.api.errors import InputError
from gcgbench.api.hashing import fingerprint_sha256

SCHEMA_VERSION = 1
SOURCES = ("measured", "reported")
SCALE = "fraction"
ENTRY_KEYS = ("model", "task", "task_version", "protocol", "source", "fingerprint", "fingerprint_sha256", "scale",
              "metrics", "intervals", "n", "harness_version", "git_hash", "date", "added", "citation",
              "metric_config", "notes")


@dataclass(frozen=True)
class Entry:
    """One leaderboard row for one task: a model's metric values under one task version and protocol.

    `metrics` are fractions (`scale` is always "fraction": 47.2 in a paper is 0.472 here; CIDEr 142 is
    1.42). `intervals[metric]` is results.json's interval object; empty for reported numbers.
    `fingerprint` identifies the model build (the backend fingerprint of a run; for a reported number,
    its name and citation). `date` is when the numbers were made (run time or publication), `added`
    when the entry entered the file.
    """

    model: str
    task: str
    task_version: str
    protocol: str
    source: str
    metrics: dict[str, float]
    fingerprint: dict[str, Any]
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    n: int | None = None
    harness_version: str | None = None
    git_hash: str | None = None
    date: str | None = None
    added: str | None = None
    citation: str | None = None
    metric_config: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def slot(self) -> tuple[str, str, str, str, str]:
        """What one entry per file may occupy: (model, task, task_version, protocol, source)."""
        return (self.model, self.task, self.task_version, self.protocol, self.source)

    @property
    def fingerprint_sha256(self) -> str:
        return fingerprint_sha256(self.fingerprint)

    @property
    def task_at_version(self) -> str:
        return f"{self.task}@{self.task_version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "task": self.task, "task_version": self.task_version, "protocol": self.protocol,
            "source": self.source, "fingerprint": self.fingerprint, "fingerprint_sha256": self.fingerprint_sha256,
            "scale": SCALE, "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "intervals": self.intervals, "n": self.n, "harness_version": self.harness_version,
            "git_hash": self.git_hash, "date": self.date, "added": self.added, "citation": self.citation,
            "metric_config": self.metric_config, "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, obj: Any, source: object, record: str, names: Mapping[str, str] | None = None) -> "Entry":
        """Validate and read one entry; anything unexpected raises InputError naming file and entry.

        This is THE entry schema: `leaderboard add` builds the JSON object of each new entry and reads it
        back through here before anything is written (`from_results.entries_from_results`), so a file
        `add` wrote is always one `load` reads. `names` says where a key came from when the object was
        built from another file (e.g. {"n": "n_samples.gcg_val"}), so messages name what the user wrote.
        """
        where = _Where(source, record, names or {})
        if not isinstance(obj, Mapping):
            raise InputError(source, record, "an entry must be an object")
        unknown = sorted(set(obj) - set(ENTRY_KEYS))
        if unknown:
            raise InputError(source, record, f"unknown key(s) {', '.join(map(_show, unknown))} (schema {SCHEMA_VERSION})")
        for key in ("model", "task", "task_version", "protocol", "source"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                where.fail(key, f"must be a non-empty string, got {_show(obj.get(key))}")
            if not obj[key].isprintable():
                where.fail(key, f"must be one line of printable text, got {_show(obj[key])}")
        if obj["source"] not in SOURCES:
            where.fail("source", f"must be one of {', '.join(SOURCES)}, got {obj['source']!r}")
        if obj.get("scale") != SCALE:
            raise InputError(source, record, f"'scale' must be {SCALE!r} (values as fractions), got {obj.get('scale')!r}")
        for key in ("citation", "harness_version", "git_hash", "date", "added"):
            value = obj.get(key)
            if value is not None and (not isinstance(value, str) or not value.isprintable()):
                where.fail(key, f"must be one line of text or null, got {_show(value)}")
        if obj["source"] == "reported" and not obj.get("citation"):
            raise InputError(source, record, "a reported entry needs a 'citation'")
        fingerprint = obj.get("fingerprint")
        if not isinstance(fingerprint, Mapping):
            where.fail("fingerprint", f"must be an object, got {_show(fingerprint)}")
        if not _all_finite(fingerprint):
            where.fail("fingerprint", "must hold no NaN or infinite number (a file cannot store them)")
        metric_config = obj.get("metric_config")
        if metric_config is None:
            metric_config = {}
        if not isinstance(metric_config, Mapping):
            where.fail("metric_config", f"must be an object, got {_show(metric_config)}")
        metrics = obj.get("metrics")
        if not isinstance(metrics, Mapping) or not metrics:
            where.fail("metrics", f"must be a non-empty object of metric values, got {_show(metrics)}")
        values: dict[str, float] = {}
        for name, value in metrics.items():
            if not isinstance(name, str) or not name or not name.isprintable():
                where.fail("metrics", f"metric names must be one line of text, got {_show(name)}")
            if value is None:
                values[name] = float("nan")
                continue
            low, high = metric_range(name, metric_config)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                where.fail("metrics", f"must be a number or null, got {_show(value)}", name)
            if not math.isfinite(value):
                where.fail("metrics", f"must be finite (null where undefined), got {value!r}", name)
            if not low <= value <= high:
                scale = "points" if high > CIDER_MAX else "a fraction"
                where.fail("metrics", f"must lie in [{low:g}, {high:g}] ({scale}: 47.2 in a paper is 0.472 here), "
                                      f"got {value!r}", name)
            values[name] = float(value)
        intervals = obj.get("intervals")
        if intervals is None:
            intervals = {}
        if not isinstance(intervals, Mapping):
            where.fail("intervals", f"must map metric names to interval objects, got {_show(intervals)}")
        for name, interval in intervals.items():
            if not isinstance(interval, Mapping):
                where.fail("intervals", f"must be an interval object {{low, high, ...}}, got {_show(interval)}", name)
            bounds = [interval.get("low"), interval.get("high")]
            for bound, value in zip(("low", "high"), bounds):
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value)):
                    where.fail("intervals", f"{bound!r} must be a finite number or null, got {_show(value)}", name)
            if None not in bounds and bounds[0] > bounds[1]:
                where.fail("intervals", f"'low' {bounds[0]!r} is above 'high' {bounds[1]!r}", name)
        n = obj.get("n")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            where.fail("n", f"must be a non-negative integer or null, got {_show(n)}")
        notes = obj.get("notes")
        if notes is None:
            notes = []
        if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
            where.fail("notes", f"must be a list of strings, got {_show(notes)}")
        entry = cls(
            model=obj["model"], task=obj["task"], task_version=obj["task_version"], protocol=obj["protocol"],
            source=obj["source"], metrics=values, fingerprint=dict(fingerprint),
            intervals={k: dict(v) for k, v in intervals.items()}, n=n,
            harness_version=obj.get("harness_version"), git_hash=obj.get("git_hash"), date=obj.get("date"),
            added=obj.get("added"), citation=obj.get("citation"), metric_config=dict(metric_config),
            notes=tuple(notes),
        )
        stored = obj.get("fingerprint_sha256")
        if stored is not None and stored != entry.fingerprint_sha256:
            raise InputError(source, record, "'fingerprint_sha256' does not match 'fingerprint' (edited by hand?)")
        return entry


# Where a metric's values may lie. Metrics are fractions in [0, 1] (results.json's scale), except:
# - CIDEr(-D): 10 × the mean over n = 1..4 of clipped, length-penalised tf-idf cosine similarities, each at most
#   1, averaged over references (pycocoevalcap cider/cider_scorer.py:133-178, `score_avg *= 10.0`): [0, 10];
# - MME's point-scale metrics (a task whose metric_config has `points_metrics`, gcgbench/tasks/vqa.py):
#   `<subtask>_score` = 100·acc + 100·acc+ in [0, 200], `perception` (10 subtasks) in [0, 2000],
#   `cognition` (4 subtasks) in [0, 800] (MME eval_tool/calculation.py).
FRACTION_RANGE = (0.0, 1.0)
CIDER_MAX = 10.0
MME_POINTS_MAX = {"perception": 2000.0, "cognition": 800.0}
MME_SUBTASK_MAX = 200.0


def metric_range(name: str, metric_config: Mapping[str, Any]) -> tuple[float, float]:
    """(lowest, highest) value metric `name` can take, given its task's metric_config (module comment above)."""
    if "points_metrics" in metric_config:
        if name in MME_POINTS_MAX:
            return 0.0, MME_POINTS_MAX[name]
        if name.endswith("_score"):
            return 0.0, MME_SUBTASK_MAX
    if name == "cider":
        return 0.0, CIDER_MAX
    return FRACTION_RANGE


def is_points_metric(name: str, metric_config: Mapping[str, Any]) -> bool:
    """Printed as it is (MME points), not ×100 like a fraction."""
    return metric_range(name, metric_config)[1] > CIDER_MAX


@dataclass(frozen=True)
class _Where:
    """Where a key of an entry came from, for messages: the entry's own key, or the file key it was built from."""

    source: object
    record: str
    names: Mapping[str, str]

    def fail(self, key: str, problem: str, part: str | None = None) -> NoReturn:
        if key in self.names:
            raise InputError(self.source, self.names[key] + (f".{part}" if part is not None else ""), problem)
        if part is not None:
            raise InputError(self.source, f"{self.record}.{key}.{part}", problem)
        raise InputError(self.source, self.record, f"{key!r} {problem}")


def _all_finite(obj: Any) -> bool:
    """No NaN or infinity anywhere in a parsed JSON value (json.loads accepts `NaN` and `Infinity`)."""
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, Mapping):
        return all(_all_finite(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_finite(value) for value in obj)
    return True


def _show(value: Any, limit: int = 60) -> str:
    """A value as a message shows it: its repr, cut to `limit` characters (a message stays one short line)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _json_number(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value
