"""How good are the embedded tiny models' parts? (docs/tiny_models.md quotes these tables.)

1. SAM ceiling: the shipped tiny SAM given the shape pixel nearest each shape's centroid (a perfect point), on
   the sample scenes 0 … N-1 (as rendered, before JPEG): mean IoU and the share of shapes at IoU ≥ 0.5 (the GCG
   match threshold) — an upper bound on mask recall for any point the LMM could give.
2. Grounding: for every noun phrase the tiny LMM generates on the sample's gcg_val images (even scenes < N),
   with the backend's default options: does its a&s point (the phrase map's argmax) fall on a shape, does
   its mask (point → tiny SAM) reach IoU ≥ 0.5 with a shape, and with a shape of the phrase's colour and kind?
   (SAM often recovers a point that falls just beside a small shape: the 8×8 attention grid is coarse.)

    python benchmarks/tiny_models.py [--scenes 24] [--model llava-as --model difflmm]
"""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.table import Table

from gcgbench.api.backend import GenerationSettings
from gcgbench.data.sample.scenes import make_scene
from gcgbench.grounding.sam_refine import SamRefiner, build_sam
from gcgbench.models import embedded
from gcgbench.models.registry import load_backend


def centroid_point(mask: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    nearest = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)
    return int(xs[nearest]), int(ys[nearest])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def sam_ceiling(scenes: int) -> tuple[float, float, int]:
    refiner = SamRefiner(build_sam(embedded.TINY_SAM_TYPE, embedded.tiny_sam_path()))
    ious = []
    for index in range(scenes):
        scene = make_scene(index)
        masks = scene.shape_masks
        predicted = refiner.masks(scene.render(), [centroid_point(m) for m in masks])
        ious += [iou(p, m) for p, m in zip(predicted, masks)]
    values = np.asarray(ious)
    return float(values.mean()), float((values >= 0.5).mean()), len(values)


def pointing(model: str, scenes: int) -> tuple[int, int, int, int]:
    """(phrases, points on a shape, masks at IoU ≥ 0.5 with a shape, … with a shape the phrase names)."""
    import tempfile
    from pathlib import Path

    from gcgbench.api.task import DataPaths
    from gcgbench.data.sample import write_sample
    from gcgbench.tasks.registry import get_task

    root = Path(tempfile.mkdtemp()) / "sample"
    write_sample(root, n_images=scenes)
    task = get_task("gcg_val")
    docs = task.docs(DataPaths(root))
    backend = load_backend(model, {})
    backend.prepare(task, docs)
    predictions = backend.generate([task.requests(doc) for doc in docs], GenerationSettings(seed=0, batch_size=8))
    total = on_shape = mask_on_shape = mask_on_named = 0
    for doc, prediction in zip(docs, predictions):
        scene = make_scene(int(doc.doc_id.removeprefix("sa_")) - 90_000_000)   # data/sample/coco.py::sa_image_id
        for phrase, point in zip(prediction.phrases, prediction.extras.get("points", [])):
            total += 1
            if point is not None:
                on_shape += any(m[int(point[1]), int(point[0])] for m in scene.shape_masks)
            mask = phrase.masks[0].decode() if phrase.masks else np.zeros((scene.height, scene.width), bool)
            good = [s for s, m in zip(scene.shapes, scene.shape_masks) if iou(mask, m) >= 0.5]
            mask_on_shape += bool(good)
            mask_on_named += any(s.kind in phrase.text and s.color in phrase.text for s in good)
    return total, on_shape, mask_on_shape, mask_on_named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--model", action="append", default=None)
    args = parser.parse_args()
    console = Console()
    mean_iou, share, shapes = sam_ceiling(args.scenes)
    table = Table(title=f"tiny SAM ({embedded.TINY_SAM_TYPE}) with perfect points, sample scenes 0…{args.scenes - 1}")
    for column in ("shapes", "mean IoU", "IoU ≥ 0.5"):
        table.add_column(column, justify="right")
    table.add_row(str(shapes), f"{mean_iou:.3f}", f"{share:.1%}")
    console.print(table)
    table = Table(title=f"a&s grounding of the generated phrases (gcg_val images of scenes < {args.scenes})")
    for column in ("model", "phrases", "point on a shape", "mask IoU ≥ .5 with a shape", "… a shape it names"):
        table.add_column(column, justify="right")
    for model in args.model or ["llava-as", "difflmm"]:
        total, on_shape, mask_on_shape, mask_on_named = pointing(model, args.scenes)
        table.add_row(model, str(total), *(f"{n / max(total, 1):.1%}" for n in (on_shape, mask_on_shape, mask_on_named)))
    console.print(table)


if __name__ == "__main__":
    main()
