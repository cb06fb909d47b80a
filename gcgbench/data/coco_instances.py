"""COCO instance annotations (`instances_val2017.json`) as instance-segmentation docs, one per image.

A doc is an image with at least one annotation; `inputs["categories"]` lists the categories present in the
image (id and name, by id), as a&s `aas/instance_seg.py` restricts each noun phrase's category to the image's
ground-truth categories. The ground truth is every annotation (crowd ones included, flagged: COCOeval ignores
what they cover) with its mask at the image size: polygons united (`annotation_mask`, as `COCO.annToMask`),
compressed RLE as is, uncompressed RLE (crowd) compressed with pycocotools `frPyObjects`.
`truth` holds the image id, the categories and, per annotation, its id, category, crowd flag and area.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Doc, Phrase
from gcgbench.api.jsonio import load_json, require
from gcgbench.data.refer import annotation_mask


def _mask(segmentation: Any, height: int, width: int, path: Path, record: str) -> RLE:
    """Polygons / compressed RLE via `annotation_mask`; uncompressed RLE (crowd) via `RLE.from_json`."""
    if isinstance(segmentation, Mapping) and isinstance(segmentation.get("counts"), list):
        mask = RLE.from_json(segmentation, path, record)
        require(mask.size == (height, width), path, record, f"RLE size {list(mask.size)} != image size {[height, width]}")
        return mask
    return annotation_mask(segmentation, height, width, path, record)[0]


def read_instance_docs(instances_json: Path, image_dir: Path) -> list[Doc]:
    """Docs of every image with annotations, in `images` order; malformed records raise InputError."""
    path = Path(instances_json)
    data = load_json(path, "COCO instances json")
    for key in ("images", "annotations", "categories"):
        require(isinstance(data, Mapping) and isinstance(data.get(key), list), path, None, f"no '{key}' list")
    names = {}
    for index, category in enumerate(data["categories"]):
        require(isinstance(category, Mapping) and isinstance(category.get("id"), int)
                and isinstance(category.get("name"), str), path, f"categories[{index}]", "needs an int id and a name")
        names[category["id"]] = category["name"]
    by_image: dict[Any, list[tuple[int, Mapping[str, Any]]]] = {}
    for index, annotation in enumerate(data["annotations"]):
        record = f"annotations[{index}]"
        require(isinstance(annotation, Mapping), path, record, "must be an object")
        for key in ("image_id", "category_id", "segmentation"):
            require(key in annotation, path, record, f"missing '{key}'")
        require(annotation["category_id"] in names, path, record, f"unknown category_id {annotation['category_id']!r}")
        by_image.setdefault(annotation["image_id"], []).append((index, annotation))
    docs = []
    for index, image in enumerate(data["images"]):
        record = f"images[{index}]"
        require(isinstance(image, Mapping) and all(k in image for k in ("id", "file_name", "height", "width")),
                path, record, "needs id, file_name, height and width")
        annotations = by_image.get(image["id"], [])
        if not annotations:
            continue
        height, width = int(image["height"]), int(image["width"])
        phrases, instances = [], []
        for position, annotation in annotations:
            mask = _mask(annotation["segmentation"], height, width, path, f"annotations[{position}]")
            phrases.append(Phrase(names[annotation["category_id"]], (mask,)))
            instances.append({"id": annotation.get("id", position), "category_id": annotation["category_id"],
                              "iscrowd": int(annotation.get("iscrowd", 0)), "area": float(mask.area())})
        present = sorted({a["category_id"] for _, a in annotations})
        categories = [{"id": c, "name": names[c]} for c in present]
        docs.append(Doc(doc_id=str(image["id"]), image_path=str(Path(image_dir) / image["file_name"]), height=height,
                        width=width, inputs={"categories": categories}, phrases=tuple(phrases),
                        truth={"image_id": image["id"], "instances": instances, "categories": categories}))
    if not docs:
        raise InputError(path, None, "no image has an annotation")
    return docs
