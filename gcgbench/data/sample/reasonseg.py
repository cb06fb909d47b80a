"""ReasonSeg in the bundled sample, in LISA's released layout (README "Dataset", utils/data_processing.py):

    reason_seg/ReasonSeg/{val,test}/<stem>.jpg and <stem>.json, LabelMe-style:
        {"version", "flags", "shapes": [{"label": "target" | "ignore" | "flag", "points": [[x, y], ...],
         "group_id": null, "shape_type": "polygon", "flags": {}}], "imagePath", "imageData": null,
         "imageHeight", "imageWidth", "text": [instruction], "is_sentence": bool}

Scenes alternate val (even index) and test (odd). Queries alternate by `index // 2`: a short phrase
naming the leftmost colour-and-kind group (`is_sentence` false), or a sentence that needs a little
reasoning about the shapes (circles roll, squares have four equal sides, triangles three corners), whose
answer may be several shapes. Two scenes in three carry an "ignore" polygon (a box around a shape that
is not a target, or — when every shape is a target — a small box cutting into a target, which LISA's
largest-first drawing lets win); every fifth carries a "flag" polygon LISA drops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcgbench.data.sample.files import coco_image_id, write_image, write_json
from gcgbench.data.sample.scenes import KIND_PLURALS, Scene

FOLDER = "reason_seg/ReasonSeg"


def reasonseg_stem(scene: Scene) -> str:
    return f"{coco_image_id(scene)}_rs"


def reasonseg_split(scene: Scene) -> str:
    return "val" if scene.index % 2 == 0 else "test"


def write_reasonseg(root: Path, scenes: list[Scene]) -> None:
    for scene in scenes:
        folder = root / FOLDER / reasonseg_split(scene)
        stem = reasonseg_stem(scene)
        write_image(folder / f"{stem}.jpg", scene.render())
        write_json(folder / f"{stem}.json", annotation(scene, f"{stem}.jpg"))


def query(scene: Scene) -> tuple[str, bool, tuple[int, ...]]:
    """(instruction, is_sentence, target shape positions) of a scene."""
    if (scene.index // 2) % 2 == 0:
        group = scene.groups()[0]
        noun = KIND_PLURALS[group.kind] if group.plural else group.kind
        return f"the {group.color} {noun}", False, group.members
    by_kind = {kind: tuple(i for i, s in enumerate(scene.shapes) if s.kind == kind) for kind in KIND_PLURALS}
    if by_kind["circle"]:
        return ("If this picture were tilted, which objects in it could roll away? Please segment them.", True,
                by_kind["circle"])
    if by_kind["square"]:
        return "Something in this picture has four equal sides and four right angles. What is it?", True, by_kind["square"]
    return "Which object in this picture has exactly three corners?", True, by_kind["triangle"]


def annotation(scene: Scene, image_name: str) -> dict[str, Any]:
    text, is_sentence, targets = query(scene)
    shapes = [_shape("target", _pairs(scene.shapes[i].polygon())) for i in targets]
    if scene.index % 3 != 2:
        shapes.append(_shape("ignore", _ignore_box(scene, targets)))
    if scene.index % 5 == 0:
        x, y = scene.width - 6, scene.height - 6
        shapes.append(_shape("flag", [[x, y], [x + 4.0, y], [x + 2.0, y + 4.0]]))
    return {"version": "4.5.6", "flags": {}, "shapes": shapes, "imagePath": image_name, "imageData": None,
            "imageHeight": scene.height, "imageWidth": scene.width, "text": [text], "is_sentence": is_sentence}


def _ignore_box(scene: Scene, targets: tuple[int, ...]) -> list[list[float]]:
    others = [i for i in range(len(scene.shapes)) if i not in targets]
    if others:  # an ambiguous region around a shape that is not asked for
        shape, margin = scene.shapes[others[0]], 2
        x0, y0 = shape.center_x - shape.half_size - margin, shape.center_y - shape.half_size - margin
        x1, y1 = shape.center_x + shape.half_size + margin, shape.center_y + shape.half_size + margin
    else:  # a small box across the right edge of the first target: drawn after it, it wins those pixels
        shape = scene.shapes[targets[0]]
        x0, y0 = shape.center_x + shape.half_size // 2, shape.center_y - 3
        x1, y1 = shape.center_x + shape.half_size + 3, shape.center_y + 3
    return [[float(x0), float(y0)], [float(x1), float(y0)], [float(x1), float(y1)], [float(x0), float(y1)]]


def _shape(label: str, points: list[list[float]]) -> dict[str, Any]:
    return {"label": label, "points": points, "group_id": None, "shape_type": "polygon", "flags": {}}


def _pairs(polygon: list[float]) -> list[list[float]]:
    return [[polygon[i], polygon[i + 1]] for i in range(0, len(polygon), 2)]
