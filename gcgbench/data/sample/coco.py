"""The COCO-based datasets of the bundled sample (GranD-f, the RefCOCO family, PNG), in the upstream layouts.

`SampleLayout` names every path the sample writes, relative to the data root (see `gcgbench.data.sample.root`
for the whole tree and the upstream files each one mirrors).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcgbench.api.types import RLE
from gcgbench.data.sample.files import (
    INFO,
    LICENSES,
    PNG_SETTINGS,
    bbox,
    coco_image_entry,
    coco_image_id,
    write_bytes,
    write_image,
    write_json,
)
from gcgbench.data.sample.scenes import COLORS, KIND_CATEGORY_IDS, Scene

BACKGROUND_CATEGORY_ID = 4


@dataclass(frozen=True)
class SampleLayout:
    """Paths (relative to the data root) of every dataset the sample writes; they mirror upstream."""

    grandf_annotations: str = "GranDf/annotations/val_test"
    grandf_images: str = "GranDf/GranDf_HA_images/val_test"
    refer_root: str = "Refer_Segm"
    refer_images: str = "coco_2014/train2014"
    png_narratives: str = "coco/annotations/png_coco_val2017.json"
    panoptic_json: str = "coco/annotations/panoptic_val2017.json"
    panoptic_pngs: str = "coco/annotations/panoptic_val2017"
    png_images: str = "coco/val2017"
    instances_json: str = "coco/annotations/instances_val2017.json"
    llava_eval: str = "playground/data/eval"


LAYOUT = SampleLayout()


def sa_image_id(scene: Scene) -> str:
    return f"sa_{90_000_000 + scene.index}"


# ---------------------------------------------------------------- GranD-f (GLaMM GCG)

def write_grandf(root: Path, scenes: list[Scene]) -> None:
    for split, members in (("val", scenes[0::2]), ("test", scenes[1::2])):
        images, captions, masks = [], [], []
        for scene in members:
            stem = sa_image_id(scene)
            images.append({"id": stem, "file_name": f"{stem}.jpg", "height": scene.height, "width": scene.width})
            text, phrases = scene.caption()
            captions.append({"id": len(captions) + 1, "image_id": stem, "caption": text,
                             "labels": [phrase.text for phrase in phrases]})
            for phrase in phrases:
                rle = RLE.from_mask(scene.union_mask(phrase.members))
                masks.append({"id": len(masks) + 1, "image_id": stem, "category_id": 1,
                              "segmentation": rle.to_json(), "area": rle.area(), "bbox": bbox(rle),
                              "iscrowd": 0})
            write_image(root / LAYOUT.grandf_images / f"{stem}.jpg", scene.render())
        folder = root / LAYOUT.grandf_annotations
        write_json(folder / f"{split}_gcg_coco_caption_gt.json", {"images": images, "annotations": captions})
        write_json(folder / f"{split}_gcg_coco_mask_gt.json",
                    {"images": images, "categories": [{"id": 1, "name": "object"}], "annotations": masks})


# ---------------------------------------------------------------- RefCOCO / RefCOCO+ / RefCOCOg (refer API)

REFER_DATASETS: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    ("refcoco", {"unc": ("val", "testA", "testB", "train")}),
    ("refcoco+", {"unc": ("val", "testA", "testB", "train")}),
    ("refcocog", {"umd": ("val", "test", "train"), "google": ("val", "train")}),
)


def write_refer(root: Path, scenes: list[Scene]) -> None:
    images, annotations = [], []
    for scene in scenes:
        image_id = coco_image_id(scene)
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        images.append(coco_image_entry(image_id, file_name, scene))
        for position, shape in enumerate(scene.shapes):
            rle = RLE.from_mask(scene.shape_masks[position])
            annotations.append({"segmentation": [shape.polygon()], "area": float(rle.area()), "iscrowd": 0,
                                "image_id": image_id, "bbox": bbox(rle), "category_id": shape.category_id,
                                "id": annotation_id(scene, position)})
        write_image(root / LAYOUT.refer_images / file_name, scene.render())
    categories = [{"supercategory": "shape", "id": cid, "name": kind} for kind, cid in KIND_CATEGORY_IDS.items()]
    instances = {"info": INFO, "images": images, "licenses": LICENSES, "annotations": annotations,
                 "categories": categories}
    for dataset, split_schemes in REFER_DATASETS:
        folder = root / LAYOUT.refer_root / dataset
        write_json(folder / "instances.json", instances)
        for split_by, splits in split_schemes.items():
            refs = make_refs(scenes, dataset, splits)
            write_bytes(folder / f"refs({split_by}).p", pickle.dumps(refs, protocol=2))


def make_refs(scenes: list[Scene], style: str, splits: tuple[str, ...]) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = []
    next_sent_id = 0
    for scene in scenes:
        image_id = coco_image_id(scene)
        for position, expressions in enumerate(scene.referring_expressions(style)):
            if not expressions:
                continue
            sentences = []
            for number, expression in enumerate(expressions):
                raw = expression[0].upper() + expression[1:] + ("." if (scene.index + number) % 2 else "")
                sent = expression.lower()
                sentences.append({"tokens": sent.split(), "raw": raw, "sent_id": next_sent_id, "sent": sent})
                next_sent_id += 1
            ann_id = annotation_id(scene, position)
            refs.append({
                "sent_ids": [s["sent_id"] for s in sentences],
                "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                "ann_id": ann_id, "ref_id": len(refs), "image_id": image_id,
                "split": splits[scene.index % len(splits)], "sentences": sentences,
                "category_id": scene.shapes[position].category_id,
            })
    return refs


def annotation_id(scene: Scene, position: int) -> int:
    return coco_image_id(scene) * 10 + position + 1


# ---------------------------------------------------------------- Panoptic Narrative Grounding

def write_png(root: Path, scenes: list[Scene]) -> None:
    images, annotations, narratives = [], [], []
    for scene in scenes:
        image_id = coco_image_id(scene)
        segment_ids = scene.panoptic_segment_ids()
        id_map = np.zeros((scene.height, scene.width), dtype=np.int64)
        segments_info = []
        layers = [(mask, shape.category_id) for mask, shape in zip(scene.shape_masks, scene.shapes)]
        layers.append((scene.background_mask(), BACKGROUND_CATEGORY_ID))
        for segment_id, (mask, category_id) in zip(segment_ids, layers):
            id_map[mask.astype(bool)] = segment_id
            rle = RLE.from_mask(mask)
            segments_info.append({"id": segment_id, "category_id": category_id, "iscrowd": 0,
                                  "bbox": [int(v) for v in bbox(rle)], "area": rle.area()})
        rgb = np.stack([id_map % 256, id_map // 256 % 256, id_map // 65536], axis=-1).astype(np.uint8)
        write_image(root / LAYOUT.panoptic_pngs / f"{image_id:012d}.png", rgb, PNG_SETTINGS)
        write_image(root / LAYOUT.png_images / f"{image_id:012d}.jpg", scene.render())
        images.append(coco_image_entry(image_id, f"{image_id:012d}.jpg", scene))
        annotations.append({"segments_info": segments_info, "file_name": f"{image_id:012d}.png",
                            "image_id": image_id})
        segments = []
        for segment in scene.narrative():
            ids = [segment_ids[-1]] if segment.background else [segment_ids[m] for m in segment.members]
            segments.append({"utterance": segment.utterance, "segment_ids": [str(i) for i in ids],
                             "plural": segment.plural, "noun": segment.noun})
        narratives.append({"image_id": str(image_id), "annotator_id": 0,
                           "caption": " ".join(s["utterance"] for s in segments), "segments": segments})
    categories = [{"supercategory": "shape", "isthing": 1, "id": cid, "name": kind, "color": list(color)}
                  for (kind, cid), color in zip(KIND_CATEGORY_IDS.items(), COLORS.values())]
    categories.append({"supercategory": "background", "isthing": 0, "id": BACKGROUND_CATEGORY_ID,
                       "name": "background", "color": [190, 190, 190]})
    write_json(root / LAYOUT.panoptic_json, {"info": INFO, "licenses": LICENSES, "images": images,
                                              "annotations": annotations, "categories": categories})
    write_json(root / LAYOUT.png_narratives, narratives)
    write_instances(root, scenes)


def write_instances(root: Path, scenes: list[Scene]) -> None:
    """COCO instances (`instances_val2017.json` layout) of the PNG images: every shape an instance (polygon)."""
    images, annotations = [], []
    for scene in scenes:
        image_id = coco_image_id(scene)
        images.append(coco_image_entry(image_id, f"{image_id:012d}.jpg", scene))
        for position, shape in enumerate(scene.shapes):
            rle = RLE.from_mask(scene.shape_masks[position])
            annotations.append({"segmentation": [shape.polygon()], "area": float(rle.area()), "iscrowd": 0,
                                "image_id": image_id, "bbox": bbox(rle), "category_id": shape.category_id,
                                "id": annotation_id(scene, position)})
    categories = [{"supercategory": "shape", "id": cid, "name": kind} for kind, cid in KIND_CATEGORY_IDS.items()]
    write_json(root / LAYOUT.instances_json, {"info": INFO, "images": images, "licenses": LICENSES,
                                              "annotations": annotations, "categories": categories})
