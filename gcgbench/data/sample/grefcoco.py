"""gRefCOCO in the bundled sample, in the release's layout (ReLA datasets/DATASET.md, grefer.py):

    Refer_Segm/grefcoco/grefs(unc).json   [{sent_ids, file_name, ann_id: [ids] ([-1]: no target),
        ref_id, image_id, split, sentences: [{tokens, raw, sent_id, sent}], category_id: [ids],
        no_target: bool}]; splits train/val/testA/testB by scene index
    Refer_Segm/grefcoco/instances.json    COCO instances with polygon segmentations (the RefCOCO
        sample's annotations, plus one crowd duplicate of a shape in every multi-object scene)
    coco_2014/train2014/COCO_train2014_<id>.jpg   (the RefCOCO sample's images)

Every scene gets a single-object ref per shape that its colour and kind identify, a multi-object ref
("all the shapes", naming the crowd duplicate too, which ReLA leaves out) when it has several shapes,
a plural ref for a repeated colour-and-kind, and a no-target ref (a colour-and-kind not in the image)
with two sentences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcgbench.api.types import RLE
from gcgbench.data.sample.coco import LAYOUT, annotation_id
from gcgbench.data.sample.files import INFO, LICENSES, bbox, coco_image_entry, coco_image_id, write_image, write_json
from gcgbench.data.sample.scenes import KIND_CATEGORY_IDS, KIND_PLURALS, NUMBER_WORDS, Scene

FOLDER = "Refer_Segm/grefcoco"
SPLITS = ("val", "testA", "testB", "train")
NO_TARGET = [-1]


def crowd_annotation_id(scene: Scene, position: int) -> int:
    return coco_image_id(scene) * 10 + position + 6


def write_grefcoco(root: Path, scenes: list[Scene]) -> None:
    images, annotations, refs = [], [], []
    for scene in scenes:
        image_id = coco_image_id(scene)
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        images.append(coco_image_entry(image_id, file_name, scene))
        for position, shape in enumerate(scene.shapes):
            rle = RLE.from_mask(scene.shape_masks[position])
            annotations.append(_annotation(shape.polygon(), rle, image_id, shape.category_id, annotation_id(scene, position), 0))
        if len(scene.shapes) > 1:
            rle = RLE.from_mask(scene.shape_masks[0])
            annotations.append(_annotation(scene.shapes[0].polygon(), rle, image_id, scene.shapes[0].category_id,
                                           crowd_annotation_id(scene, 0), 1))
        write_image(root / LAYOUT.refer_images / file_name, scene.render())
        for texts, members, crowd in expressions(scene):
            refs.append(_ref(scene, len(refs), texts, members, crowd, sum(len(r["sentences"]) for r in refs)))
    categories = [{"supercategory": "shape", "id": cid, "name": kind} for kind, cid in KIND_CATEGORY_IDS.items()]
    folder = root / FOLDER
    write_json(folder / "instances.json", {"info": INFO, "images": images, "licenses": LICENSES,
                                           "annotations": annotations, "categories": categories})
    write_json(folder / "grefs(unc).json", refs)


def expressions(scene: Scene) -> list[tuple[list[str], tuple[int, ...], bool]]:
    """(sentences, referred shape positions (() = no target), whether the crowd duplicate is named too)."""
    found: list[tuple[list[str], tuple[int, ...], bool]] = []
    for group in scene.groups():
        if not group.plural:
            found.append(([f"the {group.color} {group.kind}"], group.members, False))
        else:
            found.append(([f"the {NUMBER_WORDS[len(group.members)]} {group.color} {KIND_PLURALS[group.kind]}",
                           f"both {group.color} {KIND_PLURALS[group.kind]}"], group.members, False))
    if len(scene.shapes) > 1:
        found.append((["all the shapes", "every object in the picture"], tuple(range(len(scene.shapes))), True))
    color, kind = scene.absent_objects()[0]
    found.append(([f"the {color} {kind}", f"a {color} {kind} on the right"], (), False))
    return found


def _annotation(polygon: list[float], rle: RLE, image_id: int, category_id: int, ann_id: int, crowd: int) -> dict[str, Any]:
    return {"segmentation": [polygon], "area": float(rle.area()), "iscrowd": crowd, "image_id": image_id,
            "bbox": bbox(rle), "category_id": category_id, "id": ann_id}


def _ref(scene: Scene, ref_id: int, texts: list[str], members: tuple[int, ...], crowd: bool,
         first_sent_id: int) -> dict[str, Any]:
    image_id = coco_image_id(scene)
    ann_ids = [annotation_id(scene, m) for m in members] + ([crowd_annotation_id(scene, 0)] if crowd else [])
    sentences = []
    for number, text in enumerate(texts):
        raw = text[0].upper() + text[1:] + ("." if number % 2 else "")
        sentences.append({"tokens": text.split(), "raw": raw, "sent_id": first_sent_id + number, "sent": text})
    return {
        "sent_ids": [s["sent_id"] for s in sentences], "file_name": f"COCO_train2014_{image_id:012d}.jpg",
        "ann_id": ann_ids or list(NO_TARGET), "ref_id": ref_id, "image_id": image_id,
        "split": SPLITS[scene.index % len(SPLITS)], "sentences": sentences,
        "category_id": sorted({scene.shapes[m].category_id for m in members}) or list(NO_TARGET),
        "no_target": not members,
    }
