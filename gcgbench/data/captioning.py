"""Region- and image-captioning ground truth (COCO caption files) and COCO caption result files.

Region captioning, as GLaMM evaluates it (groundingLMM `eval/region_captioning/{infer,evaluate}.py`,
`eval/ddp.py::RegionCapDDP`, `run_evaluation_{RefCOCOg,VG}.sh`), under the data root:

    RefCoco_Reg/mdetr_annotations/finetune_refcocog_val_captions.json   images in coco_2014/train2014
    visual_genome/test_caption.json                                      images in visual_genome/images

Both are COCO caption files in which every `images[]` entry is ONE region (one referring expression for
RefCOCOg, MDETR's `finetune_refcocog_val.json` layout plus a `caption` on each annotation). Neither file's
format is documented upstream; it is inferred from its readers: GLaMM's RegionCapDDP and COCOEvalCap need
`caption` and `bbox` on annotations, ControlCap's RefCOCO processor reads `caption` on images.

    images[{id, file_name, height, width, ...}]      (MDETR adds original_id, caption, dataset_name, tokens_negative)
    annotations[{id, image_id, bbox: [x, y, w, h] (pixels), caption, ...}]   (MDETR: area, iscrowd, category_id,
                                                                             original_id, tokens_positive)

How the official code reads them, and so how we do:
- the docs are `images[]` in file order (`coco.imgs`); doc_id = str(images[].id);
- the region of image N is the box of the annotation whose `id` is N (`RegionCapDDP` indexes `coco.anns` with the
  image id, so annotation id == image id is assumed; we check it and that this annotation's image_id is N);
- the references of image N are the captions of every annotation with `image_id` N, in file order
  (`COCOEvalCap` takes `coco.imgToAnns[N]`); presumably just the region's own caption in the released files.
Image captioning (a COCO captions file such as `captions_val2017.json`): one doc per `images[]` entry, the
references are all its caption annotations; GLaMM publishes no image-captioning evaluation.

`truth`: `captions` (the references), `image_id` = the picture (`file_name`; the regions of one photo are
resampled together in the bootstrap), `source_image_id` = `images[].id` as the file has it (the `image_id` of
the result files).

Predictions in the upstream layout: GLaMM's region-captioning `infer.py` writes
`{results_dir}/{basename(ckpt)}_{dataset}_{rank}.json` = `[{"image_id": N, "caption": str}, ...]` (the COCO
caption results format); `evaluate.py` merges every file of `results_dir`. We read one such file, or a folder
of them (every `*.json`; `merged.json`, which `evaluate.py` writes there itself, only when it is the only one).
Repeats of an image id with the same caption (DistributedSampler pads the last batch with repeats) count once;
repeats with different captions, unknown ids and docs without a caption are errors.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction
from gcgbench.api.jsonio import load_json, require
from gcgbench.data.predictions import beyond_docs_allowed

MERGED_RESULTS = "merged.json"  # what GLaMM's evaluate.py writes into the results folder


def read_region_caption_docs(annotation_path: Path, image_dir: Path) -> list[Doc]:
    """One doc per region (`images[]` entry) with `inputs["region"] = [x, y, w, h]` in pixels."""
    data = load_json(annotation_path, "region-caption annotation file")
    images = _image_table(data, annotation_path)
    annotations = _caption_annotations(data, annotation_path, images)
    by_id = {ann["id"]: (record, ann) for record, ann in annotations}
    references = _references_by_image(annotations)

    docs = []
    for image_id, (image_record, image) in images.items():
        require(
            image_id in by_id, annotation_path, image_record,
            f"no annotation with id {image_id!r}: GLaMM (eval/ddp.py RegionCapDDP) takes the region of image "
            f"{image_id!r} from the annotation whose id equals the image id",
        )
        region_record, region = by_id[image_id]
        require(
            region["image_id"] == image_id, annotation_path, region_record,
            f"annotation {image_id!r} is the region of image {image_id!r} but has image_id {region['image_id']!r}",
        )
        height, width = _image_size(image, annotation_path, image_record)
        docs.append(Doc(
            doc_id=str(image_id),
            image_path=str(Path(image_dir) / image["file_name"]),
            height=height,
            width=width,
            inputs={"region": _bbox(region, annotation_path, region_record)},
            truth={"image_id": image["file_name"], "source_image_id": image_id, "captions": references[image_id]},
        ))
    return docs


def read_image_caption_docs(annotation_path: Path, image_dir: Path) -> list[Doc]:
    """One doc per `images[]` entry of a COCO captions file; references are all of its captions."""
    data = load_json(annotation_path, "image-caption annotation file")
    images = _image_table(data, annotation_path)
    references = _references_by_image(_caption_annotations(data, annotation_path, images))
    docs = []
    for image_id, (record, image) in images.items():
        require(image_id in references, annotation_path, record, f"image {image_id!r} has no caption annotation")
        height, width = _image_size(image, annotation_path, record)
        docs.append(Doc(
            doc_id=str(image_id),
            image_path=str(Path(image_dir) / image["file_name"]),
            height=height,
            width=width,
            truth={"image_id": image["file_name"], "source_image_id": image_id, "captions": references[image_id]},
        ))
    return docs


def is_caption_results_file(path: Path) -> bool:
    """True when `path` holds a JSON array (the COCO results layout) rather than JSONL (one object a line)."""
    with Path(path).open("rb") as handle:
        head = handle.read(4096).lstrip()
    return head.startswith(b"[")


def read_caption_results(paths: Sequence[Path], docs: Sequence[Doc], source: Path | None = None) -> dict[str, Prediction]:
    """Predictions from COCO caption result files `[{"image_id", "caption"}, ...]`, merged in the order given."""
    by_id = {doc.doc_id: doc for doc in docs}
    found: dict[str, tuple[Prediction, Path, str]] = {}
    for path in paths:
        results = load_json(path, "caption results file")
        require(isinstance(results, list), path, None, 'expected a JSON list of {"image_id": ..., "caption": ...}')
        for index, item in enumerate(results):
            record = f"[{index}]"
            require(isinstance(item, dict), path, record, "expected an object with 'image_id' and 'caption'")
            image_id = item.get("image_id")
            require(_is_id(image_id), path, record, f"'image_id' must be an int or a string, got {image_id!r}")
            require(isinstance(item.get("caption"), str), path, record, "'caption' must be a string")
            doc_id = str(image_id)
            if doc_id not in by_id and beyond_docs_allowed():
                continue  # an image the run did not ask for (replay of a subset)
            require(doc_id in by_id, path, record, f"image_id {image_id!r} is not an image of this task")
            if doc_id in found:
                earlier, earlier_path, earlier_record = found[doc_id]
                require(
                    earlier.text == item["caption"], path, record,
                    f"second, different caption for image_id {image_id!r} (first: {earlier_path} {earlier_record})",
                )
                continue  # a repeat from DistributedSampler padding: same caption, counted once
            found[doc_id] = (Prediction(doc_id=doc_id, text=item["caption"]), path, record)
    missing = [doc.doc_id for doc in docs if doc.doc_id not in found]
    if missing:
        raise InputError(source if source is not None else paths[0], None, f"{len(missing)} of {len(docs)} docs have no caption (first image_id: {missing[0]})")
    return {doc.doc_id: found[doc.doc_id][0] for doc in docs}


def read_caption_results_dir(directory: Path, docs: Sequence[Doc]) -> dict[str, Prediction]:
    """A GLaMM results folder: every `*.json` in name order (`merged.json` only when it is the only one)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(directory, None, "prediction folder not found")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".json" and p.is_file())
    rank_files = [p for p in files if p.name != MERGED_RESULTS]
    chosen = rank_files or files
    if not chosen:
        raise InputError(directory, None, 'no caption result files (*.json holding [{"image_id", "caption"}]) here')
    return read_caption_results(chosen, docs, source=directory)


def caption_results(docs: Sequence[Doc], predictions: Mapping[str, Prediction]) -> list[dict[str, Any]]:
    """Predictions in GLaMM's results layout (original image ids), so GLaMM's own evaluate.py reads them."""
    return [{"image_id": doc.truth["source_image_id"], "caption": predictions[doc.doc_id].text} for doc in docs]


# ------------------------------------------------------------------------------------------ internals


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _records(data: Any, key: str, path: Path) -> list[Mapping[str, Any]]:
    require(isinstance(data, dict), path, None, "expected a COCO-format JSON object with 'images' and 'annotations'")
    records = data.get(key)
    require(isinstance(records, list), path, key, "missing or not a list")
    for index, item in enumerate(records):
        require(isinstance(item, dict), path, f"{key}[{index}]", "expected a JSON object")
    return records


def _image_table(data: Any, path: Path) -> dict[Any, tuple[str, Mapping[str, Any]]]:
    images: dict[Any, tuple[str, Mapping[str, Any]]] = {}
    for index, image in enumerate(_records(data, "images", path)):
        record = f"images[{index}]"
        image_id = image.get("id")
        require(_is_id(image_id), path, record, f"'id' must be an int or a string, got {image_id!r}")
        require(image_id not in images, path, record, f"duplicate image id {image_id!r}")
        require(isinstance(image.get("file_name"), str) and image["file_name"] != "", path, record,
                "'file_name' must be a non-empty string")
        images[image_id] = (record, image)
    return images


def _caption_annotations(
    data: Any, path: Path, images: Mapping[Any, tuple[str, Mapping[str, Any]]]
) -> list[tuple[str, Mapping[str, Any]]]:
    annotations, seen = [], set()
    for index, ann in enumerate(_records(data, "annotations", path)):
        record = f"annotations[{index}]"
        require(_is_id(ann.get("id")), path, record, f"'id' must be an int or a string, got {ann.get('id')!r}")
        require(ann["id"] not in seen, path, record, f"duplicate annotation id {ann['id']!r}")
        seen.add(ann["id"])
        require(_is_id(ann.get("image_id")) and ann["image_id"] in images, path, record,
                f"image_id {ann.get('image_id')!r} is not in 'images'")
        require(isinstance(ann.get("caption"), str), path, record, "'caption' must be a string")
        annotations.append((record, ann))
    return annotations


def _references_by_image(annotations: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[Any, list[str]]:
    references: dict[Any, list[str]] = defaultdict(list)
    for _, ann in annotations:
        references[ann["image_id"]].append(ann["caption"])
    return dict(references)


def _image_size(image: Mapping[str, Any], path: Path, record: str) -> tuple[int, int]:
    size = []
    for key in ("height", "width"):
        value = image.get(key)
        if isinstance(value, str) and value.isdigit():  # some converted files store sizes as strings
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        require(isinstance(value, int) and not isinstance(value, bool) and value > 0, path, record,
                f"'{key}' must be a positive integer, got {image.get(key)!r}")
        size.append(value)
    return size[0], size[1]


def _bbox(ann: Mapping[str, Any], path: Path, record: str) -> list[float]:
    box = ann.get("bbox")
    valid = (
        isinstance(box, list) and len(box) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    )
    require(valid, path, record, f"'bbox' must be [x, y, width, height] (4 finite numbers), got {box!r}")
    require(box[2] >= 0 and box[3] >= 0, path, record, f"'bbox' width and height must be >= 0, got {box!r}")
    return [float(v) for v in box]
