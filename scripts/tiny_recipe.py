"""The recipe of the shipped tiny checkpoints: every `scripts/train_tiny.py` step, in training order.

    python scripts/tiny_recipe.py --output out/tiny-train --install     (`make train-tiny`, ~2.5 h on 2 cores)

`make train-tiny` runs it and copies the final folders into `gcgbench/checkpoints` (`--install`);
`scripts/verify_tiny.py` (`make verify-tiny`) runs it into another folder and compares scores. One list, so the
two can never disagree on how the shipped files were made.

DiffLMM's base LLM is the language model of an 8-epoch tiny LLaVA (`llava-8ep`), so both LMs get 12 epochs of
caption training (8 + 4 through DiffLMM's vision path; 12 for llava-as); then both are fine-tuned on GCG
captions (the a&s question), RES answers and PNG narratives, text only (`scripts/tiny_tasks.py`), with the words
those add to the vocabulary (docs/tiny_models.md has each step's scores). Most steps use one thread: on a busy
machine two OpenMP threads spin at every barrier and ran 20x slower. The thread count is part of the recipe:
float sums in another order give other weights (same torch build + same threads = the same bytes).

A finished step writes `recipe-step.json` (its arguments) into its folder; run again, the recipe skips every
step whose folder holds the same arguments, and an interrupted step resumes from its own training state.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "gcgbench" / "checkpoints"
MARKER = "recipe-step.json"

FINETUNE = ["--tasks", "gcg|res|png", "--lr", "1e-3", "--warmup", "20", "--threads", "1"]
# step name -> train_tiny.py arguments (later repeats of an option win, as argparse reads them)
STEPS: dict[str, list[str]] = {
    "llava-8ep": ["--model", "llava-as", "--epochs", "8", "--threads", "1"],
    "sam": ["--model", "sam", "--threads", "1"],
    "difflmm-4ep": ["--model", "difflmm", "--threads", "2"],
    "llava-12ep": ["--model", "llava-as", "--epochs", "12", "--threads", "2"],
    "llava-ft1": ["--model", "llava-as", "--scenes", "6400", "--steps", "400", "--batch", "64", *FINETUNE],
    "llava-ft2": ["--model", "llava-as", "--start", "110000", "--scenes", "1600", "--res-per-scene", "6",
                  "--steps", "200", "--batch", "64", *FINETUNE, "--warmup", "10"],
    # RES answers name what the expression leaves unsaid (colour, kind, top/bottom), on fresh scenes
    "llava-ft3": ["--model", "llava-as", "--start", "150000", "--scenes", "4800", "--res-per-scene", "6",
                  "--steps", "900", "--batch", "64", *FINETUNE, "--warmup", "10", "--threads", "2",
                  "--res-answer", "unstated"],
    "llava-as": ["--model", "llava-as", "--start", "160000", "--scenes", "4800", "--res-per-scene", "6",
                 "--steps", "900", "--batch", "64", *FINETUNE, "--lr", "5e-4", "--warmup", "10",
                 "--res-answer", "unstated"],
    "difflmm-ft1": ["--model", "difflmm", "--scenes", "2400", "--res-per-scene", "4", "--steps", "600",
                    "--batch", "32", "--state-every", "50", "--freeze-vision", *FINETUNE],
    # the LoRA at 3x the learning rate, 2,000 steps on fresh scenes, the llava-as fine-tunes' RES answers
    "difflmm": ["--model", "difflmm", "--start", "150000", "--scenes", "4800", "--res-per-scene", "6", "--steps", "2000",
                "--batch", "32", "--freeze-vision", *FINETUNE, "--lr", "3e-3", "--threads", "2",
                "--res-answer", "unstated"],
}
# the folder a step starts from: --base-llava for DiffLMM's pre-training, --init-from for the fine-tunes
STARTS = {"difflmm-4ep": ("--base-llava", "llava-8ep"), "llava-ft1": ("--init-from", "llava-12ep"),
          "llava-ft2": ("--init-from", "llava-ft1"), "llava-ft3": ("--init-from", "llava-ft2"),
          "llava-as": ("--init-from", "llava-ft3"),
          "difflmm-ft1": ("--init-from", "difflmm-4ep"), "difflmm": ("--init-from", "difflmm-ft1")}
# the steps whose folders ship, and where in gcgbench/checkpoints
SHIPPED = {"sam": "tiny-sam", "llava-as": "tiny-llava-as", "difflmm": "tiny-difflmm"}


class StepFailed(RuntimeError):
    """A training step exited non-zero; the steps before it stay finished, it resumes from its own state."""


def step_folders(output: Path) -> dict[str, Path]:
    """Each step's folder under `output`: `output/<step>`."""
    return {name: Path(output) / name for name in STEPS}


def step_command(name: str, folders: dict[str, Path]) -> list[str]:
    start = [STARTS[name][0], str(folders[STARTS[name][1]])] if name in STARTS else []
    return [sys.executable, str(ROOT / "scripts" / "train_tiny.py"), *STEPS[name], *start,
            "--output", str(folders[name])]


def _finished(folder: Path, arguments: list[str]) -> bool:
    marker = folder / MARKER
    try:
        return json.loads(marker.read_text())["arguments"] == arguments
    except (OSError, ValueError, KeyError, TypeError):
        return False


def retrain(output: Path) -> dict[str, Path]:
    """Run every step into `output/<step>`; returns the step folders."""
    folders = step_folders(output)
    for name in STEPS:
        command = step_command(name, folders)
        arguments = command[2:]
        if _finished(folders[name], arguments):
            print(f"[recipe] {name}: done before, with the same arguments ({folders[name]})", flush=True)
            continue
        print(f"[recipe] {name}: {' '.join(arguments)}", flush=True)
        if subprocess.run(command).returncode != 0:
            raise StepFailed(f"step {name} failed ({folders[name]}); run the recipe again to resume it")
        (folders[name] / MARKER).write_text(json.dumps({"step": name, "arguments": arguments}, indent=1) + "\n")
    return folders


def install(folders: dict[str, Path], checkpoints: Path = CHECKPOINTS) -> None:
    """Copy the shipped steps' files into `checkpoints/<folder>` (replacing what was there)."""
    for name, target in SHIPPED.items():
        destination = checkpoints / target
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(folders[name], destination, ignore=shutil.ignore_patterns(MARKER, ".train_state.pt"))
        print(f"[recipe] {name} -> {destination}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "out" / "tiny-train")
    parser.add_argument("--install", action="store_true",
                        help=f"copy the shipped steps ({', '.join(SHIPPED)}) into {CHECKPOINTS}")
    args = parser.parse_args(argv)
    try:
        folders = retrain(args.output)
    except StepFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    if args.install:
        install(folders)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
