"""GranD-f GCG ground truth and GLaMM-style prediction directories.

Layout (GLaMM `docs/datasets.md`, `eval/gcg/run_evaluation.sh`), under the data root:

    GranDf/annotations/val_test/{split}_gcg_coco_caption_gt.json   COCO caption file
    GranDf/annotations/val_test/{split}_gcg_coco_mask_gt.json      COCO instance file (RLE masks)
    GranDf/GranDf_HA_images/val_test/<image_id>.jpg

How the official `eval/gcg/evaluate.py` reads them, and so how we do:
- the split's images are `images[].id` of the caption file, in file order (string ids, the file stem);
- an image's GT labels are `labels` of its *first* caption annotation; every caption annotation of the
  image is a reference caption for METEOR/CIDEr (COCOEvalCap uses `imgToAnns`);
- its GT masks are the mask file's annotations for it, in file order, paired with labels by index;
- a prediction is `<prediction_dir>/<image_id>.json`, either flat `{caption, phrases, pred_masks}` or
  nested `{key: {caption, phrases, pred_masks}}` (the first key's value, when it has both `caption`
  and `phrases`); the i-th phrase is paired with the i-th mask by order.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.api.jsonio import load_json, require

def read_gcg_docs(caption_path: Path, mask_path: Path, image_dir: Path) -> list[Doc]:
    """The docs of a GranD-f GCG split, in caption-file order, with GT phrases and RLE masks."""
    captions = load_json(caption_path, "GranD-f caption ground truth")
    masks = load_json(mask_path, "GranD-f mask ground truth")
    images = _image_table(captions, caption_path)
    mask_images = {image["id"]: image for image in _records(masks, "images", mask_path, required=False)}

    caption_anns: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for index, ann in enumerate(_records(captions, "annotations", caption_path)):
        record = f"annotations[{index}]"
        require(ann.get("image_id") in images, caption_path, record, f"image_id {ann.get('image_id')!r} is not in 'images'")
        require(isinstance(ann.get("caption"), str), caption_path, record, "'caption' must be a string")
        caption_anns[ann["image_id"]].append(ann)

    mask_anns: dict[str, list[tuple[str, Mapping[str, Any]]]] = defaultdict(list)
    for index, ann in enumerate(_records(masks, "annotations", mask_path)):
        record = f"annotations[{index}]"
        require(
            ann.get("image_id") in images, mask_path, record,
            f"image_id {ann.get('image_id')!r} is not an image of the caption file {caption_path.name}",
        )
        require(not ann.get("iscrowd", 0), mask_path, record, "iscrowd=1 masks are not part of the GCG protocol")
        if "segmentation" in ann:  # the official reader skips annotations without one
            mask_anns[ann["image_id"]].append((record, ann))

    docs = []
    for image_id, image in images.items():
        record = f"image {image_id!r}"
        anns = caption_anns.get(image_id)
        require(bool(anns), caption_path, record, "has no caption annotation")
        labels = anns[0].get("labels")
        require(
            isinstance(labels, list) and all(isinstance(label, str) for label in labels),
            caption_path, record, "first caption annotation needs 'labels', a list of phrase strings",
        )
        gt_masks = [RLE.from_json(ann["segmentation"], mask_path, rec + ".segmentation") for rec, ann in mask_anns[image_id]]
        height, width = _image_size(image, mask_images.get(image_id), gt_masks, caption_path, record)
        for (rec, _), mask in zip(mask_anns[image_id], gt_masks):
            require(mask.size == (height, width), mask_path, rec, f"RLE size {list(mask.size)} != image size {[height, width]}")
        phrases = tuple(
            Phrase(text=label, masks=(gt_masks[i],) if i < len(gt_masks) else ()) for i, label in enumerate(labels)
        )
        docs.append(
            Doc(
                doc_id=image_id,
                image_path=str(Path(image_dir) / image.get("file_name", f"{image_id}.jpg")),
                height=height,
                width=width,
                phrases=phrases,
                extra_masks=tuple(gt_masks[len(labels):]),
                truth={"caption": anns[0]["caption"], "captions": [ann["caption"] for ann in anns]},
            )
        )
    return docs


def read_glamm_prediction(path: Path, doc: Doc) -> Prediction:
    """One GLaMM prediction file for `doc`; masks must have the image's size."""
    raw = load_json(path, f"prediction for image {doc.doc_id!r}")
    require(isinstance(raw, dict) and raw, path, None, "expected a JSON object with caption, phrases, pred_masks")
    first = raw[next(iter(raw))]
    body = first if isinstance(first, dict) and "caption" in first and "phrases" in first else raw
    for key in ("caption", "phrases", "pred_masks"):
        require(key in body, path, None, f"missing '{key}'")
    require(isinstance(body["caption"], str), path, "caption", "must be a string")
    phrases, masks = body["phrases"], body["pred_masks"]
    require(isinstance(phrases, list) and all(isinstance(p, str) for p in phrases), path, "phrases", "must be a list of strings")
    require(isinstance(masks, list), path, "pred_masks", "must be a list of RLE objects")
    rles = [RLE.from_json(mask, path, f"pred_masks[{i}]") for i, mask in enumerate(masks)]
    for index, rle in enumerate(rles):
        require(
            rle.size == (doc.height, doc.width), path, f"pred_masks[{index}]",
            f"RLE size {list(rle.size)} != image size {[doc.height, doc.width]} (height, width)",
        )
    return Prediction(
        doc_id=doc.doc_id,
        text=body["caption"],
        phrases=tuple(Phrase(text, (rles[i],) if i < len(rles) else ()) for i, text in enumerate(phrases)),
        extra_masks=tuple(rles[len(phrases):]),
    )


def read_glamm_prediction_dir(directory: Path, docs: Sequence[Doc]) -> dict[str, Prediction]:
    """Every doc's `<directory>/<image_id>.json`; a missing file is an error, as in the official script."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, None, "prediction directory not found")
    return {doc.doc_id: read_glamm_prediction(directory / f"{doc.doc_id}.json", doc) for doc in docs}


def glamm_prediction_json(prediction: Prediction) -> dict[str, Any]:
    """A prediction in GLaMM's per-image layout, so GLaMM's own evaluate.py can read our output."""
    masks = prediction.masks()
    phrases = [phrase.text for phrase in prediction.phrases]
    if any(len(phrase.masks) != 1 for phrase in prediction.phrases) and prediction.phrases:
        # GLaMM pairs phrase i with mask i; a phrase with no mask or several cannot be written faithfully
        raise ValueError(f"prediction {prediction.doc_id!r}: GLaMM layout needs exactly one mask per phrase")
    return {"image_id": prediction.doc_id, "caption": prediction.text, "phrases": phrases,
            "pred_masks": [mask.to_json() for mask in masks]}


def _records(data: Any, key: str, path: Path, required: bool = True) -> list[Mapping[str, Any]]:
    require(isinstance(data, dict), path, None, "expected a COCO-format JSON object")
    if key not in data and not required:
        return []
    records = data.get(key)
    require(isinstance(records, list), path, key, "missing or not a list")
    for index, item in enumerate(records):
        require(isinstance(item, dict), path, f"{key}[{index}]", "expected a JSON object")
    return records


def _image_table(captions: Any, path: Path) -> dict[str, Mapping[str, Any]]:
    images: dict[str, Mapping[str, Any]] = {}
    for index, image in enumerate(_records(captions, "images", path)):
        image_id = image.get("id")
        require(isinstance(image_id, str), path, f"images[{index}]", f"'id' must be the image stem string, got {image_id!r}")
        require(image_id not in images, path, f"images[{index}]", f"duplicate image id {image_id!r}")
        images[image_id] = image
    return images


def _image_size(
    image: Mapping[str, Any], mask_image: Mapping[str, Any] | None, masks: Sequence[RLE], path: Path, record: str
) -> tuple[int, int]:
    for source in (image, mask_image or {}):
        if isinstance(source.get("height"), int) and isinstance(source.get("width"), int):
            return source["height"], source["width"]
    if masks:
        return masks[0].size
    raise InputError(path, record, "no height/width in 'images' and no mask to take the size from")
