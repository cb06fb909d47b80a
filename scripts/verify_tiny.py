"""Retrain every embedded tiny model from scratch and check that the retrained ones score as the shipped ones.

    python scripts/verify_tiny.py [--output out/retrain] [--tolerance 0.05]     (`make verify-tiny`, ~2.5 h on 2 cores)

Runs the exact `make train-tiny` recipe (`scripts/tiny_recipe.py`; finished steps are skipped) into
`--output`, then `gcgbench run --task gcg_val,res_refcoco_val,png_val` on the bundled sample for llava-as and
difflmm twice — shipped checkpoints, retrained checkpoints — and prints their metrics side by side. Exit 1 when
a grounding metric (GCG recall/mIoU/AP50, RES cIoU, PNG AR) differs by more than `--tolerance` (absolute).
Training is seeded and single-process, so on the same torch build, thread count and CPU the weights come out
bit-identical (`tests/test_tiny_models.py::test_training_writes_loadable_checkpoints_deterministically`); the
tolerance covers other CPUs and builds (bfloat16 autocast is native on some CPUs, emulated on others).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gcgbench.models import embedded  # noqa: E402
import tiny_recipe as recipe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = {"gcg_val": ("mask_recall", "miou", "ap50", "mask_recall_max_matching", "meteor", "cider"),
           "res_refcoco_val": ("ciou", "giou"), "png_val": ("ar",)}
CHECKED = ("mask_recall", "miou", "ap50", "ciou", "ar")


def model_args(model: str, folders: dict[str, Path] | None) -> str:
    if folders is None:
        return ""
    sam = {"sam_checkpoint": str(folders["sam"] / embedded.TINY_SAM_FILE)}
    if model == "llava-as":
        paths = {"model_path": str(folders["llava-as"])}
    else:
        paths = {key: str(folders["difflmm"] / sub) for key, sub in embedded.DIFFLMM_PARTS.items()}
    return ",".join(f"{k}={v}" for k, v in {**paths, **sam, **embedded.TINY_DEFAULTS}.items())


def score(model: str, folders: dict[str, Path] | None, output: Path) -> dict[str, float]:
    command = [sys.executable, "-m", "gcgbench", "run", "--model", model, "--task", ",".join(METRICS), "--no-cache",
               "--bootstrap", "0", "--output", str(output)]
    arguments = model_args(model, folders)
    if arguments:
        command += ["--model-args", arguments]
    subprocess.run(command, check=True)
    results = json.loads((output / "results.json").read_text())["results"]
    return {f"{task} {name}": _value(results[task][name]) for task, names in METRICS.items() for name in names}


def _value(entry) -> float:
    return entry["value"] if isinstance(entry, dict) else entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "out" / "retrain")
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--skip-training", action="store_true", help="score folders already trained in --output")
    args = parser.parse_args(argv)
    try:
        folders = recipe.step_folders(args.output) if args.skip_training else recipe.retrain(args.output)
    except recipe.StepFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    table = Table(title=f"sample gcg_val, res_refcoco_val, png_val: shipped vs retrained (tolerance {args.tolerance})")
    table.add_column("model")
    table.add_column("metric")
    for column in ("shipped", "retrained", "difference"):
        table.add_column(column, justify="right")
    failed = []
    for model in ("llava-as", "difflmm"):
        shipped = score(model, None, args.output / "runs" / f"{model}-shipped")
        retrained = score(model, folders, args.output / "runs" / f"{model}-retrained")
        for metric in shipped:
            difference = retrained[metric] - shipped[metric]
            table.add_row(model, metric, f"{shipped[metric]:.3f}", f"{retrained[metric]:.3f}", f"{difference:+.3f}")
            if metric.split()[-1] in CHECKED and abs(difference) > args.tolerance:
                failed.append(f"{model} {metric}")
    Console().print(table)
    if failed:
        print(f"retrained scores differ beyond {args.tolerance}: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
