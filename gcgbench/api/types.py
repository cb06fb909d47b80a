"""Core types passed between stages: RLE masks, phrases, predictions, docs.

Every type round-trips losslessly through JSON (`to_json` / `from_json`); masks stay COCO compressed
RLE (pycocotools' string `counts`) until a metric needs pixels.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError


@dataclass(frozen=True)
class RLE:
    """A binary mask as COCO compressed RLE: `{"size": [height, width], "counts": str}`.

    `size` is (height, width) of the original image, as pycocotools stores it.
    """

    height: int
    width: int
    counts: str

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    def to_json(self) -> dict[str, Any]:
        return {"size": [self.height, self.width], "counts": self.counts}

    def to_coco(self) -> dict[str, Any]:
        """The dict pycocotools' C API accepts (counts as bytes)."""
        return {"size": [self.height, self.width], "counts": self.counts.encode("ascii")}

    @classmethod
    def from_json(cls, obj: Any, source: object = "<memory>", record: str | None = None) -> "RLE":
        """Read `{"size": [h, w], "counts": str|bytes|list}`; uncompressed (list) counts are compressed."""
        if not isinstance(obj, Mapping) or "size" not in obj or "counts" not in obj:
            raise InputError(source, record, f"expected an RLE object with 'size' and 'counts', got {_brief(obj)}")
        size = obj["size"]
        if (
            not isinstance(size, Sequence)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
        ):
            raise InputError(source, record, f"RLE 'size' must be [height, width] of non-negative ints, got {size!r}")
        height, width = int(size[0]), int(size[1])
        if height * width > MAX_RLE_PIXELS:
            raise InputError(source, record, f"RLE 'size' {height}x{width} exceeds {MAX_RLE_PIXELS} pixels "
                                             "(pycocotools counts pixels in 32 bits)")
        counts = obj["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        if isinstance(counts, list):
            counts = _compress_uncompressed(counts, height, width, source, record)
        if not isinstance(counts, str):
            raise InputError(source, record, f"RLE 'counts' must be a string or a list of ints, got {_brief(counts)}")
        rle = cls(height, width, counts)
        rle.validate(source, record)
        return rle

    def validate(self, source: object = "<memory>", record: str | None = None) -> None:
        """Check that the run lengths cover exactly height × width pixels."""
        try:
            runs = _uncompressed_counts(self)
        except ValueError as error:
            raise InputError(source, record, f"RLE 'counts' is not valid COCO RLE ({error})") from None
        if sum(runs) != self.height * self.width:
            raise InputError(
                source, record,
                f"RLE 'counts' covers {sum(runs)} pixels but size {self.height}x{self.width} has {self.height * self.width}",
            )

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> "RLE":
        """Encode a 2-D boolean/0-1 array of shape (height, width)."""
        from pycocotools import mask as mask_utils

        if mask.ndim != 2:
            raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return cls(int(encoded["size"][0]), int(encoded["size"][1]), encoded["counts"].decode("ascii"))

    def decode(self) -> np.ndarray:
        """The mask as a (height, width) uint8 array of 0/1."""
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self.to_coco())

    def area(self) -> int:
        from pycocotools import mask as mask_utils

        return int(mask_utils.area(self.to_coco()))


def _uncompressed_counts(rle: RLE) -> list[int]:
    """Decode the LEB128-like COCO string into run lengths (pycocotools' rleFrString, in Python)."""
    counts, value_runs, position = rle.counts, [], 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("truncated counts string")
            code = ord(counts[position]) - 48
            if code < 0 or code > 63:
                raise ValueError(f"character {counts[position]!r} outside the RLE alphabet")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and (code & 0x10):
                value |= -1 << (5 * shift)
        if len(value_runs) > 2:
            value += value_runs[-2]
        value_runs.append(value)
    if any(v < 0 for v in value_runs):
        raise ValueError("negative run length")
    return value_runs


MAX_RLE_PIXELS = 2**32 - 1  # pycocotools' RLE (`siz h, w, *cnts` as uint32) cannot count more


def _compress_uncompressed(counts: list, height: int, width: int, source: object, record: str | None) -> str:
    from pycocotools import mask as mask_utils

    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
        raise InputError(source, record, "uncompressed RLE 'counts' must be non-negative ints")
    if sum(counts) != height * width:
        raise InputError(
            source, record, f"uncompressed RLE covers {sum(counts)} pixels but size {height}x{width} has {height * width}"
        )
    return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)["counts"].decode("ascii")


def _masks_from_json(masks: Any, source: object, record: str) -> tuple[RLE, ...]:
    if not isinstance(masks, list):
        raise InputError(source, record, "must be a list of RLE objects")
    return tuple(RLE.from_json(m, source, f"{record}[{i}]") for i, m in enumerate(masks))


def _boxes_from_json(boxes: Any, source: object, record: str) -> tuple[tuple[float, float, float, float], ...] | None:
    """None, or a list of [x1, y1, x2, y2] boxes of finite numbers."""
    if boxes is None:
        return None
    if not isinstance(boxes, list):
        raise InputError(source, record, f"must be a list of [x1, y1, x2, y2] boxes, got {_brief(boxes)}")
    found = []
    for index, box in enumerate(boxes):
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
            raise InputError(source, f"{record}[{index}]", f"a box is 4 finite numbers [x1, y1, x2, y2], got {_brief(box)}")
        found.append(tuple(float(v) for v in box))
    return tuple(found)


def _brief(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Phrase:
    """A grounded phrase: its text, its character span [start, end) in the answer (None when the
    source gives no span, as GLaMM's prediction files do), and its masks (usually one)."""

    text: str
    masks: tuple[RLE, ...] = ()
    start: int | None = None
    end: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "masks": [mask.to_json() for mask in self.masks],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: object = "<memory>", record: str | None = None) -> "Phrase":
        if not isinstance(obj, Mapping) or not isinstance(obj.get("text"), str):
            raise InputError(source, record, f"expected a phrase object with a string 'text', got {_brief(obj)}")
        return cls(
            text=obj["text"],
            masks=_masks_from_json(obj.get("masks", []), source, f"{record}.masks" if record else "masks"),
            start=obj.get("start"),
            end=obj.get("end"),
        )


@dataclass(frozen=True)
class Prediction:
    """What a backend answered for one doc: text, grounded phrases, optional boxes, backend extras.

    `extra_masks` are masks no phrase claims: GLaMM pairs the i-th `<p>` phrase with the i-th [SEG]
    mask by order, so an answer with more [SEG] tokens than phrases leaves masks over; the official
    metrics treat those differently from phrase masks, so they are kept apart rather than dropped.
    `extras` holds JSON-native values only (e.g. attention peak coordinates), so a prediction
    survives `from_json(to_json(p)) == p` exactly.
    """

    doc_id: str
    text: str
    phrases: tuple[Phrase, ...] = ()
    extra_masks: tuple[RLE, ...] = ()
    boxes: tuple[tuple[float, float, float, float], ...] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "text": self.text,
            "phrases": [phrase.to_json() for phrase in self.phrases],
            "extra_masks": [mask.to_json() for mask in self.extra_masks],
            "boxes": None if self.boxes is None else [list(box) for box in self.boxes],
            "extras": dict(self.extras),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: object = "<memory>", record: str | None = None) -> "Prediction":
        if not isinstance(obj, Mapping) or not isinstance(obj.get("doc_id"), str) or not isinstance(obj.get("text"), str):
            raise InputError(source, record, f"expected a prediction with string 'doc_id' and 'text', got {_brief(obj)}")
        phrases = obj.get("phrases", [])
        if not isinstance(phrases, list):
            raise InputError(source, record, "'phrases' must be a list")
        within = f"{record} " if record else ""  # errors inside a phrase still name the line
        extras = obj.get("extras") or {}
        if not isinstance(extras, Mapping):
            raise InputError(source, record, f"'extras' must be an object, got {_brief(extras)}")
        return cls(
            doc_id=obj["doc_id"],
            text=obj["text"],
            phrases=tuple(Phrase.from_json(p, source, f"{within}phrases[{i}]") for i, p in enumerate(phrases)),
            extra_masks=_masks_from_json(obj.get("extra_masks", []), source, f"{within}extra_masks"),
            boxes=_boxes_from_json(obj.get("boxes"), source, f"{within}boxes"),
            extras=dict(extras),
        )

    def masks(self) -> list[RLE]:
        """All predicted masks in output order: phrase masks, then masks no phrase claimed."""
        return [mask for phrase in self.phrases for mask in phrase.masks] + list(self.extra_masks)


@dataclass(frozen=True)
class Doc:
    """One evaluation item: an image, what to ask about it, and the ground truth to score against.

    `truth` is task-family specific but JSON-native (captions, phrase texts, answers); masks live in
    `phrases` as RLE so they never need a dense copy until a metric decodes them.
    """

    doc_id: str
    image_path: str | None
    height: int
    width: int
    inputs: Mapping[str, Any] = field(default_factory=dict)
    phrases: tuple[Phrase, ...] = ()
    extra_masks: tuple[RLE, ...] = ()
    truth: Mapping[str, Any] = field(default_factory=dict)

    def masks(self) -> list[RLE]:
        """All ground-truth masks in file order: phrase masks, then masks with no label."""
        return [mask for phrase in self.phrases for mask in phrase.masks] + list(self.extra_masks)

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "image_path": self.image_path,
            "height": self.height,
            "width": self.width,
            "inputs": dict(self.inputs),
            "phrases": [phrase.to_json() for phrase in self.phrases],
            "extra_masks": [mask.to_json() for mask in self.extra_masks],
            "truth": dict(self.truth),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: object = "<memory>", record: str | None = None) -> "Doc":
        if not isinstance(obj, Mapping) or not isinstance(obj.get("doc_id"), str):
            raise InputError(source, record, f"expected a doc with a string 'doc_id', got {_brief(obj)}")
        return cls(
            doc_id=obj["doc_id"],
            image_path=obj.get("image_path"),
            height=int(obj["height"]),
            width=int(obj["width"]),
            inputs=dict(obj.get("inputs") or {}),
            phrases=tuple(Phrase.from_json(p, source, f"phrases[{i}]") for i, p in enumerate(obj.get("phrases", []))),
            extra_masks=_masks_from_json(obj.get("extra_masks", []), source, "extra_masks"),
            truth=dict(obj.get("truth") or {}),
        )


@dataclass(frozen=True)
class Request:
    """What a backend is asked for one doc.

    `kind` says what the backend must return:
    - "grounded_caption": free text with grounded phrases (GCG);
    - "segment": a mask for the text in `inputs["expression"]` (RES), returned as one phrase with its mask;
    - "segment_phrases": a mask for each phrase of `inputs["phrases"]` (spans of `inputs["caption"]`, PNG),
      returned as one phrase per requested phrase, in order;
    - "caption": free text only (image and region captioning; the region is `inputs["region"]`);
    - "answer": a short answer (VQA suites; options in `inputs["options"]` when multiple choice).
    """

    doc_id: str
    kind: str
    prompt: str
    image_path: str | None
    height: int
    width: int
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "kind": self.kind, "prompt": self.prompt, "image_path": self.image_path,
                "height": self.height, "width": self.width, "inputs": dict(self.inputs)}

    def content_hash(self) -> str:
        """sha256 of everything a backend sees except the image path (so moving the data keeps the cache)."""
        payload = self.to_json()
        payload.pop("image_path")
        return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
