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

from gcgbench.api.phases import phase
from gcgbench.cli.run import execute
from gcgbench.views.run_report import build_report


def demo(
    output: Path = typer.Option(Path("out/demo"), "--output", help="Folder for the run and its report."),
    model: str = typer.Option("llava-as", "--model", help="Tiny backend to run (llava-as)."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the intervals."),
) -> None:
    console = Console(stderr=True)
    console.print(f"demo: the embedded tiny {model} model on the bundled sample GCG split (no downloads)")
    execute(model, None, "gcg_val", data_root=None, data_config=None, limit=None, output=output, batch_size=1,
            device="cpu", seed=0, text_model=None, bootstrap=bootstrap, protocol=None, cache_folder=None, score=True)
    with console.status("writing the HTML report …"), phase("writing the HTML report", show=False):
        report = build_report(output, output / "report.html")
    console.print(f"report: {report} (open it in a browser)")
