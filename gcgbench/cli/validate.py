"""Check a task's data before any model loads: files, checksums, images, caption-metric resources (Java
only with --meteor java or --tokenizer java), the text model.

Exit status 0 when everything is ready, 2 when a problem was found (as for any bad input; README).
One finding per line, never wrapped (paths stay whole and greppable)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gcgbench.cli import options as opt
from gcgbench.cli.score import default_text_model
from gcgbench.data.paths import resolve_data_paths
from gcgbench.runner.preflight import check_tasks
from gcgbench.tasks.registry import check_overrides, get_tasks


def validate(
    task: str = typer.Option(..., "--task", help="Task name(s), comma separated."),
    data_root: Optional[Path] = opt.DataRoot,
    data_config: Optional[Path] = opt.DataConfig,
    text_model: Optional[str] = opt.TextModel,
    meteor: opt.CaptionImplementation = opt.Meteor,
    tokenizer: opt.CaptionImplementation = opt.Tokenizer,
) -> int:
    paths = resolve_data_paths(data_root, data_config)
    check_overrides(paths)
    tasks = get_tasks(task)
    java = "java" in (meteor.value, tokenizer.value)
    findings = check_tasks(tasks, paths, default_text_model(text_model, paths.is_sample), java=java)
    console = Console(highlight=False, soft_wrap=True)
    for finding in findings:
        console.print(finding.line(), style=None if finding.ok else "bold red", markup=False)
    problems = sum(not f.ok for f in findings)
    console.print(f"{problems} problem(s)" if problems else "ready")
    return 2 if problems else 0
