"""The bundled sample data: synthetic scenes (`sample_scenes`) written in exactly the upstream layouts.

`write_sample(root)` writes them the way GLaMM's `data/`, F-LMM's `data/` and LLaVA's
`playground/data/eval/` hold the real datasets, so the readers of real data read the sample
unchanged; `sample_root()` builds it once into a cache folder. Files are byte-identical across runs
(seeded scenes, fixed JSON key order, fixed JPEG/PNG settings). `<id>` below is a 12-digit COCO id.

GranD-f (groundingLMM docs/datasets.md, eval/gcg/evaluate.py; images where eval/gcg/run_evaluation.sh and
infer.py look, inside GranDf/, not beside it as the docs tree draws); val = even scenes, test = odd:
    GranDf/annotations/val_test/{val,test}_gcg_coco_caption_gt.json   COCO captions: images[{id: "sa_…",
        file_name, height, width}], annotations[{id, image_id, caption, labels: [phrase…]}], one per image
    GranDf/annotations/val_test/{val,test}_gcg_coco_mask_gt.json      COCO instances: images, categories
        [{id: 1}], annotations[{id, image_id, category_id: 1, segmentation: RLE (counts str), area, bbox,
        iscrowd: 0}] in the order of `labels`
    GranDf/GranDf_HA_images/val_test/sa_….jpg
RefCOCO family (lichengunc/refer refer.py, data/README.md; paths of GLaMM docs/datasets.md and
RefCOCO_Segm_ds.py — LISA uses `refer_seg/` and `refer_seg/images/mscoco/images/train2014/` instead):
    Refer_Segm/{refcoco,refcoco+,refcocog}/instances.json   COCO instances, polygon segmentations,
        categories circle 1, square 2, triangle 3
    Refer_Segm/refcoco/refs(unc).p, refcoco+/refs(unc).p, refcocog/refs(umd).p, refcocog/refs(google).p
        pickle protocol 2: [{sent_ids, file_name, ann_id, ref_id, image_id, split, sentences: [{tokens,
        raw, sent_id, sent}], category_id}]; splits unc train/val/testA/testB, umd train/val/test,
        google train/val
    coco_2014/train2014/COCO_train2014_<id>.jpg
Panoptic Narrative Grounding (BCV-Uniandes/PNG README, data/pre_process.py; F-LMM
scripts/multiprocess_eval_png.py + flmm/datasets/png.py give this folder layout):
    coco/annotations/png_coco_val2017.json   [{image_id: str, annotator_id, caption, segments:
        [{utterance, segment_ids: [str…], plural, noun}]}]; " ".join(utterances) == caption
    coco/annotations/panoptic_val2017.json   COCO panoptic: images, annotations[{segments_info: [{id,
        category_id, iscrowd, bbox, area}], file_name, image_id}], categories with `isthing`
        (shapes are things, "background" is stuff)
    coco/annotations/panoptic_val2017/<id>.png   segment id = R + 256·G + 256²·B
    coco/val2017/<id>.jpg
LLaVA-1.5 eval layout (docs/Evaluation.md, scripts/v1_5/eval/*.sh), under playground/data/eval/, for the
first VQA_SUITE_IMAGES scenes: VQAv2, POPE, GQA, TextVQA, VizWiz, MME, MMBench, ScienceQA-IMG, SEED-Bench;
the files are listed in `gcgbench.data.sample_vqa`.
.gcgbench-sample.json   marker `sample_root` writes last: version, image count, content hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcgbench.api.types import RLE
# sample_files / sample_vqa hold what used to live here; the other sample writers and the tests import the
# names below from this module, so they stay importable from it.
from gcgbench.data.sample_files import (
    INFO,
    LICENSES,
    PNG_SETTINGS,
    SAMPLE_VERSION,
    coco_image_id,
)
from gcgbench.data.sample_files import bbox as _bbox
from gcgbench.data.sample_files import coco_image_entry as _coco_image_entry
from gcgbench.data.sample_files import write_bytes as _write_bytes
from gcgbench.data.sample_files import write_image as _write_image
from gcgbench.data.sample_files import write_json as _write_json
from gcgbench.data.sample_scenes import COLORS, KIND_CATEGORY_IDS, Scene, make_scenes
from gcgbench.data.sample_vqa import gqa_image_id, textvqa_image_id, write_llava_eval  # noqa: F401 (re-exported)

DEFAULT_IMAGE_COUNT = 24
VQA_SUITE_IMAGES = 8  # each VQA-style suite uses the first scenes only, to stay small
MARKER_NAME = ".gcgbench-sample.json"
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
    llava_eval: str = "playground/data/eval"


LAYOUT = SampleLayout()


def sa_image_id(scene: Scene) -> str:
    return f"sa_{90_000_000 + scene.index}"


def write_sample(root: Path, n_images: int = DEFAULT_IMAGE_COUNT) -> Path:
    """Write the sample data for the first `n_images` scenes under `root`; returns `root`."""
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    root = Path(root)
    scenes = make_scenes(n_images)
    _write_grandf(root, scenes)
    _write_refer(root, scenes)
    _write_png(root, scenes)
    write_llava_eval(root / LAYOUT.llava_eval, scenes[:VQA_SUITE_IMAGES])
    from gcgbench.data.sample_captioning import write_captioning_sample  # it imports this module's helpers

    write_captioning_sample(root, scenes)
    return root


def sample_root(cache_dir: Path | None = None, n_images: int = DEFAULT_IMAGE_COUNT) -> Path:
    """The sample data folder, generated on first use (atomically: staged in a temp dir, then renamed).

    `cache_dir` is the folder itself (default `$XDG_CACHE_HOME/gcgbench/sample-v1`, i.e.
    `~/.cache/gcgbench/sample-v1`). A folder whose marker's content hash matches is reused as is; an
    incomplete or altered one is replaced.
    """
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if is_complete_sample(target, n_images):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        write_sample(staging, n_images)
        marker = {"version": SAMPLE_VERSION, "generator": generator_hash(), "n_images": n_images,
                  "sha256": content_hash(staging)}
        _write_bytes(staging / MARKER_NAME, json.dumps(marker, indent=1).encode())
        if target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale-", dir=target.parent))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(staging, target)
        except OSError:
            if not is_complete_sample(target, n_images):  # another process did not finish it either
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def default_cache_dir() -> Path:
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "gcgbench" / SAMPLE_VERSION


def is_complete_sample(folder: Path, n_images: int = DEFAULT_IMAGE_COUNT) -> bool:
    """True when `folder` has a marker for this version, generator code and image count whose hash matches
    its files."""
    try:
        marker = json.loads((Path(folder) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("version") == SAMPLE_VERSION
        and marker.get("generator") == generator_hash()
        and marker.get("n_images") == n_images
        and marker.get("sha256") == content_hash(Path(folder))
    )


def generator_hash() -> str:
    """sha256 of the sample writers' source: a cached sample made by other code is rebuilt, not reused."""
    digest = hashlib.sha256()
    for module in ("sample.py", "sample_scenes.py", "sample_files.py", "sample_vqa.py", "sample_captioning.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()


def content_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes (sorted by path), the marker excluded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != MARKER_NAME):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# ---------------------------------------------------------------- GranD-f (GLaMM GCG)

def _write_grandf(root: Path, scenes: list[Scene]) -> None:
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
                              "segmentation": rle.to_json(), "area": rle.area(), "bbox": _bbox(rle),
                              "iscrowd": 0})
            _write_image(root / LAYOUT.grandf_images / f"{stem}.jpg", scene.render())
        folder = root / LAYOUT.grandf_annotations
        _write_json(folder / f"{split}_gcg_coco_caption_gt.json", {"images": images, "annotations": captions})
        _write_json(folder / f"{split}_gcg_coco_mask_gt.json",
                    {"images": images, "categories": [{"id": 1, "name": "object"}], "annotations": masks})


# ---------------------------------------------------------------- RefCOCO / RefCOCO+ / RefCOCOg (refer API)

REFER_DATASETS: tuple[tuple[str, dict[str, tuple[str, ...]]], ...] = (
    ("refcoco", {"unc": ("val", "testA", "testB", "train")}),
    ("refcoco+", {"unc": ("val", "testA", "testB", "train")}),
    ("refcocog", {"umd": ("val", "test", "train"), "google": ("val", "train")}),
)


def _write_refer(root: Path, scenes: list[Scene]) -> None:
    images, annotations = [], []
    for scene in scenes:
        image_id = coco_image_id(scene)
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        images.append(_coco_image_entry(image_id, file_name, scene))
        for position, shape in enumerate(scene.shapes):
            rle = RLE.from_mask(scene.shape_masks[position])
            annotations.append({"segmentation": [shape.polygon()], "area": float(rle.area()), "iscrowd": 0,
                                "image_id": image_id, "bbox": _bbox(rle), "category_id": shape.category_id,
                                "id": _ann_id(scene, position)})
        _write_image(root / LAYOUT.refer_images / file_name, scene.render())
    categories = [{"supercategory": "shape", "id": cid, "name": kind} for kind, cid in KIND_CATEGORY_IDS.items()]
    instances = {"info": INFO, "images": images, "licenses": LICENSES, "annotations": annotations,
                 "categories": categories}
    for dataset, split_schemes in REFER_DATASETS:
        folder = root / LAYOUT.refer_root / dataset
        _write_json(folder / "instances.json", instances)
        for split_by, splits in split_schemes.items():
            refs = _refs(scenes, dataset, splits)
            _write_bytes(folder / f"refs({split_by}).p", pickle.dumps(refs, protocol=2))


def _refs(scenes: list[Scene], style: str, splits: tuple[str, ...]) -> list[dict[str, Any]]:
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
            ann_id = _ann_id(scene, position)
            refs.append({
                "sent_ids": [s["sent_id"] for s in sentences],
                "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                "ann_id": ann_id, "ref_id": len(refs), "image_id": image_id,
                "split": splits[scene.index % len(splits)], "sentences": sentences,
                "category_id": scene.shapes[position].category_id,
            })
    return refs


def _ann_id(scene: Scene, position: int) -> int:
    return coco_image_id(scene) * 10 + position + 1


# ---------------------------------------------------------------- Panoptic Narrative Grounding

def _write_png(root: Path, scenes: list[Scene]) -> None:
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
                                  "bbox": [int(v) for v in _bbox(rle)], "area": rle.area()})
        rgb = np.stack([id_map % 256, id_map // 256 % 256, id_map // 65536], axis=-1).astype(np.uint8)
        _write_image(root / LAYOUT.panoptic_pngs / f"{image_id:012d}.png", rgb, PNG_SETTINGS)
        _write_image(root / LAYOUT.png_images / f"{image_id:012d}.jpg", scene.render())
        images.append(_coco_image_entry(image_id, f"{image_id:012d}.jpg", scene))
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
    _write_json(root / LAYOUT.panoptic_json, {"info": INFO, "licenses": LICENSES, "images": images,
                                              "annotations": annotations, "categories": categories})
    _write_json(root / LAYOUT.png_narratives, narratives)
