"""Runner overhead: time per sample of the inference phase with the `oracle` backend (no model cost),
without a cache, with a cold cache (every generation written) and fully cached (every one read); then
the embedded tiny llava-as model cold and cached (a cached re-run should be at least 50× faster).

    python benchmarks/runner_overhead.py [--images N]
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
from gcgbench.models.registry import load_backend  # noqa: E402
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
        rows = [("oracle, no cache", timed(backend, task, docs, settings, NullCache())),
                ("oracle, cold cache (write every batch)", timed(backend, task, docs, settings, cache)),
                ("oracle, warm cache (read everything)", timed(backend, task, docs, settings, cache))]
        # the embedded tiny model: a real generation cost, so the cache's worth shows
        tiny = load_backend("llava-as", {})
        tiny_docs = docs[:24]
        cold = timed(tiny, task, tiny_docs, settings, cache)
        warm = timed(tiny, task, tiny_docs, settings, cache)
        rows += [(f"tiny llava-as, cold ({len(tiny_docs)} docs)", cold), (f"tiny llava-as, cached ({len(tiny_docs)} docs)", warm)]
        cache.close()
    table = Table(title=f"runner overhead ({len(docs)} GCG docs, batch 8); cached re-run speed-up of the tiny "
                        f"model: {cold / warm:.0f}×")
    for column in ("phase", "seconds", "ms / sample"):
        table.add_column(column, justify="left" if column == "phase" else "right")
    for name, seconds in rows:
        count = 24 if name.startswith("tiny") else len(docs)
        table.add_row(name, f"{seconds:.3f}", f"{1000 * seconds / min(count, len(docs)):.3f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
