"""Panoptic Narrative Grounding ground truth (and a&s prediction files) read into Docs.

Files (PNG `README.md` names them; F-LMM `scripts/multiprocess_eval_png.py` gives this layout):

    coco/annotations/png_coco_val2017.json    list of narratives, in file order:
        [{image_id: str|int, annotator_id, caption: str,
          segments: [{utterance: str, segment_ids: [str|int …], plural: bool, noun: bool}, …]}, …]
    coco/annotations/panoptic_val2017.json    COCO panoptic: images[{id, file_name, height, width}],
        annotations[{image_id, file_name (the PNG), segments_info: [{id, category_id, …}]}],
        categories[{id, isthing, …}]
    coco/annotations/panoptic_val2017/<file_name>.png   segment id = R + 256·G + 256²·B (panopticapi
        `rgb2id`; the channels are cast to int32 first — plain uint8 arithmetic overflows under NumPy 2)
    coco/val2017/<images[].file_name>

How upstream reads them (BCV-Uniandes/PNG `data/pre_process.py` + `baseline/data/panoptic_narrative_grounding.py`;
F-LMM `flmm/datasets/png.py::PNGDataset`), and so how we do:
- one doc per narrative; a segment with a non-empty `segment_ids` is a grounded phrase, its GT mask the
  union of those panoptic segments (F-LMM sums `segm_map == id` and clips to 1); utterances with no
  segment ids are part of the caption but not scored;
- a narrative with no grounded phrase: the official dataloader drops it (its `labels` are all -2), F-LMM
  replaces it with a random other narrative. We keep it as a doc with no phrases (`truth["phrases"] == []`),
  and the task counts it in its notes rather than scoring it;
- the request carries every segment's `utterance` verbatim (`inputs["utterances"]`, ungrounded ones
  included) and each phrase its utterance index (`inputs["phrases"][i]["utterance"]`): a&s
  `aas/infer_attn_png.py` and F-LMM `flmm/datasets/png.py:123-141` encode each utterance on its own
  (`tokenizer.encode(utterance, add_special_tokens=False)`) and concatenate the ids;
- the caption is the narrative's `caption`, and each utterance is located in it in order (only
  whitespace or punctuation may lie between two); when that fails, the caption is rebuilt as the
  utterances joined by single spaces — what F-LMM effectively feeds its model — and
  `truth["caption_rebuilt"]` says so;
- per phrase we keep the `isthing` flag of each segment's category (in `segment_ids` order), the JSON
  `plural` and `noun` flags: the metric protocols (gcgbench.metrics.png) bucket phrases from these;
- doc ids: the image id when the file has one narrative for the image, else `<image_id>_<annotator_id>`
  (or `<image_id>_n<k>`, k the narrative's position among the image's narratives, when annotator ids are
  missing or repeat).

Not reproduced: the official pre-processing also drops narratives whose BERT word count disagrees
with the utterances' (`Narratives Excluded`), which needs the bert-base-uncased vocabulary.

a&s (Shengcao-Cao/groundLMM `aas/png.py`) writes its predictions as the narrative list itself, each grounded
segment given a `pd_mask` (COCO RLE, str counts); `read_aas_png_predictions` reads that file.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.api.jsonio import load_json, require


@dataclass(frozen=True)
class PanopticImage:
    """One image of the COCO panoptic file: its size, files, and segment id → category id."""

    image_id: int
    file_name: str
    height: int
    width: int
    png_name: str
    segment_categories: Mapping[int, int]


@dataclass(frozen=True)
class GroundedPhrase:
    """A grounded utterance: its span [start, end) in the caption and what the metrics need of it."""

    text: str
    start: int
    end: int
    utterance_index: int
    segment_ids: tuple[int, ...]
    plural: bool
    noun: bool


@dataclass(frozen=True)
class Narrative:
    index: int
    image_id: int
    annotator_id: Any
    caption: str
    caption_rebuilt: bool
    phrases: tuple[GroundedPhrase, ...]
    utterances: tuple[str, ...] = ()     # every segment's utterance as the file has it, grounded or not


def read_png_docs(narratives_path: Path, panoptic_path: Path, panoptic_png_dir: Path, image_dir: Path) -> list[Doc]:
    """One Doc per narrative of `narratives_path`, in file order, with union masks as RLE at image size."""
    narratives_path, panoptic_png_dir = Path(narratives_path), Path(panoptic_png_dir)
    narratives = read_narratives(narratives_path)
    images, category_is_thing = read_panoptic_index(Path(panoptic_path))
    for narrative in narratives:
        record = f"[{narrative.index}]"
        require(
            narrative.image_id in images, narratives_path, record,
            f"image_id {narrative.image_id} has no panoptic annotation in {Path(panoptic_path).name}",
        )
        segments = images[narrative.image_id].segment_categories
        for phrase in narrative.phrases:
            for segment_id in phrase.segment_ids:
                require(
                    segment_id in segments, narratives_path, f"{record}.segments[{phrase.utterance_index}]",
                    f"segment id {segment_id} is not in segments_info of image {narrative.image_id} in {Path(panoptic_path).name}",
                )
    masks = _union_masks(narratives, images, panoptic_png_dir, narratives_path)
    doc_ids = narrative_doc_ids(narratives)
    docs = []
    for narrative, doc_id in zip(narratives, doc_ids):
        image = images[narrative.image_id]
        truth_phrases = [
            {
                "utterance_index": phrase.utterance_index,
                "segment_ids": list(phrase.segment_ids),
                "segment_is_thing": [category_is_thing[image.segment_categories[s]] for s in phrase.segment_ids],
                "plural": phrase.plural,
                "noun": phrase.noun,
            }
            for phrase in narrative.phrases
        ]
        docs.append(Doc(
            doc_id=doc_id,
            image_path=str(Path(image_dir) / image.file_name),
            height=image.height,
            width=image.width,
            inputs={"caption": narrative.caption,
                    "phrases": [{"text": p.text, "start": p.start, "end": p.end, "utterance": p.utterance_index}
                                for p in narrative.phrases],
                    "utterances": list(narrative.utterances)},
            phrases=tuple(
                Phrase(p.text, (masks[(narrative.image_id, p.segment_ids)],), p.start, p.end) for p in narrative.phrases
            ),
            truth={"image_id": narrative.image_id, "annotator_id": narrative.annotator_id,
                   "narrative_index": narrative.index, "caption": narrative.caption,
                   "caption_rebuilt": narrative.caption_rebuilt, "phrases": truth_phrases},
        ))
    return docs


def read_panoptic_index(path: Path) -> tuple[dict[int, PanopticImage], dict[int, bool]]:
    """Images (those with a panoptic annotation) by id, and `isthing` by category id."""
    data = load_json(path, "COCO panoptic annotations")
    require(isinstance(data, dict), path, None, "expected a COCO panoptic JSON object")
    for key in ("images", "annotations", "categories"):
        require(isinstance(data.get(key), list), path, key, "missing or not a list")
        for index, item in enumerate(data[key]):
            require(isinstance(item, dict), path, f"{key}[{index}]", "expected a JSON object")
    category_is_thing: dict[int, bool] = {}
    for index, category in enumerate(data["categories"]):
        require(_is_int(category.get("id")) and "isthing" in category, path, f"categories[{index}]",
                "needs an integer 'id' and 'isthing'")
        category_is_thing[category["id"]] = bool(category["isthing"])
    image_entries: dict[int, Mapping[str, Any]] = {}
    for index, image in enumerate(data["images"]):
        record = f"images[{index}]"
        require(_is_int(image.get("id")), path, record, "'id' must be an integer")
        require(all(_is_int(image.get(key)) and image[key] > 0 for key in ("height", "width")), path, record,
                "needs positive integer 'height' and 'width'")
        require(isinstance(image.get("file_name"), str), path, record, "'file_name' must be a string")
        image_entries[image["id"]] = image
    images: dict[int, PanopticImage] = {}
    for index, ann in enumerate(data["annotations"]):
        record = f"annotations[{index}]"
        image_id = ann.get("image_id")
        require(image_id in image_entries, path, record, f"image_id {image_id!r} is not in 'images'")
        require(image_id not in images, path, record, f"second panoptic annotation for image {image_id}")
        require(isinstance(ann.get("file_name"), str), path, record, "'file_name' (the panoptic PNG) must be a string")
        require(isinstance(ann.get("segments_info"), list), path, record, "'segments_info' missing or not a list")
        segment_categories: dict[int, int] = {}
        for number, segment in enumerate(ann["segments_info"]):
            where = f"{record}.segments_info[{number}]"
            require(isinstance(segment, dict) and _is_int(segment.get("id")) and _is_int(segment.get("category_id")),
                    path, where, "needs integer 'id' and 'category_id'")
            require(segment["category_id"] in category_is_thing, path, where,
                    f"category_id {segment['category_id']} is not in 'categories'")
            segment_categories[segment["id"]] = segment["category_id"]
        entry = image_entries[image_id]
        images[image_id] = PanopticImage(image_id, entry["file_name"], entry["height"], entry["width"],
                                         ann["file_name"], segment_categories)
    return images, category_is_thing


def read_narratives(path: Path) -> list[Narrative]:
    """Parse `png_coco_*.json`; every malformed record is an InputError naming its index."""
    data = load_json(path, "PNG narratives (png_coco_*.json)")
    require(isinstance(data, list), path, None, "expected a JSON list of narratives")
    narratives = []
    for index, raw in enumerate(data):
        record = f"[{index}]"
        require(isinstance(raw, dict), path, record, "expected a narrative object")
        image_id = _parse_id(raw.get("image_id"))
        require(image_id is not None, path, record, f"'image_id' must be an integer or a digit string, got {raw.get('image_id')!r}")
        require(isinstance(raw.get("caption"), str), path, record, "'caption' must be a string")
        segments = raw.get("segments")
        require(isinstance(segments, list), path, record, "'segments' missing or not a list")
        utterances, grounded = [], []
        for number, segment in enumerate(segments):
            where = f"{record}.segments[{number}]"
            require(isinstance(segment, dict) and isinstance(segment.get("utterance"), str), path, where,
                    "expected an object with a string 'utterance'")
            ids = segment.get("segment_ids")
            require(isinstance(ids, list), path, where, "'segment_ids' missing or not a list")
            parsed = tuple(_parse_id(value) for value in ids)
            require(None not in parsed, path, where, f"'segment_ids' must be integers or digit strings, got {ids!r}")
            utterances.append(segment["utterance"])
            if parsed:
                for flag in ("plural", "noun"):
                    require(isinstance(segment.get(flag), bool), path, where, f"a grounded segment needs a boolean '{flag}'")
                require(len(set(parsed)) == len(parsed), path, where, f"repeated segment id in {ids!r}")
                grounded.append((number, parsed, segment["plural"], segment["noun"]))
        caption, spans, rebuilt = locate_utterances(raw["caption"], utterances)
        phrases = tuple(
            GroundedPhrase(caption[spans[n][0]:spans[n][1]], spans[n][0], spans[n][1], n, ids, plural, noun)
            for n, ids, plural, noun in grounded
        )
        narratives.append(Narrative(index, image_id, raw.get("annotator_id"), caption, rebuilt, phrases,
                                    tuple(utterances)))
    return narratives


def locate_utterances(caption: str, utterances: Sequence[str]) -> tuple[str, list[tuple[int, int]], bool]:
    """(caption, [start, end) of each utterance, rebuilt?): utterances found in order in `caption`
    with only whitespace/punctuation between them, else the caption rebuilt as their space-join."""
    spans, cursor = [], 0
    for utterance in utterances:
        text = utterance.strip()
        at = caption.find(text, cursor) if text else cursor
        if at < 0 or any(character.isalnum() for character in caption[cursor:at]):
            break
        spans.append((at, at + len(text)))
        cursor = at + len(text)
    else:
        return caption, spans, False
    spans, parts, cursor = [], [], 0
    for utterance in utterances:
        text = utterance.strip()
        if text and parts:
            cursor += 1
        spans.append((cursor, cursor + len(text)))
        if text:
            parts.append(text)
            cursor += len(text)
    return " ".join(parts), spans, True


def narrative_doc_ids(narratives: Sequence[Narrative]) -> list[str]:
    """`<image_id>` for an image's only narrative; `<image_id>_<annotator_id>` when it has several
    (`<image_id>_n<k>` when their annotator ids are missing or repeat)."""
    by_image: dict[int, list[Narrative]] = defaultdict(list)
    for narrative in narratives:
        by_image[narrative.image_id].append(narrative)
    ids: dict[int, str] = {}
    for image_id, group in by_image.items():
        annotators = [n.annotator_id for n in group]
        distinct = all(isinstance(a, (int, str)) and not isinstance(a, bool) for a in annotators) and \
            len({str(a) for a in annotators}) == len(annotators)
        for position, narrative in enumerate(group):
            if len(group) == 1:
                ids[narrative.index] = str(image_id)
            elif distinct:
                ids[narrative.index] = f"{image_id}_{narrative.annotator_id}"
            else:
                ids[narrative.index] = f"{image_id}_n{position}"
    return [ids[narrative.index] for narrative in narratives]


def panoptic_ids(png_path: Path) -> np.ndarray:
    """The (height, width) int64 segment-id map of a COCO panoptic PNG: R + 256·G + 256²·B."""
    from PIL import Image, UnidentifiedImageError

    if not png_path.is_file():
        raise InputError(png_path, None, "panoptic PNG not found")
    try:
        with Image.open(png_path) as image:
            rgb = np.asarray(image.convert("RGB")).astype(np.int64)  # never uint8 arithmetic: 256·G overflows
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(png_path, None, f"not a readable PNG image ({error})") from None
    return rgb[:, :, 0] + 256 * rgb[:, :, 1] + 256 * 256 * rgb[:, :, 2]


def _union_masks(
    narratives: Sequence[Narrative], images: Mapping[int, PanopticImage], png_dir: Path, narratives_path: Path
) -> dict[tuple[int, tuple[int, ...]], RLE]:
    """RLE of every (image, segment-id tuple) a phrase needs; each PNG is decoded once."""
    needed: dict[int, dict[tuple[int, ...], str]] = defaultdict(dict)
    for narrative in narratives:
        for phrase in narrative.phrases:
            where = f"[{narrative.index}].segments[{phrase.utterance_index}]"
            needed[narrative.image_id].setdefault(phrase.segment_ids, where)
    masks: dict[tuple[int, tuple[int, ...]], RLE] = {}
    for image_id, groups in needed.items():
        image = images[image_id]
        png_path = png_dir / image.png_name
        id_map = panoptic_ids(png_path)
        require(id_map.shape == (image.height, image.width), png_path, None,
                f"PNG size {list(id_map.shape)} != image size {[image.height, image.width]} (height, width) of image {image_id}")
        for segment_ids, where in groups.items():
            mask = np.zeros(id_map.shape, dtype=bool)
            for segment_id in segment_ids:
                pixels = id_map == segment_id
                require(bool(pixels.any()), png_path, f"segment id {segment_id}",
                        f"not present in this panoptic PNG (referenced by {narratives_path.name} {where})")
                mask |= pixels
            masks[(image_id, segment_ids)] = RLE.from_mask(mask)
    return masks


def read_aas_png_predictions(path: Path, docs: Sequence[Doc]) -> dict[str, Prediction]:
    """a&s `aas/png.py --output-json`: the narrative list with a `pd_mask` RLE on each grounded segment.

    Records pair with docs by position (`truth["narrative_index"]`); a grounded segment without
    `pd_mask` (a&s leaves narratives with no grounded phrase untouched) is an empty prediction.
    """
    data = load_json(Path(path), "a&s PNG prediction file")
    require(isinstance(data, list), path, None, "expected the a&s JSON list of narratives")
    predictions = {}
    for doc in docs:
        index = doc.truth["narrative_index"]
        record = f"[{index}]"
        require(index < len(data), path, None, f"has {len(data)} narratives; doc {doc.doc_id!r} is narrative {index}")
        raw = data[index]
        require(isinstance(raw, dict) and isinstance(raw.get("segments"), list), path, record,
                "expected a narrative object with 'segments'")
        require(_parse_id(raw.get("image_id")) == doc.truth["image_id"], path, record,
                f"image_id {raw.get('image_id')!r} != {doc.truth['image_id']} of the ground truth (narratives out of order?)")
        phrases = []
        for text_span, truth in zip(doc.inputs["phrases"], doc.truth["phrases"]):
            number = truth["utterance_index"]
            where = f"{record}.segments[{number}]"
            require(number < len(raw["segments"]) and isinstance(raw["segments"][number], dict), path, where,
                    "missing: the file does not follow the ground-truth narratives")
            mask = raw["segments"][number].get("pd_mask")
            masks = ()
            if mask is not None:
                rle = RLE.from_json(mask, path, f"{where}.pd_mask")
                require(rle.size == (doc.height, doc.width), path, f"{where}.pd_mask",
                        f"RLE size {list(rle.size)} != image size {[doc.height, doc.width]} (height, width)")
                masks = (rle,)
            phrases.append(Phrase(text_span["text"], masks, text_span["start"], text_span["end"]))
        predictions[doc.doc_id] = Prediction(doc.doc_id, doc.inputs["caption"], tuple(phrases))
    return predictions


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_id(value: Any) -> int | None:
    """An id given as an int or a string of digits (as png_coco_*.json stores them), else None."""
    if _is_int(value):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
