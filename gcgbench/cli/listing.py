"""`gcgbench tasks` and `gcgbench models`: what can be run, with versions and data presence.

Identifiers (task, model and metric names) are never shortened, piped or in a narrow terminal: their
columns are as wide as the longest name, and the free-text columns wrap instead. `--json` prints the same
listing as JSON for scripts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gcgbench.api.options import REQUIRED
from gcgbench.api.task import DataPaths
from gcgbench.cli import options as opt
from gcgbench.data.paths import resolve_data_paths
from gcgbench.models.registry import BACKENDS, backend_class
from gcgbench.tasks.registry import all_specs, check_overrides, task_names

Json = typer.Option(False, "--json", help="Print JSON (for scripts) instead of a table.")


def tasks(data_root: Optional[Path] = opt.DataRoot, data_config: Optional[Path] = opt.DataConfig,
          as_json: bool = Json) -> None:
    paths = resolve_data_paths(data_root, data_config)
    check_overrides(paths)
    specs = all_specs()
    rows = []
    for name in task_names():
        spec = specs[name]
        rows.append({"task": name, "aliases": list(spec.aliases), "family": spec.family, "version": spec.version,
                     "data_present": all(DataPaths.file(paths, spec, role).exists() for role in spec.files),
                     "metrics": list(spec.metrics), "description": spec.description})
    if as_json:
        print_json({"data_root": str(paths.root), "sample_data": paths.is_sample, "tasks": rows})
        return
    table = Table(title=f"tasks (data: {'bundled sample' if paths.is_sample else paths.root})")
    identifier_column(table, "task", [r["task"] for r in rows] + [f"({', '.join(r['aliases'])})" for r in rows])
    identifier_column(table, "family", [r["family"] for r in rows])
    identifier_column(table, "version", [r["version"] for r in rows])
    identifier_column(table, "data", ["present", "missing"])
    identifier_column(table, "metrics", [m for r in rows for m in r["metrics"]])
    table.add_column("description", ratio=1, min_width=12, overflow="fold")
    for row in rows:
        aliases = f"\n({', '.join(row['aliases'])})" if row["aliases"] else ""
        table.add_row(row["task"] + aliases, row["family"], row["version"], "present" if row["data_present"] else "missing",
                      "\n".join(row["metrics"]), row["description"])
    print_table(table)


def models(as_json: bool = Json) -> None:
    """Each backend: what it is, its typed options (type, default, help) and, per request kind, the
    generation protocols it implements with the upstream script each reproduces (`protocol=` picks one)."""
    rows = []
    for name, (_, what) in sorted(BACKENDS.items()):
        cls = backend_class(name)
        options = getattr(cls, "Options", None)
        protocols = getattr(cls, "PROTOCOLS", None)
        rows.append({
            "model": name, "what": what, "arguments": dict(cls.ARGS),
            "options": [{"name": o.name, "type": o.type, "default": None if o.default is REQUIRED else o.default,
                         "required": o.default is REQUIRED, "choices": list(o.choices), "help": o.help}
                        for o in options.describe()] if options is not None else None,
            "protocols": [{"kind": kind, "name": p.name, "default": protocols.defaults[kind] == p.name,
                           "source": p.source_for(kind), "summary": p.summary}
                          for kind in protocols.kinds for p in protocols.protocols if kind in p.kinds]
            if protocols is not None else None,
            "lines": [o.line() for o in options.describe()] if options is not None else
            [f"{k}: {v}" for k, v in cls.ARGS.items()],
            "protocol_lines": protocols.lines() if protocols is not None else [],
        })
    if as_json:
        print_json({"models": [{k: v for k, v in r.items() if not k.endswith("lines")} for r in rows]})
        return
    table = Table(title="backends")
    identifier_column(table, "model", [r["model"] for r in rows])
    table.add_column("what", ratio=1, min_width=12, overflow="fold")
    table.add_column("options", ratio=2, min_width=12, overflow="fold")
    table.add_column("generation protocols (kind: name ← source)", ratio=2, min_width=12, overflow="fold")
    for row in rows:
        table.add_row(row["model"], row["what"], escape("\n".join(row["lines"])) or "-",
                      escape("\n".join(row["protocol_lines"])) or "-")
    print_table(table)


def identifier_column(table: Table, header: str, names: Iterable[str]) -> None:
    """A column that never shortens its cells: at least as wide as its longest name, never wrapped."""
    width = max([len(header), *(len(name) for name in names)])
    table.add_column(header, min_width=width, no_wrap=True, overflow="ignore")


def print_table(table: Table) -> None:
    """The terminal's width, but never narrower than the table's identifier columns need (a narrow
    terminal then wraps lines rather than cutting names); 200 columns when piped."""
    import sys

    console = Console() if sys.stdout.isatty() else Console(width=200)
    needed = sum((column.min_width or 0) + 3 for column in table.columns) + 1
    if console.width < needed:
        console = Console(width=needed)
    console.print(table)


def print_json(payload: Any) -> None:
    """Strict JSON on stdout (NaN and infinities as null): plain text, no colour or wrapping."""
    typer.echo(json.dumps(_finite(payload), indent=2, ensure_ascii=False, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
