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
from gcgbench.runner.preflight import check_output_folder
from gcgbench.runner.run_dir import RunDir
from gcgbench.tasks.registry import get_task

FORMATS = ("glamm",)
FORMAT_FAMILIES = {"glamm": ("gcg",)}  # which task families each format can hold


def export(
    run_dir: Path = typer.Argument(..., help="A run directory (holding predictions/<task>.jsonl)."),
    task: str = typer.Option(..., "--task", help="Which task's predictions to export."),
    output: Path = typer.Option(..., "--output", help="Folder to write."),
    format: str = typer.Option("glamm", "--format", help="Layout: glamm (GCG per-image files)."),
) -> None:
    if format not in FORMATS:
        raise InputError("--format", None, f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    spec = get_task(task).spec
    if spec.family not in FORMAT_FAMILIES[format]:
        raise InputError("--format", None, f"{format} is a GCG-only format (GLaMM's per-image GCG files); "
                                           f"{spec.name} is a {spec.family} task")
    run = RunDir(run_dir)
    source = run.predictions_path(spec.name)
    if not source.is_file():
        raise InputError(source, None, f"no predictions of {spec.name} in this run folder")
    check_output_folder(output)
    output.mkdir(parents=True, exist_ok=True)
    count = 0
    for line_number, prediction in run.iter_predictions(spec.name):
        try:
            body = glamm_prediction_json(prediction)
        except ValueError as error:
            raise InputError(source, f"line {line_number}", str(error)) from None
        (output / f"{prediction.doc_id}.json").write_text(json.dumps(body))
        count += 1
    Console(stderr=True).print(f"wrote {count} GLaMM prediction files to {output}")
