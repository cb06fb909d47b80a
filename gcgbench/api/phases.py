"""Named phases of a command (loading a model, PTB tokenisation, METEOR, the bootstrap …): timed, and announced.

`with phase("METEOR"):` adds the block's wall time to `timings()` (what `benchmarks/phases.py` prints) and tells
every installed listener when it starts and ends — the CLI installs one that shows a rich status line on
stderr (`gcgbench/cli/status.py`), so no step of a run that lasts more than a second passes without a word on
screen. Without a listener a phase only records its time. Phases nest (a model load inside the first
generation); a name's time accumulates over its occurrences. `show=False` records without announcing (steps a
progress bar already shows). Nothing here imports anything heavy.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Protocol


class PhaseListener(Protocol):
    def started(self, name: str) -> None: ...

    def finished(self, name: str, seconds: float) -> None: ...


_listeners: list[PhaseListener] = []
_seconds: dict[str, float] = {}
_counts: dict[str, int] = {}


@contextmanager
def phase(name: str, show: bool = True) -> Iterator[None]:
    listeners = list(_listeners) if show else []
    for listener in listeners:
        listener.started(name)
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        _seconds[name] = _seconds.get(name, 0.0) + seconds
        _counts[name] = _counts.get(name, 0) + 1
        for listener in reversed(listeners):
            listener.finished(name, seconds)


def timings() -> dict[str, float]:
    """Seconds spent in each phase name since the last `reset_timings()`, in order of first occurrence."""
    return dict(_seconds)


def counts() -> dict[str, int]:
    return dict(_counts)


def reset_timings() -> None:
    _seconds.clear()
    _counts.clear()


@contextmanager
def listening(listener: PhaseListener) -> Iterator[PhaseListener]:
    """Announce phases to `listener` inside the block."""
    _listeners.append(listener)
    try:
        yield listener
    finally:
        _listeners.remove(listener)
