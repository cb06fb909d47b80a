"""ReasonSeg (LISA, dvlab-research/LISA @3cb2d43): one image and one LabelMe-style JSON per sample.

Sources: utils/data_processing.py:9 `get_mask_from_json` (:41 the area order, :52 the ignore value),
utils/dataset.py:386 the query kept (`[sampled_sents[0]]`), :398/:405 the two prompts.

Layout (LISA README "Dataset" and `utils/dataset.py::ValDataset`, which globs
`<dataset_dir>/reason_seg/ReasonSeg/<split>/*.jpg` and reads `image_path.replace(".jpg", ".json")`):

    reason_seg/ReasonSeg/{train,val,test}/<stem>.jpg
    reason_seg/ReasonSeg/{train,val,test}/<stem>.json
        {"text": [instruction, ...], "is_sentence": bool,
         "shapes": [{"label": "target" | "ignore" | "flag" ..., "points": [[x, y], ...], ...}], ...}

The tasks also accept the release folder at `ReasonSeg/<split>/` directly under the data root
(`alternatives:` of `tasks/reasonseg_*.yaml`).

What is read, exactly as LISA reads it:

* the text LISA's validation scores: `ValDataset.__getitem__` keeps `sampled_sents = [text[0]]` and
  prompts with `text.strip()` (LISA `utils/dataset.py`); `is_sentence` picks the prompt form;
* the ground truth of `utils/data_processing.py::get_mask_from_json`: shapes labelled "flag"
  (case-insensitive) are dropped; the rest are drawn largest first (area = pixels of the shape drawn
  alone; order `np.argsort(areas)[::-1]`, numpy's own sort, so ties fall as they fall upstream), each
  with `cv2.polylines(mask, int32 points, closed, value, thickness 1)` then `cv2.fillPoly`, value 255
  when "ignore" is in the lower-cased label and 1 otherwise — so a later (smaller) shape overwrites an
  earlier one. Pixels of value 1 are the target, value 255 are left out of scoring
  (`intersectionAndUnionGPU(..., ignore_index=255)`); `target` and `ignore` here are those two
  disjoint pixel sets. The JSON is read as UTF-8, else cp1252, as upstream.
* the image size is the decoded image's, as `cv2.imread` gives it (EXIF orientations 5-8 swap height
  and width), read from the header only.

Departures, each recorded in `gt_issue` (never silent): a `text` that is a plain string is taken
whole (upstream's `text[0]` would take its first character).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE
from gcgbench.api.jsonio import require

SPLITS = ("val", "test")
IGNORE_VALUE = 255  # LISA ReasonSegDataset.ignore_label / get_mask_from_json label_value for "ignore"
TARGET_VALUE = 1


@dataclass(frozen=True)
class ReasonSegSample:
    """One ReasonSeg image: the instruction LISA scores, its form, and the target / ignored pixels."""

    stem: str
    image_file: str
    json_file: str
    height: int
    width: int
    text: str  # text[0].strip(), the query ValDataset scores
    texts: tuple[str, ...]  # every instruction of the file
    is_sentence: bool
    target: RLE
    ignore: RLE
    gt_issue: str | None = None


def read_reasonseg(folder: Path) -> list[ReasonSegSample]:
    """Every `<stem>.jpg` of `folder` with its `<stem>.json`, sorted by stem (LISA's glob order is the
    file system's; the metrics do not depend on it).

    Drawing the masks of a full split takes a while, and preflight plus the test, short and long tasks
    read the same folder, so a read is kept while no image or JSON of the folder changes (name, size,
    modification time).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, None, "ReasonSeg split folder not found (expected reason_seg/ReasonSeg/<split>/ "
                                       "or ReasonSeg/<split>/ under the data root)")
    images = sorted(folder.glob("*.jpg"))
    require(bool(images), folder, None, "no *.jpg images in this ReasonSeg split folder")
    return list(_read_all(tuple(images), _fingerprint(images)))


@lru_cache(maxsize=4)
def _read_all(images: tuple[Path, ...], fingerprint: tuple[Any, ...]) -> tuple[ReasonSegSample, ...]:
    return tuple(read_sample(image) for image in images)


def _fingerprint(images: list[Path]) -> tuple[Any, ...]:
    found = []
    for path in images + [image.with_suffix(".json") for image in images]:
        try:
            stat = path.stat()
        except OSError:
            found.append((str(path), None))
            continue
        found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def read_sample(image_path: Path) -> ReasonSegSample:
    json_path = image_path.with_suffix(".json")
    if not json_path.is_file():
        raise InputError(json_path, None, f"annotation of {image_path.name} not found (LISA reads <stem>.json)")
    anno = _load(json_path)
    require(isinstance(anno, dict), json_path, None, "expected a JSON object with text, is_sentence, shapes")
    issue = None
    text = anno.get("text")
    if isinstance(text, str):
        texts, issue = (text,), "'text' is a string, taken whole (LISA's text[0] would take its first character)"
    else:
        require(isinstance(text, list) and bool(text) and all(isinstance(t, str) for t in text), json_path, "text",
                f"must be a non-empty list of instruction strings, got {_brief(text)}")
        texts = tuple(text)
    is_sentence = anno.get("is_sentence")
    require(isinstance(is_sentence, bool), json_path, "is_sentence", f"must be true or false, got {_brief(is_sentence)}")
    shapes = anno.get("shapes")
    require(isinstance(shapes, list), json_path, "shapes", f"must be a list of polygons, got {_brief(shapes)}")
    height, width = image_size(image_path)
    mask = lisa_mask(shapes, height, width, json_path)
    return ReasonSegSample(
        stem=image_path.stem, image_file=str(image_path), json_file=str(json_path), height=height, width=width,
        text=texts[0].strip(), texts=texts, is_sentence=is_sentence,
        target=RLE.from_mask((mask == TARGET_VALUE).astype(np.uint8)),
        ignore=RLE.from_mask((mask == IGNORE_VALUE).astype(np.uint8)), gt_issue=issue,
    )


def lisa_mask(shapes: list[Any], height: int, width: int, path: Path) -> np.ndarray:
    """LISA `get_mask_from_json`'s (height, width) uint8 mask: 0 background, 1 target, 255 ignore."""
    import cv2

    polygons: list[tuple[str, np.ndarray]] = []
    areas = []
    for index, shape in enumerate(shapes):
        where = f"shapes[{index}]"
        require(isinstance(shape, Mapping), path, where, "expected an object with 'label' and 'points'")
        label = shape.get("label")
        require(isinstance(label, str), path, where, f"'label' must be a string, got {_brief(label)}")
        if label.lower() == "flag":  # "meaningless deprecated annotations" upstream
            continue
        points = _points(shape.get("points"), path, where)
        alone = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(alone, points, True, 1, 1)
        cv2.fillPoly(alone, points, 1)
        areas.append(alone.sum())
        polygons.append((label, points))
    mask = np.zeros((height, width), dtype=np.uint8)
    for position in list(np.argsort(areas)[::-1].astype(np.int32)):
        label, points = polygons[position]
        value = IGNORE_VALUE if "ignore" in label.lower() else TARGET_VALUE
        cv2.polylines(mask, points, True, value, 1)
        cv2.fillPoly(mask, points, value)
    return mask


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of the image as `cv2.imread` decodes it (EXIF orientation applied), from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(path, None, f"unreadable image ({error})") from None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def annotations_sha256(samples: list[ReasonSegSample]) -> str:
    """One sha256 over every scored JSON file (name and bytes, in stem order): the split's provenance."""
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(Path(sample.json_file).name.encode() + b"\0")
        digest.update(hashlib.sha256(Path(sample.json_file).read_bytes()).digest())
    return digest.hexdigest()


def _load(path: Path) -> Any:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # upstream retries with encoding="cp1252"
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(path, None, "neither UTF-8 nor cp1252 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, f"line {error.lineno}", f"not valid JSON ({error.msg})") from None


def _points(points: Any, path: Path, where: str) -> np.ndarray:
    """`np.array([points], dtype=np.int32)` as upstream (coordinates truncated toward zero)."""
    valid = isinstance(points, list) and bool(points) and all(
        isinstance(p, list) and len(p) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in p)
        for p in points
    )
    require(valid, path, f"{where}.points", f"must be a non-empty list of [x, y] numbers, got {_brief(points)}")
    return np.array([points], dtype=np.float64).astype(np.int32)


def _brief(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
