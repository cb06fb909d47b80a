"""Task names → task objects. `gcg` is an alias of `gcg_val`, as in DESIGN.md's CLI contract."""

from __future__ import annotations

from gcgbench.api.errors import InputError
from gcgbench.api.task import Task
from gcgbench.tasks.gcg import GcgTask

TASKS: dict[str, Task] = {
    "gcg_val": GcgTask("gcg_val", "val"),
    "gcg_test": GcgTask("gcg_test", "test"),
}
ALIASES = {"gcg": "gcg_val"}


def get_task(name: str) -> Task:
    canonical = ALIASES.get(name, name)
    if canonical not in TASKS:
        raise InputError("--task", None, f"unknown task {name!r}; known: {', '.join(sorted([*TASKS, *ALIASES]))}")
    return TASKS[canonical]
