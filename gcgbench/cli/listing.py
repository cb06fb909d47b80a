"""`gcgbench tasks` and `gcgbench models`: what can be run, with versions and data presence."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gcgbench.api.task import DataPaths
from gcgbench.cli import options as opt
from gcgbench.data.paths import resolve_data_paths
from gcgbench.models.registry import BACKENDS, backend_class
from gcgbench.tasks.registry import all_specs, task_names


def tasks(data_root: Optional[Path] = opt.DataRoot, data_config: Optional[Path] = opt.DataConfig) -> None:
    paths = resolve_data_paths(data_root, data_config)
    specs = all_specs()
    table = Table(title=f"tasks (data: {'bundled sample' if paths.is_sample else paths.root})")
    for column in ("task", "family", "version", "data", "metrics", "description"):
        table.add_column(column)
    for name in task_names():
        spec = specs[name]
        present = all(DataPaths.file(paths, spec, role).exists() for role in spec.files)
        aliases = f" ({', '.join(spec.aliases)})" if spec.aliases else ""
        table.add_row(name + aliases, spec.family, spec.version, "present" if present else "missing",
                      " ".join(spec.metrics), spec.description)
    Console().print(table)


def models() -> None:
    """Each backend: what it is, its typed options (type, default, help) and, per request kind, the
    generation protocols it implements with the upstream script each reproduces (`protocol=` picks one)."""
    table = Table(title="backends")
    for column in ("model", "what", "options", "generation protocols (kind: name ← source)"):
        table.add_column(column)
    for name, (_, what) in sorted(BACKENDS.items()):
        cls = backend_class(name)
        options = getattr(cls, "Options", None)
        lines = [info.line() for info in options.describe()] if options is not None else \
            [f"{k}: {v}" for k, v in cls.ARGS.items()]
        protocols = getattr(cls, "PROTOCOLS", None)
        table.add_row(name, what, escape("\n".join(lines)) or "-", escape("\n".join(protocols.lines())) if protocols else "-")
    Console().print(table)
