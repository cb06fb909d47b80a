"""Check a task's data before any model loads: files, checksums, images, caption-metric resources (Java
only with --meteor java or --tokenizer java), the text model."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gcgbench.cli import options as opt
from gcgbench.cli.score import default_text_model
from gcgbench.data.paths import resolve_data_paths
from gcgbench.runner.preflight import check_tasks
from gcgbench.tasks.registry import get_task


def validate(
    task: str = typer.Option(..., "--task", help="Task name(s), comma separated."),
    data_root: Optional[Path] = opt.DataRoot,
    data_config: Optional[Path] = opt.DataConfig,
    text_model: Optional[str] = opt.TextModel,
    meteor: opt.CaptionImplementation = opt.Meteor,
    tokenizer: opt.CaptionImplementation = opt.Tokenizer,
) -> int:
    paths = resolve_data_paths(data_root, data_config)
    tasks = [get_task(name.strip()) for name in task.split(",") if name.strip()]
    java = "java" in (meteor.value, tokenizer.value)
    findings = check_tasks(tasks, paths, default_text_model(text_model, paths.is_sample), java=java)
    console = Console(highlight=False)
    for finding in findings:
        console.print(finding.line(), style=None if finding.ok else "bold red")
    problems = sum(not f.ok for f in findings)
    console.print(f"{problems} problem(s)" if problems else "ready")
    return 1 if problems else 0
