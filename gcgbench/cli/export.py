"""Export a run's predictions in an upstream layout, so other tools can read them.

`--format glamm` writes GLaMM's per-image `<image_id>.json` files (`caption`, `phrases`, `pred_masks`),
which GLaMM's own `eval/gcg/evaluate.py` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from gcgbench.api.errors import InputError
from gcgbench.data.grandf import glamm_prediction_json
from gcgbench.runner.run_dir import RunDir

FORMATS = ("glamm",)


def export(
    run_dir: Path = typer.Argument(..., help="A run directory (holding predictions/<task>.jsonl)."),
    task: str = typer.Option(..., "--task", help="Which task's predictions to export."),
    output: Path = typer.Option(..., "--output", help="Folder to write."),
    format: str = typer.Option("glamm", "--format", help="Layout: glamm (GCG per-image files)."),
) -> None:
    if format not in FORMATS:
        raise InputError("--format", None, f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    run = RunDir(run_dir)
    source = run.predictions_path(task)
    output.mkdir(parents=True, exist_ok=True)
    count = 0
    for line_number, prediction in run.iter_predictions(task):
        try:
            body = glamm_prediction_json(prediction)
        except ValueError as error:
            raise InputError(source, f"line {line_number}", str(error)) from None
        (output / f"{prediction.doc_id}.json").write_text(json.dumps(body))
        count += 1
    Console(stderr=True).print(f"wrote {count} GLaMM prediction files to {output}")
