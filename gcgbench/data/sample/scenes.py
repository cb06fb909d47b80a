"""Deterministic synthetic scenes for the bundled sample data: 1–3 coloured shapes on a background.

A scene is fully decided by its index and `SEED` (numpy `Generator` seeded with `[SEED, index]`), so
scene 5 is the same whether 6 or 600 scenes are made, and nothing depends on time or set ordering.

Geometry is defined by COCO polygons; a shape's mask is pycocotools' rasterisation of its polygon
and the image is painted from those masks, so the polygon in a RefCOCO `instances.json`, the RLE in
a GranD-f mask file, the segment in a panoptic PNG and the drawn pixels are the same pixels.
Shapes sit in their own vertical slot left to right (x-ranges never overlap), so "left of" is always
true, masks never overlap, and the top-left `TEXT_BOX` stays free for the number TextVQA asks about.

Besides pixels a scene carries its language: a GCG caption with grounded phrase spans, referring
expressions in RefCOCO / RefCOCO+ / RefCOCOg style, a PNG narrative (things, background stuff,
singular and plural phrases) and short questions with answers for the VQA-style suites.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

SEED = 20240611
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 90, 220), "yellow": (240, 200, 30),
}
COLOR_NAMES = ("red", "green", "blue", "yellow")
KINDS = ("circle", "square", "triangle")
KIND_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}
KIND_CATEGORY_IDS = {"circle": 1, "square": 2, "triangle": 3}
BACKGROUNDS: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("gray", (190, 190, 190)), ("beige", (228, 216, 188)), ("white", (244, 244, 244)),
)
# (height, width); cycled by scene index so square, wide and tall images all occur.
IMAGE_SIZES = ((64, 64), (64, 96), (96, 64), (80, 112), (96, 128), (128, 96), (72, 72), (64, 128))
TEXT_BOX = (0, 0, 18, 14)  # x0, y0, x1, y1 (exclusive) kept free of shapes for the printed number
TEXT_RGB = (20, 20, 20)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
CIRCLE_VERTICES = 24
_DIGIT_GLYPHS = {  # 3×5 bitmap digits, drawn at 2× scale
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
}


@dataclass(frozen=True)
class Shape:
    """One filled shape; `half_size` is the circle radius / half the square side / half the triangle base."""

    kind: str
    color: str
    center_x: int
    center_y: int
    half_size: int

    @property
    def name(self) -> str:
        return f"{self.color} {self.kind}"

    @property
    def category_id(self) -> int:
        return KIND_CATEGORY_IDS[self.kind]

    def polygon(self) -> list[float]:
        """COCO polygon `[x1, y1, x2, y2, ...]`, rounded to 2 decimals exactly as written to JSON."""
        x, y, s = self.center_x, self.center_y, self.half_size
        if self.kind == "square":
            points = [(x - s, y - s), (x + s, y - s), (x + s, y + s), (x - s, y + s)]
        elif self.kind == "triangle":
            points = [(x, y - s), (x + s, y + s), (x - s, y + s)]
        else:
            angles = 2 * np.pi * np.arange(CIRCLE_VERTICES) / CIRCLE_VERTICES
            points = [(x + s * float(np.cos(a)), y + s * float(np.sin(a))) for a in angles]
        return [round(float(v), 2) for point in points for v in point]

    def mask(self, height: int, width: int) -> np.ndarray:
        """pycocotools' rasterisation of `polygon()`: (height, width) uint8 of 0/1."""
        from pycocotools import mask as mask_utils

        rles = mask_utils.frPyObjects([self.polygon()], height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(np.uint8)


@dataclass(frozen=True)
class ShapeGroup:
    """Shapes sharing colour and kind, named once: "a red circle" or "two red circles"."""

    color: str
    kind: str
    members: tuple[int, ...]

    @property
    def plural(self) -> bool:
        return len(self.members) > 1

    @property
    def phrase(self) -> str:
        if self.plural:
            return f"{NUMBER_WORDS[len(self.members)]} {self.color} {KIND_PLURALS[self.kind]}"
        return f"a {self.color} {self.kind}"


@dataclass(frozen=True)
class GroundedPhrase:
    """A phrase of a caption: its text, char span [start, end) and the shapes its mask covers."""

    text: str
    start: int
    end: int
    members: tuple[int, ...]


@dataclass(frozen=True)
class NarrativeSegment:
    """One PNG utterance: a noun phrase grounded in shapes (things) or the background (stuff), or filler."""

    utterance: str
    noun: bool
    members: tuple[int, ...] = ()
    background: bool = False

    @property
    def plural(self) -> bool:
        return len(self.members) > 1


@dataclass(frozen=True)
class Question:
    """A short question (lower case, as TextVQA stores them) with its answer and VQA type labels."""

    text: str
    answer: str
    answer_type: str  # VQAv2: "yes/no", "number" or "other"
    question_type: str  # VQAv2 question-type prefix
    full_answer: str  # GQA's `fullAnswer`


@dataclass(frozen=True)
class Scene:
    """One sample image: size, background, shapes sorted left to right, and the number printed in its corner."""

    index: int
    height: int
    width: int
    background_name: str
    textured: bool
    shapes: tuple[Shape, ...]
    number: int

    @cached_property
    def shape_masks(self) -> tuple[np.ndarray, ...]:
        return tuple(shape.mask(self.height, self.width) for shape in self.shapes)

    def background_mask(self) -> np.ndarray:
        covered = np.zeros((self.height, self.width), dtype=np.uint8)
        for mask in self.shape_masks:
            covered |= mask
        return (1 - covered).astype(np.uint8)

    def union_mask(self, members: tuple[int, ...]) -> np.ndarray:
        mask = np.zeros((self.height, self.width), dtype=np.uint8)
        for member in members:
            mask |= self.shape_masks[member]
        return mask

    def render(self, with_number: bool = False) -> np.ndarray:
        """The image as (height, width, 3) uint8: background (plus light noise if textured), shapes, number."""
        base = np.array(dict(BACKGROUNDS)[self.background_name], dtype=np.int16)
        image = np.broadcast_to(base, (self.height, self.width, 3)).copy()
        if self.textured:
            noise = np.random.default_rng([SEED, self.index, 1]).integers(-6, 7, size=(self.height, self.width, 1))
            image = image + noise.astype(np.int16)
        image = np.clip(image, 0, 255).astype(np.uint8)
        for shape, mask in zip(self.shapes, self.shape_masks):
            image[mask.astype(bool)] = COLORS[shape.color]
        if with_number:
            _draw_number(image, str(self.number))
        return image

    def groups(self) -> tuple[ShapeGroup, ...]:
        """Shapes grouped by (colour, kind), in the left-to-right order of each group's first member."""
        order: list[tuple[str, str]] = []
        members: dict[tuple[str, str], list[int]] = {}
        for position, shape in enumerate(self.shapes):
            key = (shape.color, shape.kind)
            if key not in members:
                order.append(key)
                members[key] = []
            members[key].append(position)
        return tuple(ShapeGroup(color, kind, tuple(members[(color, kind)])) for color, kind in order)

    def caption(self) -> tuple[str, tuple[GroundedPhrase, ...]]:
        """GCG caption listing the shapes left to right, and its phrases with spans and shape members."""
        groups = self.groups()
        pieces: list[tuple[str, ShapeGroup | None]] = [(groups[0].phrase, groups[0])]
        if len(groups) == 1:
            pieces.append((f" on a {self.background_name} background", None))
        else:
            others = [m for group in groups[1:] for m in group.members]
            leftmost = max(groups[0].members) < min(others)
            pieces.append((" to the left of " if leftmost else " and ", None))
            for position, group in enumerate(groups[1:]):
                if position:
                    pieces.append((" and ", None))
                pieces.append((group.phrase, group))
        pieces.append((".", None))
        text, phrases = "", []
        for piece, group in pieces:
            if group is not None:
                phrases.append(GroundedPhrase(piece, len(text), len(text) + len(piece), group.members))
            text += piece
        return text, tuple(phrases)

    def referring_expressions(self, style: str) -> list[list[str]]:
        """Expressions per shape (index-aligned with `shapes`), lower case; empty where none identifies it.

        `refcoco`: appearance and location words; `refcoco+`: appearance only (no location words, as
        RefCOCO+ was collected); `refcocog`: longer relational sentences.
        """
        expressions = []
        for position, shape in enumerate(self.shapes):
            same_pair = [i for i, s in enumerate(self.shapes) if (s.color, s.kind) == (shape.color, shape.kind)]
            kind_unique = sum(s.kind == shape.kind for s in self.shapes) == 1
            color_unique = sum(s.color == shape.color for s in self.shapes) == 1
            if style == "refcoco+":
                found = [shape.name] if len(same_pair) == 1 else []
                if len(same_pair) == 1 and color_unique:
                    found.append(f"{shape.color} one")
                if kind_unique:
                    found.append(shape.kind)
            elif style == "refcoco":
                side = "left" if same_pair.index(position) == 0 else "right"
                found = [f"the {shape.name}" if len(same_pair) == 1 else f"the {side} {shape.name}"]
                found += [f"the {word} shape"] if (word := self.position_word(position)) else []
                if kind_unique and len(self.shapes) > 1:
                    found.append(f"the {shape.kind}")
            elif style == "refcocog":
                found = [self._relational_sentence(position)]
                if len(same_pair) == 1:
                    found.append(f"a {shape.name} in the picture")
            else:
                raise ValueError(f"unknown referring-expression style {style!r}")
            expressions.append(found)
        return expressions

    def narrative(self) -> tuple[NarrativeSegment, ...]:
        """PNG narrative: an ungrounded noun ("this image"), the background as stuff, each group as things."""
        segments = [
            NarrativeSegment("In", False), NarrativeSegment("this image", True),
            NarrativeSegment("we can see", False),
            NarrativeSegment(f"the {self.background_name} background", True, background=True),
            NarrativeSegment("with", False),
        ]
        for position, group in enumerate(self.groups()):
            if position:
                segments.append(NarrativeSegment("and", False))
            segments.append(NarrativeSegment(group.phrase, True, group.members))
        segments.append(NarrativeSegment("on it.", False))
        return tuple(segments)

    def questions(self) -> dict[str, Question]:
        """The questions the VQA-style writers draw from, keyed by what they test."""
        count = len(self.shapes)
        found: dict[str, Question] = {
            "count": Question("how many shapes are there?", str(count), "number", "how many",
                              f"There {'is' if count == 1 else 'are'} {NUMBER_WORDS[count]} "
                              f"shape{'' if count == 1 else 's'}."),
            "number": Question("what number is written in the corner?", str(self.number), "number", "what number is",
                               f"The number is {self.number}."),
        }
        unique_kind = next((s for s in self.shapes if sum(o.kind == s.kind for o in self.shapes) == 1), None)
        if unique_kind is not None:
            found["color"] = Question(f"what color is the {unique_kind.kind}?", unique_kind.color, "other",
                                      "what color is the", f"The {unique_kind.kind} is {unique_kind.color}.")
        present = self.index % 2 == 0
        color, kind = (self.shapes[0].color, self.shapes[0].kind) if present else self.absent_objects()[0]
        full_answer = f"Yes, there is a {color} {kind}." if present else f"No, there is no {color} {kind}."
        found["presence"] = Question(f"is there a {color} {kind} in the image?", "yes" if present else "no",
                                     "yes/no", "is there a", full_answer)
        groups = [g for g in self.groups() if not g.plural]
        if len(groups) >= 2:
            first, second = (self.shapes[groups[0].members[0]], self.shapes[groups[1].members[0]])
            left, right = (first, second) if present else (second, first)
            answer = "yes" if present else "no"
            found["relation"] = Question(f"is the {left.name} to the left of the {right.name}?", answer, "yes/no",
                                         "is the", f"{answer.capitalize()}, the {first.name} is to the left of the "
                                         f"{second.name}.")
            side = "left" if first.center_x < self.width / 2 else "right"
            found["side"] = Question(f"on which side of the image is the {first.name}?", side, "other", "which",
                                     f"The {first.name} is on the {side} of the image.")
        return found

    def absent_objects(self) -> list[tuple[str, str]]:
        """(colour, kind) pairs not in the scene, in a fixed order: same kind or same colour as a present
        shape first (POPE's adversarial negatives), then the rest."""
        present = {(s.color, s.kind) for s in self.shapes}
        absent = [(c, k) for k in KINDS for c in COLOR_NAMES if (c, k) not in present]
        related = [p for p in absent if any(p[0] == c or p[1] == k for c, k in present)]
        return related + [p for p in absent if p not in related]

    def panoptic_segment_ids(self) -> list[int]:
        """Distinct panoptic ids in [1, 2**24) for the shapes, then the background: all three PNG channels used."""
        rng = np.random.default_rng([SEED, self.index, 2])
        ids: list[int] = []
        while len(ids) < len(self.shapes) + 1:
            candidate = int(rng.integers(1, 2**24))
            if candidate not in ids:
                ids.append(candidate)
        return ids

    def pope_negative(self, category: str, frequency: dict[tuple[str, str], int]) -> tuple[str, str]:
        """An absent (colour, kind) as POPE samples negatives: `adversarial` shares a colour or kind with a
        present shape, `popular` is the most frequent in the suite (`frequency`), `random` is drawn."""
        absent = self.absent_objects()
        if category == "adversarial":
            return absent[0]
        if category == "popular":
            return max(absent, key=lambda pair: (frequency.get(pair, 0), -absent.index(pair)))
        return absent[int(np.random.default_rng([SEED, self.index, 3]).integers(len(absent)))]

    def position_word(self, position: int) -> str | None:
        count = len(self.shapes)
        if count == 2:
            return ("left", "right")[position]
        if count == 3:
            return ("leftmost", "middle", "rightmost")[position]
        return None

    def _relational_sentence(self, position: int) -> str:
        shape = self.shapes[position]
        twins = [i for i, s in enumerate(self.shapes) if (s.color, s.kind) == (shape.color, shape.kind)]
        if len(twins) > 1:
            side = "left" if twins.index(position) == 0 else "right"
            return f"the {side} one of the {NUMBER_WORDS[len(twins)]} {shape.color} {KIND_PLURALS[shape.kind]}"
        if position + 1 < len(self.shapes):
            return f"the {shape.name} to the left of the {self.shapes[position + 1].name}"
        if position > 0:
            return f"the {shape.name} to the right of the {self.shapes[position - 1].name}"
        return f"the {shape.name} on a {self.background_name} background"


def human_answers(question: Question) -> list[str]:
    """Ten VQA annotator answers with the disagreements the official scorer must normalise: number
    words for counts, a capitalised and a dissenting answer for yes/no, identical answers otherwise
    (where the official scorer normalises nothing)."""
    if question.answer_type == "number":
        return [question.answer] * 7 + [NUMBER_WORDS[int(question.answer)]] * 2 + [str(int(question.answer) + 1)]
    if question.answer_type == "yes/no":
        other = "no" if question.answer == "yes" else "yes"
        return [question.answer] * 8 + [question.answer.capitalize(), other]
    return [question.answer] * 10


def make_scene(index: int) -> Scene:
    """Scene number `index`: 1, 2 or 3 shapes by `index % 3`; two in every six repeat a colour+kind."""
    rng = np.random.default_rng([SEED, index])
    height, width = IMAGE_SIZES[index % len(IMAGE_SIZES)]
    count = (1, 2, 3)[index % 3]
    repeat = index % 6 in (4, 5)  # one even, one odd index: both GranD-f splits get a plural
    count = max(count, 2) if repeat else count
    pairs = [(c, k) for k in KINDS for c in COLOR_NAMES]
    chosen = [pairs[i] for i in rng.permutation(len(pairs))[:count]]
    if repeat:
        chosen[int(rng.integers(1, count))] = chosen[0]
    slot = width / count
    shapes = []
    for position, (color, kind) in enumerate(chosen):
        largest = max(6, min(int(slot / 2) - 2, min(height, width) // 4))
        half = int(rng.integers(6, largest + 1))
        room = max(0, int(slot / 2) - half - 2)
        center_x = int(position * slot + slot / 2) + int(rng.integers(-room, room + 1))
        center_y = int(rng.integers(half + 2, height - half - 2))
        if center_x - half - 1 < TEXT_BOX[2] and center_y - half - 1 < TEXT_BOX[3]:
            center_y = max(center_y, TEXT_BOX[3] + half + 2)
        shapes.append(Shape(kind, color, center_x, center_y, half))
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))][0]
    number = int(rng.integers(10, 100))
    return Scene(index, height, width, background, index % 2 == 1, tuple(shapes), number)


def make_scenes(count: int) -> list[Scene]:
    return [make_scene(index) for index in range(count)]


def _draw_number(image: np.ndarray, digits: str, scale: int = 2) -> None:
    """Paint `digits` with the 3×5 bitmap font into the top-left TEXT_BOX, in place."""
    x0, y0 = TEXT_BOX[0] + 2, TEXT_BOX[1] + 2
    for position, digit in enumerate(digits):
        for row, bits in enumerate(_DIGIT_GLYPHS[digit]):
            for column, bit in enumerate(bits):
                if bit == "1":
                    x = x0 + position * 4 * scale + column * scale
                    y = y0 + row * scale
                    image[y:y + scale, x:x + scale] = TEXT_RGB
