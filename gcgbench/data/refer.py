"""RefCOCO / RefCOCO+ / RefCOCOg ground truth: the refer API's `refs(<by>).p` + `instances.json`.

Layout (lichengunc/refer `refer.py`; GLaMM docs/datasets.md and `dataset/segm_datasets/RefCOCO_Segm_ds.py`):

    Refer_Segm/<dataset>/refs(<by>).p     Python-2 pickle, a list of refs:
        {ref_id, ann_id, category_id, image_id, split, file_name (unused), sent_ids,
         sentences: [{sent_id, sent, raw, tokens}]}
    Refer_Segm/<dataset>/instances.json   COCO instances: images [{id, file_name, height, width}],
        annotations [{id, image_id, segmentation, ...}]; segmentation is a list of polygons
        (RefCOCO*), or an RLE / a list of RLEs
    coco_2014/train2014/<images[].file_name>   every split's images come from COCO train2014

Split schemes: `unc` (refcoco, refcoco+) val/testA/testB, `umd` (refcocog) val/test, `google`
(refcocog) val. A split is chosen as `refer.py::getRefIds` chooses it (GLaMM and LISA use it):
`testA`/`testB` keep refs whose split contains the last letter, `test` keeps splits containing
"test", `val` is exact equality. mmdet (F-LMM) uses exact equality; `truth["split"]` keeps the ref's
own split so that protocol can check it.

One record per sentence, in pickle order (refs) then sentence order — LISA's and GLaMM's eval text
is `sent["sent"].strip().lower()`. The ground-truth mask is the referred annotation's mask at the
image's (height, width) from `images`: the UNION of its polygons (pycocotools `frPyObjects` +
`merge`, i.e. `COCO.annToMask`, and mmdet's `LoadAnnotations._poly2mask`). refer.py, LISA and
GLaMM instead sum the decoded polygons, so pixels where two polygons of one object overlap become 2
and drop out of `intersectionAndUnionGPU`'s 2-bin histogram; that quirk is not reproduced. Polygons
with an odd number of coordinates or fewer than 3 points are dropped, as mmdet drops them (they
would otherwise be read as boxes by `frPyObjects`); each drop is recorded in `gt_issue`, never
silent. An empty `segmentation` is an all-zero mask, as in LISA/GLaMM.

The pickle is read with an unpickler that refuses every class (refs are plain lists, dicts, strings
and numbers), so a foreign pickle cannot run code; Python-2 byte strings are decoded as UTF-8.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Doc
from gcgbench.api.jsonio import load_json, require

SPLITS_BY_SCHEME: dict[str, tuple[str, ...]] = {
    "unc": ("val", "testA", "testB"),
    "umd": ("val", "test"),
    "google": ("val",),
}


@dataclass(frozen=True)
class ReferExpression:
    """One referring sentence and the mask of the object it refers to.

    `expression` is the text the model is asked about (`sent`, stripped, lower case); `raw` is the
    annotator's original text (mmdet/F-LMM feed `raw.lower()`), None when the pickle has none.
    `sentence_index` is the sentence's position within its ref (0 = the one F-LMM scores).
    """

    ref_id: int
    sent_id: int
    sentence_index: int
    ann_id: int
    image_id: int
    category_id: int | None
    split: str
    expression: str
    raw: str | None
    image_file: str
    height: int
    width: int
    mask: RLE
    gt_issue: str | None = None

    @property
    def record_id(self) -> str:
        return f"{self.ref_id}_{self.sent_id}"


def check_split(split: str, split_by: str, source: object) -> None:
    """Raise InputError unless `split` is an evaluation split of the `split_by` scheme."""
    if split_by not in SPLITS_BY_SCHEME:
        raise InputError(source, "split_by", f"unknown refer split scheme {split_by!r}; known: {', '.join(SPLITS_BY_SCHEME)}")
    if split not in SPLITS_BY_SCHEME[split_by]:
        known = ", ".join(SPLITS_BY_SCHEME[split_by])
        raise InputError(source, "split", f"unknown split {split!r} for refs({split_by}).p; known: {known}")


def split_matches(wanted: str, actual: str) -> bool:
    """refer.py `getRefIds(split=...)`: testA/testB match by letter, test by substring, others exactly."""
    if wanted in ("testA", "testB", "testC"):
        return wanted[-1] in actual
    if wanted == "test":
        return "test" in actual
    return actual == wanted


def read_refer_expressions(
    refs_path: Path, instances_path: Path, image_dir: Path, split: str, split_by: str
) -> list[ReferExpression]:
    """Every sentence of every ref of `split`, pickle order; the referred object's mask for each."""
    refs_path, instances_path = Path(refs_path), Path(instances_path)
    check_split(split, split_by, refs_path)
    refs = load_refs(refs_path)
    instances = load_json(instances_path, "refer instances.json")
    images = index_by_id(instances, "images", instances_path)
    annotations = index_by_id(instances, "annotations", instances_path)

    records: list[ReferExpression] = []
    seen_refs: set[int] = set()
    seen_sentences: dict[int, str] = {}
    for position, ref in enumerate(refs):
        where = f"refs[{position}]"
        ref_id = int_field(ref, "ref_id", refs_path, where)
        where = f"ref_id {ref_id}"
        require(ref_id not in seen_refs, refs_path, where, "duplicate ref_id")
        seen_refs.add(ref_id)
        ref_split = ref.get("split")
        require(isinstance(ref_split, str), refs_path, where, f"'split' must be a string, got {ref_split!r}")
        if not split_matches(split, ref_split):
            continue
        ann_id = int_field(ref, "ann_id", refs_path, where)
        image_id = int_field(ref, "image_id", refs_path, where)
        require(ann_id in annotations, instances_path, f"annotation {ann_id}",
                f"referred to by {where} of {refs_path.name} but not in 'annotations'")
        require(image_id in images, instances_path, f"image {image_id}",
                f"referred to by {where} of {refs_path.name} but not in 'images'")
        annotation, image = annotations[ann_id], images[image_id]
        require(annotation.get("image_id") == image_id, instances_path, f"annotation {ann_id}",
                f"belongs to image {annotation.get('image_id')!r}, but {where} of {refs_path.name} says {image_id}")
        height, width = coco_image_size(image, instances_path, image_id)
        file_name = image.get("file_name")
        require(isinstance(file_name, str), instances_path, f"image {image_id}", "'file_name' must be a string")
        mask, issue = annotation_mask(annotation.get("segmentation"), height, width, instances_path, f"annotation {ann_id}")
        sentences = ref.get("sentences")
        require(isinstance(sentences, list), refs_path, where, "'sentences' must be a list")
        category = ref.get("category_id")
        for index, sentence in enumerate(sentences):
            sent_id, text, raw = checked_sentence(sentence, refs_path, f"{where} sentences[{index}]", where,
                                                  seen_sentences)
            records.append(ReferExpression(
                ref_id=ref_id, sent_id=sent_id, sentence_index=index, ann_id=ann_id, image_id=image_id,
                category_id=category if isinstance(category, int) else None, split=ref_split,
                expression=text.strip().lower(), raw=raw, image_file=str(Path(image_dir) / file_name),
                height=height, width=width, mask=mask, gt_issue=issue,
            ))
    return records


def annotation_mask(segmentation: Any, height: int, width: int, path: Path, record: str) -> tuple[RLE, str | None]:
    """The union mask of a COCO `segmentation` (polygons, an RLE, or a list of RLEs), and any issue met."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, Mapping):
        segmentation = [segmentation]
    require(isinstance(segmentation, list), path, record, f"'segmentation' must be polygons or RLE, got {type(segmentation).__name__}")
    if not segmentation:
        return empty_mask(height, width), "empty segmentation: all-zero mask (as LISA/GLaMM)"
    if all(isinstance(part, Mapping) for part in segmentation):
        rles = [RLE.from_json(part, path, f"{record}.segmentation[{i}]") for i, part in enumerate(segmentation)]
        for i, rle in enumerate(rles):
            require(rle.size == (height, width), path, f"{record}.segmentation[{i}]",
                    f"RLE size {list(rle.size)} != image size {[height, width]} (height, width)")
        merged = mask_utils.merge([rle.to_coco() for rle in rles])
        return RLE(height, width, merged["counts"].decode("ascii")), None
    polygons, dropped = [], 0
    for i, polygon in enumerate(segmentation):
        require(
            isinstance(polygon, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon),
            path, f"{record}.segmentation[{i}]", "a polygon must be a list of numbers [x1, y1, x2, y2, ...]",
        )
        if len(polygon) % 2 == 0 and len(polygon) >= 6:
            polygons.append([float(v) for v in polygon])
        else:
            dropped += 1
    issue = f"{dropped} invalid polygon(s) dropped (odd length or < 3 points, as mmdet)" if dropped else None
    if not polygons:
        return empty_mask(height, width), issue
    merged = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return RLE(height, width, merged["counts"].decode("ascii")), issue


# ---------------------------------------------------------------- the pickle


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds lists, dicts, strings and numbers only; any class reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refuses to load {module}.{name}: refs must be plain lists and dicts")


def load_refs(path: Path) -> list[Mapping[str, Any]]:
    """The list of refs in a refer pickle; unreadable or wrongly shaped files raise InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "refer refs pickle not found")
    data = path.read_bytes()
    try:
        refs = _PlainDataUnpickler(io.BytesIO(data)).load()
    except UnicodeDecodeError:  # a Python-2 pickle with non-ASCII byte strings
        try:
            refs = _decode_bytes(_PlainDataUnpickler(io.BytesIO(data), encoding="bytes").load())
        except Exception as error:  # noqa: BLE001 - any unpickling failure is the same user error
            raise InputError(path, None, f"not a readable refer pickle ({error})") from None
    except Exception as error:  # noqa: BLE001
        raise InputError(path, None, f"not a readable refer pickle ({type(error).__name__}: {error})") from None
    require(isinstance(refs, list), path, None, f"expected a list of refs, got {type(refs).__name__}")
    for index, ref in enumerate(refs):
        require(isinstance(ref, dict), path, f"refs[{index}]", f"expected a dict, got {type(ref).__name__}")
    return refs


def _decode_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    if isinstance(value, list):
        return [_decode_bytes(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_decode_bytes(item) for item in value)
    if isinstance(value, dict):
        return {_decode_bytes(key): _decode_bytes(item) for key, item in value.items()}
    return value


# ---------------------------------------------------------------- instances.json


def index_by_id(instances: Any, key: str, path: Path) -> dict[int, Mapping[str, Any]]:
    require(isinstance(instances, dict), path, None, "expected a COCO instances JSON object")
    records = instances.get(key)
    require(isinstance(records, list), path, key, "missing or not a list")
    table: dict[int, Mapping[str, Any]] = {}
    for index, item in enumerate(records):
        require(isinstance(item, dict), path, f"{key}[{index}]", "expected a JSON object")
        item_id = item.get("id")
        require(isinstance(item_id, int) and not isinstance(item_id, bool), path, f"{key}[{index}]",
                f"'id' must be an integer, got {item_id!r}")
        require(item_id not in table, path, f"{key}[{index}]", f"duplicate id {item_id}")
        table[item_id] = item
    return table


def coco_image_size(image: Mapping[str, Any], path: Path, image_id: int) -> tuple[int, int]:
    height, width = image.get("height"), image.get("width")
    require(
        all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (height, width)),
        path, f"image {image_id}", f"'height' and 'width' must be positive integers, got {height!r}, {width!r}",
    )
    return height, width


def checked_sentence(sentence: Any, refs_path: Path, sentence_where: str, ref_where: str,
                     seen_sentences: dict[int, str]) -> tuple[int, str, str | None]:
    """(sent_id, sent, raw) of one refer sentence, checked; a sent_id seen before is an error naming both refs."""
    require(isinstance(sentence, Mapping), refs_path, sentence_where, "expected an object with sent_id and sent")
    sent_id = int_field(sentence, "sent_id", refs_path, sentence_where)
    text, raw = sentence.get("sent"), sentence.get("raw")
    require(isinstance(text, str), refs_path, sentence_where, f"'sent' must be a string, got {text!r}")
    require(raw is None or isinstance(raw, str), refs_path, sentence_where, "'raw' must be a string")
    require(sent_id not in seen_sentences, refs_path, sentence_where,
            f"sent_id {sent_id} also appears in {seen_sentences.get(sent_id)}")
    seen_sentences[sent_id] = ref_where
    return sent_id, text, raw


def int_field(record: Mapping[str, Any], key: str, path: Path, where: str) -> int:
    value = record.get(key)
    require(isinstance(value, int) and not isinstance(value, bool), path, where, f"'{key}' must be an integer, got {value!r}")
    return value


def empty_mask(height: int, width: int) -> RLE:
    import numpy as np

    return RLE.from_mask(np.zeros((height, width), dtype=np.uint8))


def flmm_selection(docs: Sequence[Doc], split: str) -> list[Doc]:
    """The docs mmdet's RefCocoDataset(text_mode='select_first') scores (and F-LMM's `--concat` groups by
    image, in this order): per ann_id, sentence 0 of the
    last ref (in doc order) whose split equals `split` exactly; objects in order of first appearance."""
    last_ref: dict[int, int] = {}  # ann_id -> ref_id of its last ref; insertion order = first appearance
    first_sentence: dict[int, Doc] = {}  # ref_id -> the doc of its sentence 0
    for doc in docs:
        if doc.truth["split"] != split:
            continue
        last_ref[doc.truth["ann_id"]] = doc.truth["ref_id"]
        if doc.truth["sentence_index"] == 0:
            first_sentence[doc.truth["ref_id"]] = doc
    return [first_sentence[ref_id] for ref_id in last_ref.values() if ref_id in first_sentence]


def glamm_conversations(docs: Sequence[Doc], seed: int) -> list[list[Doc]]:
    """GLaMM's RES evaluation, seeded: per image (docs of one `image_id`, in doc order = the refs' order and
    their sentences', as `ReferSegmDataset.__getitem__` lists `sents`), a permutation of its n sentences drawn by
    `numpy.random.RandomState(glamm_image_seed(seed, image_id)).permutation(n)` when n ≥ 3 (identity when n < 3):
    upstream's `np.random.choice(n, size=3, replace=False)` (which IS `permutation(n)[:3]`, unseeded upstream)
    is the first conversation; the rest of the permutation, three at a time, are further conversations (so
    that every sentence is answered the same way; only the first is upstream's — `glamm_selection`).
    Returns the conversations, each a list of ≤ 3 docs in turn order."""
    import numpy as np

    by_image: dict[Any, list[Doc]] = {}
    for doc in docs:
        by_image.setdefault(doc.truth["image_id"], []).append(doc)
    conversations = []
    for image_id, group in by_image.items():
        order = (np.random.RandomState(glamm_image_seed(seed, image_id)).permutation(len(group)).tolist()
                 if len(group) >= 3 else list(range(len(group))))
        conversations += [[group[i] for i in order[start:start + 3]] for start in range(0, len(order), 3)]
    return conversations


def glamm_selection(docs: Sequence[Doc], seed: int) -> list[Doc]:
    """The ≤ 3 sentences per image GLaMM's `eval/referring_seg/infer_and_evaluate.py` scores (seeded): the first
    conversation of each image (`glamm_conversations`)."""
    seen, selected = set(), []
    for conversation in glamm_conversations(docs, seed):
        image_id = conversation[0].truth["image_id"]
        if image_id not in seen:
            seen.add(image_id)
            selected += conversation
    return selected


def glamm_image_seed(seed: int, image_id: Any) -> int:
    """The 32-bit seed of one image's draws (its sentence permutation, and in the backend its question
    templates and answers), from the run seed and the image id only."""
    import hashlib

    digest = hashlib.sha256(f"glamm-res:{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
