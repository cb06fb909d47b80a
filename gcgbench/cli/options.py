"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from gcgbench.api.errors import InputError

DataRoot = typer.Option(
    None, "--data-root", envvar="GCGBENCH_DATA",
    help="Folder laid out like GLaMM's data/. Default: the bundled synthetic sample.",
)
DataConfig = typer.Option(None, "--data-config", help="YAML with data_root and per-task file overrides.")
TextModel = typer.Option(
    None, "--text-model",
    help="Phrase similarity for GCG mask recall: a local bert-base-uncased folder (official), or 'minilm'. "
         "Default on the sample data: minilm.",
)
Bootstrap = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for 95% intervals (0: none).")
Device = typer.Option("cpu", "--device", help="cpu, cuda[:N] or mps (checked before any model loads).")
Seed = typer.Option(0, "--seed", help="Run seed: per-sample seeds of stochastic backends and the bootstrap.")
Output = typer.Option(None, "--output", help="Folder for results.json and predictions.")
Protocol = typer.Option(None, "--protocol", help="Scoring protocol where a task offers several (e.g. flmm for RES).")
MinMaskArea = typer.Option(
    None, "--min-mask-area",
    help="gRefCOCO: a predicted mask with fewer pixels says 'no target' (default 1: only an empty mask).",
)


def check_bootstrap(value: int) -> int:
    """`--bootstrap` checked before anything loads: the number of resamples, 0 for no intervals."""
    if value < 0:
        raise InputError("--bootstrap", None, f"must be 0 or more (0: no intervals), got {value}")
    return value


def check_min_mask_area(value: Optional[int]) -> Optional[int]:
    """`--min-mask-area` checked before anything loads: None (the task default) or an integer >= 1."""
    if value is not None and value < 1:
        raise InputError("--min-mask-area", None, f"must be an integer >= 1 (1: only an empty mask means "
                                                  f"'no target'), got {value}")
    return value



class CaptionImplementation(str, Enum):
    """Who computes METEOR / PTB tokenisation: the Python restatement (default) or pycocoevalcap's jar."""

    python = "python"
    java = "java"


Meteor = typer.Option(
    CaptionImplementation.python, "--meteor",
    help="METEOR 1.5 implementation: python (equal to the jar, no Java) or java (pycocoevalcap's meteor-1.5.jar).",
)
Tokenizer = typer.Option(
    CaptionImplementation.python, "--tokenizer",
    help="PTB tokenizer for caption metrics: python (equal to the jar, no Java) or java (Stanford CoreNLP 3.4.1 jar).",
)

OptionalPath = Optional[Path]
