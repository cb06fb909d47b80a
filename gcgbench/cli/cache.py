"""`gcgbench cache info|prune`: what the generation cache holds, and removing part of it (docs/cache.md)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gcgbench.api.errors import InputError
from gcgbench.cli.listing import print_json
from gcgbench.runner.store import GenerationCache, default_cache_dir

app = typer.Typer(help="Inspect or prune the generation cache.", no_args_is_help=True)
CacheDir = typer.Option(None, "--cache", help="Cache folder (default: ~/.cache/gcgbench).")


@app.command("info")
def info(cache: Optional[Path] = CacheDir,
         as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts) instead of tables.")) -> None:
    """Entries, size, and counts by model, task and batch size."""
    store = GenerationCache(cache or default_cache_dir())
    try:
        found = store.info()
    finally:
        store.close()
    if as_json:
        payload = dataclasses.asdict(found)
        payload["by_batch_size"] = {str(key): count for key, count in found.by_batch_size.items()}
        print_json(payload)
        return
    console = Console()
    console.print(f"cache: {found.path}  entries: {found.entries}  size: {found.size_bytes / 1e6:.1f} MB")
    for title, rows in (("by model", found.by_model), ("by task", found.by_task), ("by batch size", found.by_batch_size)):
        table = Table(title=title)
        table.add_column("key", overflow="fold")
        table.add_column("entries", justify="right")
        for key, count in sorted(rows.items(), key=lambda item: str(item[0])):
            table.add_row(str(key), str(count))
        console.print(table)


@app.command("prune")
def prune(
    cache: Optional[Path] = CacheDir,
    older_than_days: Optional[float] = typer.Option(None, "--older-than-days", help="Entries older than this."),
    task: Optional[str] = typer.Option(None, "--task", help="Entries of this task (name or name@version)."),
    model: Optional[str] = typer.Option(None, "--model", help="Entries of this backend name."),
    vacuum: bool = typer.Option(False, "--vacuum", help="Give the freed space back to the file system."),
) -> None:
    """Delete matching entries (at least one filter is required)."""
    if older_than_days is None and task is None and model is None:
        raise InputError("prune", None, "give --older-than-days, --task or --model (refusing to delete everything)")
    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise InputError("--older-than-days", None, f"must be a finite number of days >= 0, got {older_than_days}")
    store = GenerationCache(cache or default_cache_dir())
    removed = store.prune(older_than=None if older_than_days is None else older_than_days * 86400,
                          task=task, model=model, vacuum=vacuum)
    store.close()
    Console().print(f"removed {removed} entries")
