"""`gcgbench res-ceiling`: the best RES score a mask-proposal set allows (a&s `aas/upper_bound_res.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from gcgbench.api.errors import InputError
from gcgbench.cli import options as opt
from gcgbench.data.paths import resolve_data_paths
from gcgbench.grounding.sam_refine import Proposals
from gcgbench.metrics.res_ceiling import proposal_ceiling
from gcgbench.tasks.registry import get_task


def res_ceiling(
    task: str = typer.Option(..., "--task", help="A RES task, e.g. res_refcoco_val."),
    proposals: Path = typer.Option(..., "--proposals", help="COCO results JSON [{image_id, segmentation, score}]."),
    data_root: Optional[Path] = opt.DataRoot,
    data_config: Optional[Path] = opt.DataConfig,
    output: Optional[Path] = opt.Output,
) -> None:
    """The RES ceiling of a proposal set: per expression the proposal of its image with the highest IoU with the
    ground truth (gIoU, cIoU), i.e. what a&s with these proposals reaches at best, whatever its attention point."""
    chosen = get_task(task)
    if chosen.spec.family != "res":
        raise InputError("--task", task, "res-ceiling needs a RES task (family res)")
    docs = chosen.docs(resolve_data_paths(data_root, data_config))
    loaded = Proposals.from_file(proposals)
    truths, candidates = [], []
    for doc in docs:
        truths.append(doc.phrases[0].masks[0])
        candidates.append([rle for _, rle in loaded.by_image.get(str(doc.truth["image_id"]), [])])
    try:
        result = proposal_ceiling(truths, candidates)
    except ValueError as error:
        raise InputError(str(proposals), None, str(error)) from None
    without = sum(1 for c in candidates if not c)
    summary = {"task": task, "proposals": str(proposals), "n_expressions": len(docs),
               "expressions_without_proposals": without, "giou": result.giou, "ciou": result.ciou,
               "definition": "best-IoU proposal of the image per expression (aas/upper_bound_res.py)"}
    Console().print(f"{task}: RES ceiling of {proposals.name} over {len(docs)} expressions: "
                    f"gIoU {100 * result.giou:.1f}, cIoU {100 * result.ciou:.1f}"
                    + (f" ({without} without any proposal)" if without else ""))
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        rows = [{"doc_id": d.doc_id, "iou": iou, "intersection": i, "union": u, "best_proposal": b}
                for d, iou, i, u, b in zip(docs, result.ious, result.intersections, result.unions, result.best)]
        (output / "res_ceiling.json").write_text(json.dumps({**summary, "per_sample": rows}, indent=1))
