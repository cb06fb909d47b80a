"""The first thing a newcomer runs: the tiny grounded model on the bundled sample, scored and reported.

`gcgbench demo` runs the embedded tiny LLaVA with attend-and-segment grounding (`--model llava-as` with no
model arguments: weights shipped in the package, docs/tiny_models.md) on the sample GCG split, scores it
with the official GCG metrics, and writes an HTML report of every image with its masks and phrases.
Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gcgbench.api.errors import GcgbenchError


def demo(
    output: Path = typer.Option(Path("out/demo"), "--output", help="Folder for the run and its report."),
    model: str = typer.Option("llava-as", "--model", help="Tiny backend to run (llava-as)."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the intervals."),
) -> None:
    from gcgbench.cli.app import main

    console = Console(stderr=True)
    console.print(f"demo: the embedded tiny {model} model on the bundled sample GCG split (no downloads)")
    code = main(["run", "--model", model, "--task", "gcg_val", "--output", str(output), "--bootstrap", str(bootstrap),
                 "--no-cache"])
    if code != 0:
        raise GcgbenchError(f"the demo run failed (exit {code}); see the message above")
    code = main(["report", str(output), "--output", str(output / "report.html")])
    if code != 0:
        raise GcgbenchError(f"the demo report failed (exit {code}); see the message above")
    console.print(f"report: {output / 'report.html'} (open it in a browser)")
