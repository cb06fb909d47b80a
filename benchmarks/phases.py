"""Where the time of the first minute goes: `gcgbench demo` and the headline `gcgbench run --model difflmm
--task gcg`, phase by phase, each in a fresh process (cold imports, cold JVM, cold caches of this process).

    python benchmarks/phases.py [--commands demo,difflmm,difflmm-cached] [--repeat 1]

Phases are the `gcgbench.api.phases` blocks the code itself announces (the rows the CLI shows while they
run): importing the CLI, importing the backend (torch, transformers), loading spaCy / the model / SAM /
the phrase encoder, generation (without the model and SAM loads inside the first call), mask matching, PTB
tokenisation, METEOR, CIDEr, bootstrap, writing results, the HTML report; "other" is the rest of the wall
time. METEOR includes starting its JVM; the JVM start alone is measured as `java -version`. Every row
carries the 1-minute load average when the command ended (`os.getloadavg`, what `uptime` prints): on a
shared machine the numbers only mean something next to it. `difflmm-cached` re-runs the headline command
against the generation cache the previous run filled; `score` scores the difflmm run's predictions
(`gcgbench score --task gcg_val`). The last row is the task's whole scoring (phrase encoder load, mask
matching with the phrase embeddings, PTB, METEOR, CIDEr, bootstrap), part of the total above it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
started = time.perf_counter()
from gcgbench.cli.app import main
from gcgbench.api import phases
imported = time.perf_counter() - started
code = 0
try:
    code = main(sys.argv[2:]) or 0
except SystemExit as stop:
    code = stop.code or 0
record = {"importing the CLI": imported, **phases.timings(), "total": time.perf_counter() - started, "code": code}
with open(sys.argv[1], "w") as out:
    json.dump(record, out)
"""

# rows in display order; "generation" is shown net of the loads nested inside it
ORDER = ("importing the CLI", "importing the backend", "loading spaCy", "loading the model", "loading SAM",
         "generation", "loading the phrase encoder", "mask matching", "PTB tokenization", "METEOR", "CIDEr",
         "bootstrap", "writing results", "printing results", "writing the HTML report")


def commands(work: Path, attempt: int = 0) -> dict[str, list[str]]:
    """Each repeat of `difflmm` generates into an empty cache of its own; `difflmm-cached` reads the first's."""
    fresh, filled = str(work / f"cache-{attempt}"), str(work / "cache-0")
    return {
        "demo": ["demo", "--output", str(work / "demo")],
        "difflmm": ["run", "--model", "difflmm", "--task", "gcg", "--cache", fresh, "--output", str(work / "difflmm")],
        "difflmm-cached": ["run", "--model", "difflmm", "--task", "gcg", "--cache", filled,
                           "--output", str(work / "difflmm-cached")],
        # scoring the predictions the difflmm run wrote (after it in --commands)
        "score": ["score", "--task", "gcg_val", "--predictions", str(work / "difflmm"), "--text-model", "minilm",
                  "--output", str(work / "score")],
    }


def measure(argv: list[str], work: Path) -> dict[str, float]:
    out = work / "phases.json"
    result = subprocess.run([sys.executable, "-c", CHILD, str(out), *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    if result.returncode or not out.is_file():
        raise SystemExit(f"gcgbench {' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    record = json.loads(out.read_text())
    record["load"] = os.getloadavg()[0]
    return record


def rows(record: dict[str, float]) -> dict[str, float]:
    """Phase name → seconds, the names of `ORDER` (model-specific names folded), "other" and "total"."""
    folded: dict[str, float] = {}
    for name, seconds in record.items():
        if name in ("total", "code", "load") or name.startswith("scoring "):
            continue
        key = ("importing the backend" if name.startswith("importing ") and name != "importing the CLI" else
               "loading spaCy" if name.startswith("loading spaCy") else
               "loading the model" if name.startswith("loading ") and name not in ORDER else name)
        folded[key] = folded.get(key, 0.0) + seconds
    nested = folded.get("loading the model", 0.0) + folded.get("loading SAM", 0.0)
    if "generation" in folded:
        folded["generation"] = max(0.0, folded["generation"] - nested)
    folded["other"] = max(0.0, record["total"] - sum(folded.values()))
    folded["total"] = record["total"]
    # the scoring of the task, every phase above included (phrase encoder load to bootstrap)
    scoring = [seconds for name, seconds in record.items() if name.startswith("scoring ")]
    if scoring:
        folded["scoring the task (within total)"] = sum(scoring)
    return folded


def java_start() -> float | None:
    java = shutil.which("java")
    if java is None:
        return None
    started = time.perf_counter()
    subprocess.run([java, "-version"], capture_output=True, check=False)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", default="demo,difflmm,difflmm-cached,score")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the table shows the fastest")
    args = parser.parse_args(argv)
    chosen = [name for name in args.commands.split(",") if name]
    measured: dict[str, dict[str, float]] = {}
    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        available = commands(work)
        unknown = [name for name in chosen if name not in available]
        if unknown:
            parser.error(f"unknown command(s) {', '.join(unknown)}; known: {', '.join(available)}")
        if "score" in chosen and "difflmm" not in chosen[:chosen.index("score")]:
            parser.error("score scores the difflmm run's predictions: list difflmm before it")
        for name in chosen:
            best = None
            for attempt in range(args.repeat):
                record = measure(commands(work, attempt)[name], work)
                if best is None or record["total"] < best["total"]:
                    best = record
            measured[name], loads[name] = rows(best), best["load"]
    jvm = java_start()
    table = Table(title="seconds per phase (fresh process each; load = 1-min load average when it ended)")
    table.add_column("phase")
    for name in chosen:
        table.add_column(name, justify="right")
    for phase_name in (*ORDER, "other", "total", "scoring the task (within total)"):
        if not any(phase_name in m for m in measured.values()):
            continue
        table.add_row(phase_name, *(f"{measured[n][phase_name]:.2f}" if phase_name in measured[n] else "–"
                                    for n in chosen))
    table.add_row("load (uptime)", *(f"{loads[n]:.1f}" for n in chosen))
    Console().print(table)
    if jvm is not None:
        Console().print(f"JVM start alone (java -version): {jvm:.2f} s at load {os.getloadavg()[0]:.1f}; METEOR "
                        "starts one for the scorer, the PTB tokenizer one per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
