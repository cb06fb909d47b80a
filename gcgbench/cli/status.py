"""What the CLI shows while it works: the per-task progress bars and one status row per running phase
(`gcgbench.api.phases`), all in one rich display on stderr."""

from __future__ import annotations

import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text


class _Count(ProgressColumn):
    """`done/total` for a task bar; nothing for a phase row (no total)."""

    def render(self, task: Task) -> Text:
        return Text("" if task.total is None else f"{int(task.completed)}/{int(task.total)}", style="progress.download")


class _Elapsed(ProgressColumn):
    """A phase row's running time (`3.2 s`); a task bar's remaining time."""

    def __init__(self) -> None:
        super().__init__()
        self._remaining = TimeRemainingColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text(f"{task.elapsed or 0.0:.1f} s", style="progress.elapsed")
        return self._remaining.render(task)


def progress_display(console: Console, disable: bool = False, transient: bool = False) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _Count(),
                    TextColumn("{task.fields[rate]}"), _Elapsed(), console=console, disable=disable,
                    transient=transient)


class PhaseRows:
    """A `PhaseListener` adding one row per running phase ("loading llava-as …", with its time) to `bars`,
    removed when the phase ends."""

    def __init__(self, bars: Progress):
        self._bars = bars
        self._rows: list[tuple[str, object]] = []

    def started(self, name: str) -> None:
        self._rows.append((name, self._bars.add_task(f"{name} …", total=None, rate="")))

    def finished(self, name: str, seconds: float) -> None:
        for index in range(len(self._rows) - 1, -1, -1):
            if self._rows[index][0] == name:
                self._bars.remove_task(self._rows.pop(index)[1])
                return


def progress_factory(bars: Progress) -> Callable[[str, int], Callable[[int], None]]:
    """Per task a bar with its rate (samples/s), for `runner.evaluate.run`."""
    def factory(name: str, total: int) -> Callable[[int], None]:
        bar = bars.add_task(name, total=total, rate="")
        started = time.perf_counter()
        done = 0   # counted here: `bars.tasks` is a list, positions shift as phase rows come and go

        def advance(count: int) -> None:
            nonlocal done
            done += count
            bars.update(bar, completed=done,
                        rate=f"{done / max(time.perf_counter() - started, 1e-9):.1f} samples/s")

        return advance

    return factory
