"""Task names → tasks: every `tasks/*.yaml` spec bound to its family class.

Family classes are imported only when a task of that family is asked for, so listing tasks stays fast.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from pathlib import Path

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, Task, TaskSpec
from gcgbench.tasks.families import FAMILIES
from gcgbench.tasks.spec import iter_task_files, load_spec



@lru_cache(maxsize=None)
def all_specs(folders: tuple[Path, ...] = ()) -> dict[str, TaskSpec]:
    """Every spec by name (aliases included), from the built-in folder or the given ones."""
    specs: dict[str, TaskSpec] = {}
    for path in iter_task_files(list(folders) or None):
        spec = load_spec(path)
        for name in (spec.name, *spec.aliases):
            if name in specs:
                raise InputError(path, "name", f"task name {name!r} is also defined in {specs[name].source}")
            specs[name] = spec
    return specs


def check_overrides(paths: DataPaths) -> None:
    """Every task and file role a data config overrides must exist: a typo is an error, not ignored."""
    specs = all_specs()
    by_alias = {alias: spec.name for spec in specs.values() for alias in spec.aliases}
    for task, roles in paths.overrides.items():
        spec = specs.get(task)
        if spec is None:
            raise InputError("--data-config", f"overrides.{task}", f"no task {task!r} (see `gcgbench tasks`)")
        if task in by_alias:
            raise InputError("--data-config", f"overrides.{task}", f"{task!r} is an alias: write {by_alias[task]!r}")
        unknown = sorted(set(roles) - set(spec.files))
        if unknown:
            raise InputError("--data-config", f"overrides.{task}", f"{task} has no file role(s) {unknown}; "
                                                                   f"its roles: {', '.join(spec.files)}")


def task_names() -> list[str]:
    """Canonical task names (no aliases), sorted."""
    return sorted({spec.name for spec in all_specs().values()})


def get_task(name: str) -> Task:
    specs = all_specs()
    if name not in specs:
        raise InputError("--task", None, f"unknown task {name!r}; known: {', '.join(sorted(specs))}")
    spec = specs[name]
    module_name, class_name = FAMILIES[spec.family].split(":")
    return getattr(import_module(module_name), class_name)(spec)


def get_tasks(names: str) -> list[Task]:
    """The tasks of a comma-separated `--task` list, in order, each once (`gcg,gcg_val` is one task: the alias
    resolves to its task first); `InputError` when the list names none."""
    chosen: dict[str, Task] = {}
    for name in (part.strip() for part in names.split(",")):
        if name and (canonical := canonical_task(name)) not in chosen:
            chosen[canonical] = get_task(name)
    if not chosen:
        raise InputError("--task", None, "names no task (see `gcgbench tasks`)")
    return list(chosen.values())


def canonical_task(name: str) -> str:
    """A task's own name for `name`, which may be an alias (`gcg` -> `gcg_val`); a name this install does not
    know is returned as it is (a leaderboard or results file may hold tasks of another install)."""
    spec = all_specs().get(name)
    return spec.name if spec is not None else name
