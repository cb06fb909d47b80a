"""gRefCOCO (GRES, henghuiding/ReLA and the gRefCOCO release): expressions naming one, several or no objects.

Sources (henghuiding/ReLA @3ca9551): gres_model/data/datasets/grefcoco.py:25 `load_grefcoco_json` (:83 no
target, :98 crowd, :118 invalid polygons), grefer.py:163 `getRefIds` (:180 exact split match),
dataset_mappers/refcoco_mapper.py `_merge_masks`.

Layout (ReLA `datasets/DATASET.md`, `gres_model/data/datasets/grefer.py::G_REFER`; images as our
RefCOCO tasks keep them):

    Refer_Segm/grefcoco/grefs(unc).json   a list of refs: {ref_id, image_id, split, ann_id: [ann ids] (or
        one id; [-1] = no target), category_id, sentences: [{sent_id, sent, raw, tokens}], ...}
        (`grefs(unc).p`, a pickle, is what G_REFER tries first; the release ships the JSON)
    Refer_Segm/grefcoco/instances.json    COCO instances: images, annotations (polygons or RLE)
    coco_2014/train2014/<file_name>

Records, as ReLA `gres_model/data/datasets/grefcoco.py::load_grefcoco_json` makes them: refs whose
`split` equals the task's split exactly (`G_REFER.getRefIds(split=...)`: `ref['split'] in [split]`),
in file order, one record per sentence in sentence order; doc id `<ref_id>_<sent_id>`.

Ground truth (`load_grefcoco_json` + `RefCOCOMapper`): a ref with `ann_id == [-1]` is a no-target
expression (`record['empty'] = True`) with an all-zero mask; otherwise the union
(`_merge_masks`: sum, clamp 1) of its annotations' masks, crowd annotations (`iscrowd`) left out and
polygons with an odd number of coordinates or fewer than 3 points dropped (both as upstream). A
targeted ref whose annotations are all crowd or all invalid keeps an empty mask and says so in
`gt_issue` (upstream asserts / raises there). ReLA scores at its network's input size (a 480×480
resize); we score at the image's size, as LISA-style models and GSVA are scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE
from gcgbench.api.jsonio import load_json, require
from gcgbench.data.refer import annotation_mask, checked_sentence, coco_image_size, empty_mask, index_by_id, int_field

SPLITS = ("val", "testA", "testB")
NO_TARGET_ANN_IDS = [-1]


@dataclass(frozen=True)
class GrefExpression:
    """One gRefCOCO sentence: its text, the referred objects (none for a no-target ref) and their union mask."""

    ref_id: int
    sent_id: int
    sentence_index: int
    ann_ids: tuple[int, ...]  # () for no target
    image_id: int
    split: str
    expression: str  # `sent`, stripped, lower case (the text LISA-style loaders feed)
    raw: str | None  # the annotator's text (ReLA feeds `raw` to BERT)
    image_file: str
    height: int
    width: int
    mask: RLE
    no_target: bool
    gt_issue: str | None = None
    crowd_left_out: int = 0  # referred crowd annotations, left out of the truth as ReLA leaves them out

    @property
    def record_id(self) -> str:
        return f"{self.ref_id}_{self.sent_id}"


def read_grefcoco(refs_path: Path, instances_path: Path, image_dir: Path, split: str) -> list[GrefExpression]:
    """Every sentence of every ref of `split`, in file order, with its merged ground-truth mask."""
    refs_path, instances_path = Path(refs_path), Path(instances_path)
    if split not in SPLITS:
        raise InputError(refs_path, "split", f"unknown gRefCOCO split {split!r}; known: {', '.join(SPLITS)}")
    refs = load_json(refs_path, "gRefCOCO grefs(unc).json")
    require(isinstance(refs, list), refs_path, None, f"expected a list of refs, got {type(refs).__name__}")
    instances = load_json(instances_path, "gRefCOCO instances.json")
    images = index_by_id(instances, "images", instances_path)
    annotations = index_by_id(instances, "annotations", instances_path)
    records: list[GrefExpression] = []
    seen_refs: set[int] = set()
    seen_sentences: dict[int, str] = {}
    for position, ref in enumerate(refs):
        require(isinstance(ref, dict), refs_path, f"refs[{position}]", f"expected an object, got {type(ref).__name__}")
        ref_id = int_field(ref, "ref_id", refs_path, f"refs[{position}]")
        where = f"ref_id {ref_id}"
        require(ref_id not in seen_refs, refs_path, where, "duplicate ref_id")
        seen_refs.add(ref_id)
        ref_split = ref.get("split")
        require(isinstance(ref_split, str), refs_path, where, f"'split' must be a string, got {ref_split!r}")
        if ref_split != split:
            continue
        image_id = int_field(ref, "image_id", refs_path, where)
        require(image_id in images, instances_path, f"image {image_id}",
                f"referred to by {where} of {refs_path.name} but not in 'images'")
        image = images[image_id]
        height, width = coco_image_size(image, instances_path, image_id)
        file_name = image.get("file_name")
        require(isinstance(file_name, str), instances_path, f"image {image_id}", "'file_name' must be a string")
        ann_ids = _ann_ids(ref.get("ann_id"), refs_path, where)
        no_target = ann_ids == NO_TARGET_ANN_IDS
        require(no_target or -1 not in ann_ids, refs_path, where, f"'ann_id' mixes -1 (no target) with objects: {ann_ids}")
        if no_target:
            mask, issue, crowd = empty_mask(height, width), None, 0
        else:
            mask, issue, crowd = _union(ann_ids, annotations, image_id, height, width, instances_path, where, refs_path)
        sentences = ref.get("sentences")
        require(isinstance(sentences, list) and bool(sentences), refs_path, where, "'sentences' must be a non-empty list")
        for index, sentence in enumerate(sentences):
            sent_id, text, raw = checked_sentence(sentence, refs_path, f"{where} sentences[{index}]", where,
                                                  seen_sentences)
            records.append(GrefExpression(
                ref_id=ref_id, sent_id=sent_id, sentence_index=index, ann_ids=() if no_target else tuple(ann_ids),
                image_id=image_id, split=ref_split, expression=text.strip().lower(), raw=raw,
                image_file=str(Path(image_dir) / file_name), height=height, width=width, mask=mask,
                no_target=no_target, gt_issue=issue, crowd_left_out=crowd,
            ))
    return records


def _union(ann_ids: list[int], annotations: Mapping[int, Mapping[str, Any]], image_id: int, height: int, width: int,
           instances_path: Path, where: str, refs_path: Path) -> tuple[RLE, str | None, int]:
    from pycocotools import mask as mask_utils

    parts, issues, crowd = [], [], 0
    for ann_id in ann_ids:
        require(ann_id in annotations, instances_path, f"annotation {ann_id}",
                f"referred to by {where} of {refs_path.name} but not in 'annotations'")
        annotation = annotations[ann_id]
        require(annotation.get("image_id") == image_id, instances_path, f"annotation {ann_id}",
                f"belongs to image {annotation.get('image_id')!r}, but {where} of {refs_path.name} says {image_id}")
        if annotation.get("iscrowd"):
            crowd += 1
            continue
        mask, issue = annotation_mask(annotation.get("segmentation"), height, width, instances_path, f"annotation {ann_id}")
        if issue:
            issues.append(f"annotation {ann_id}: {issue}")
        parts.append(mask)
    if not parts:
        issues.append("a targeted expression with no usable annotation: empty mask (ReLA would fail here)")
        return empty_mask(height, width), "; ".join(issues), crowd
    merged = mask_utils.merge([part.to_coco() for part in parts])
    return RLE(height, width, merged["counts"].decode("ascii")), "; ".join(issues) or None, crowd


def _ann_ids(value: Any, path: Path, where: str) -> list[int]:
    ids = value if isinstance(value, list) else [value]
    require(bool(ids) and all(isinstance(v, int) and not isinstance(v, bool) for v in ids), path, where,
            f"'ann_id' must be an annotation id or a non-empty list of them ([-1] = no target), got {value!r}")
    return list(ids)
