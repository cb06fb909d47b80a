"""The processes this process started, found and ended (Linux `/proc`; elsewhere nothing is found).

Used on Ctrl-C: a JVM scoring METEOR or tokenizing captions must not outlive the `gcgbench` that
started it (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def descendants(pid: int | None = None) -> list[int]:
    """Process ids of every live descendant of `pid` (default: this process), children first."""
    root = os.getpid() if pid is None else pid
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier and child not in found]
        found.extend(children)
        frontier = children
    return found


def kill_children(timeout_s: float = 2.0) -> list[int]:
    """SIGKILL every descendant of this process and reap the direct children; returns the pids killed."""
    killed = descendants()
    for pid in killed:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # no children left
        if reaped == 0:
            time.sleep(0.02)
    return killed
