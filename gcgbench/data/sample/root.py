"""The bundled sample data: synthetic scenes (`gcgbench.data.sample.scenes`) written in exactly the upstream layouts.

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
gRefCOCO (ReLA datasets/DATASET.md; `gcgbench.data.sample.grefcoco`), images shared with RefCOCO:
    Refer_Segm/grefcoco/grefs(unc).json, Refer_Segm/grefcoco/instances.json
ReasonSeg (LISA README "Dataset"; `gcgbench.data.sample.reasonseg`), val = even scenes, test = odd:
    reason_seg/ReasonSeg/{val,test}/<id>_rs.jpg + <id>_rs.json (LabelMe: text, is_sentence, shapes)
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
the files are listed in `gcgbench.data.sample.vqa`.
.gcgbench-sample.json   marker `sample_root` writes last: version, image count, content hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from gcgbench.data.sample.captioning import write_captioning_sample
from gcgbench.data.sample.coco import LAYOUT, write_grandf, write_png, write_refer
from gcgbench.data.sample.files import SAMPLE_VERSION, write_bytes
from gcgbench.data.sample.grefcoco import write_grefcoco
from gcgbench.data.sample.reasonseg import write_reasonseg
from gcgbench.data.sample.scenes import make_scenes
from gcgbench.data.sample.vqa import write_llava_eval

DEFAULT_IMAGE_COUNT = 24
VQA_SUITE_IMAGES = 8  # each VQA-style suite uses the first scenes only, to stay small
MARKER_NAME = ".gcgbench-sample.json"


def write_sample(root: Path, n_images: int = DEFAULT_IMAGE_COUNT) -> Path:
    """Write the sample data for the first `n_images` scenes under `root`; returns `root`."""
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    root = Path(root)
    scenes = make_scenes(n_images)
    write_grandf(root, scenes)
    write_refer(root, scenes)
    write_grefcoco(root, scenes)
    write_reasonseg(root, scenes)
    write_png(root, scenes)
    write_llava_eval(root / LAYOUT.llava_eval, scenes[:VQA_SUITE_IMAGES])
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
        write_bytes(staging / MARKER_NAME, json.dumps(marker, indent=1).encode())
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
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()


def content_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes (sorted by path), the marker excluded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != MARKER_NAME):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


