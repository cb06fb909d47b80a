"""Runner overhead: time per sample of the inference phase with the `oracle` backend (no model cost),
without a cache, with a cold cache (every generation written) and fully cached (every one read).

    python benchmarks/runner.py [--images N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gcgbench.api.backend import GenerationSettings  # noqa: E402
from gcgbench.api.task import DataPaths  # noqa: E402
from gcgbench.data.sample import write_sample  # noqa: E402
from gcgbench.models.oracle import OracleBackend  # noqa: E402
from gcgbench.runner.evaluate import infer_task  # noqa: E402
from gcgbench.runner.store import GenerationCache, NullCache  # noqa: E402
from gcgbench.tasks.registry import get_task  # noqa: E402


def timed(backend, task, docs, settings, cache) -> float:
    started = time.perf_counter()
    infer_task(backend, task, docs, settings, cache=cache)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=400)
    images = parser.parse_args().images
    with tempfile.TemporaryDirectory() as folder:
        root = write_sample(Path(folder) / "sample", n_images=images)
        task = get_task("gcg_val")
        docs = task.docs(DataPaths(root))
        settings = GenerationSettings(batch_size=8)
        backend = OracleBackend()
        cache = GenerationCache(Path(folder) / "cache")
        rows = [("no cache", timed(backend, task, docs, settings, NullCache())),
                ("cold cache (write every batch)", timed(backend, task, docs, settings, cache)),
                ("warm cache (read everything)", timed(backend, task, docs, settings, cache))]
        cache.close()
    table = Table(title=f"runner overhead, oracle backend, {len(docs)} GCG docs, batch 8")
    for column in ("phase", "seconds", "ms / sample"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for name, seconds in rows:
        table.add_row(name, f"{seconds:.3f}", f"{1000 * seconds / len(docs):.3f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
