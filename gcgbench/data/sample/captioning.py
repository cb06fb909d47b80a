"""Region-captioning files of the bundled sample, in GLaMM's layouts (see `gcgbench.data.captioning`).

`write_captioning_sample(root, scenes)` writes, under the data root (byte-identical across runs):

    RefCoco_Reg/mdetr_annotations/finetune_refcocog_val_captions.json   MDETR refexp layout (mdetr
        scripts/fine-tuning/refexp_coco_format.py) + `caption` on each annotation: one images[] entry per
        sentence of the refcocog umd val refs that `write_sample` puts in Refer_Segm/refcocog/refs(umd).p
        ({file_name: COCO_train2014_<id>.jpg, height, width, id, original_id, caption, dataset_name,
        tokens_negative}), one annotation each with id == image id ({area, iscrowd, image_id, category_id, id,
        bbox, original_id: the instances.json ann id, tokens_positive, caption}); images are the
        coco_2014/train2014/COCO_train2014_<id>.jpg files `write_sample` writes (written here if absent)
    visual_genome/test_caption.json   one images[] entry per shape ({id, file_name: <vg id>.jpg, height,
        width}), one annotation each with id == image id ({id, image_id, category_id: 1, bbox, area,
        iscrowd: 0, caption: the RefCOCO-style expression of the shape})
    visual_genome/images/<vg id>.jpg  (vg id = 2_500_000 + scene index)

Boxes and areas are those of the shape masks in Refer_Segm/*/instances.json (pycocotools toBbox / area).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gcgbench.api.types import RLE
from gcgbench.data.sample.coco import LAYOUT, REFER_DATASETS, annotation_id, make_refs
from gcgbench.data.sample.files import INFO, LICENSES, bbox, write_image, write_json
from gcgbench.data.sample.scenes import KIND_CATEGORY_IDS, Scene

REFCOCOG_CAPTIONS = "RefCoco_Reg/mdetr_annotations/finetune_refcocog_val_captions.json"
VG_CAPTIONS = "visual_genome/test_caption.json"
VG_IMAGES = "visual_genome/images"


def vg_image_id(scene: Scene) -> int:
    return 2_500_000 + scene.index


def write_captioning_sample(root: Path, scenes: list[Scene]) -> None:
    """Write the region-captioning annotation files (and the images they need) for `scenes` under `root`."""
    root = Path(root)
    _write_refcocog_captions(root, scenes)
    _write_vg_captions(root, scenes)


def _write_refcocog_captions(root: Path, scenes: list[Scene]) -> None:
    shapes = {annotation_id(scene, position): (scene, position) for scene in scenes for position in range(len(scene.shapes))}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    umd_refs = make_refs(scenes, "refcocog", dict(REFER_DATASETS)["refcocog"]["umd"])
    for ref in (ref for ref in umd_refs if ref["split"] == "val"):
        scene, position = shapes[ref["ann_id"]]
        rle = RLE.from_mask(scene.shape_masks[position])
        file_name = "_".join(ref["file_name"].split("_")[:-1]) + ".jpg"  # as MDETR derives it from the ref
        for sentence in ref["sentences"]:
            region_id = len(images)
            images.append({"file_name": file_name, "height": scene.height, "width": scene.width, "id": region_id,
                           "original_id": ref["image_id"], "caption": sentence["sent"], "dataset_name": "refcocog",
                           "tokens_negative": []})
            annotations.append({"area": float(rle.area()), "iscrowd": 0, "image_id": region_id,
                                "category_id": ref["category_id"], "id": region_id, "bbox": bbox(rle),
                                "original_id": ref["ann_id"], "tokens_positive": [[0, len(sentence["sent"])]],
                                "caption": sentence["sent"]})
        image_path = root / LAYOUT.refer_images / file_name
        if not image_path.is_file():
            write_image(image_path, scene.render())
    categories = [{"supercategory": "shape", "id": cid, "name": kind} for kind, cid in KIND_CATEGORY_IDS.items()]
    write_json(root / REFCOCOG_CAPTIONS, {"info": INFO, "licenses": LICENSES, "images": images,
                                           "annotations": annotations, "categories": categories})


def _write_vg_captions(root: Path, scenes: list[Scene]) -> None:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for scene in scenes:
        file_name = f"{vg_image_id(scene)}.jpg"
        for position, expressions in enumerate(scene.referring_expressions("refcoco")):
            rle = RLE.from_mask(scene.shape_masks[position])
            region_id = len(images)
            images.append({"id": region_id, "file_name": file_name, "height": scene.height, "width": scene.width})
            annotations.append({"id": region_id, "image_id": region_id, "category_id": 1, "bbox": bbox(rle),
                                "area": float(rle.area()), "iscrowd": 0, "caption": expressions[0]})
        write_image(root / VG_IMAGES / file_name, scene.render())
    write_json(root / VG_CAPTIONS, {"images": images, "annotations": annotations,
                                     "categories": [{"id": 1, "name": "object"}]})

