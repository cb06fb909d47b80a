"""GLaMM's answer text → (clean caption, phrases, [SEG] places), and phrase ↔ mask pairing by order.

Upstream (`mbzuai-oryx/groundingLMM` eval/gcg/infer.py, `inference()`), in this exact order, on the decoded
output ids (prompt + answer, `skip_special_tokens=False`):

    text = decoded.replace("\\n", "").replace("  ", " ")      # one pass each: 5 spaces become 3
    text = text.split("ASSISTANT: ")[-1]
    caption = re.sub(r"<.*?>", "", text)                      # <p>, </p>, </s>, <s>, any <…> tag
    phrases = [p.strip() for p in re.findall(r"<p>(.*?)</p>", text)]
    caption = caption.replace("[SEG]", "")
    caption = " ".join(caption.split()).strip("'").strip()

eval/region_captioning/infer.py cleans its captions the same way (without the phrase list).

Pairing: upstream writes `phrases` and `pred_masks` ([SEG] generation order) as two independent lists;
eval/gcg/evaluate.py pairs phrase i with mask i by index and nothing checks the counts. `pair_phrases`
does the same: phrase i gets mask i; masks past the last phrase become `Prediction.extra_masks`; phrases
past the last mask stay without a mask. `Prediction.masks()` (phrase masks, then extras) is then exactly
upstream's `pred_masks` order, which COCOeval's tie order depends on.

Beyond upstream we also report where each phrase sits in the clean caption (a character span, found by
tracking every caption character back to the answer text) and where each textual [SEG] stood. A span is
given only when the caption text at that place equals the phrase as upstream reports it; a phrase holding
a tag or [SEG] (nested or unbalanced `<p>`), or runs of spaces the caption collapses, gets no span.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from gcgbench.api.types import Phrase, RLE

SEG_TOKEN = "[SEG]"
ANSWER_SEPARATOR = "ASSISTANT: "
TAG = re.compile(r"<.*?>")
PHRASE = re.compile(r"<p>(.*?)<\/p>")


@dataclass(frozen=True)
class GlammAnswer:
    """One parsed answer.

    `answer`: the text after "ASSISTANT: " (tags kept), what upstream's regexes run on; `caption`: the clean
    caption; `phrases`: upstream's phrase list; `spans[i]`: [start, end) of `phrases[i]` in `caption` or None;
    `seg_offsets[j]`: the caption offset where the j-th textual "[SEG]" stood (clamped to the caption).
    """

    answer: str
    caption: str
    phrases: tuple[str, ...]
    spans: tuple[tuple[int, int] | None, ...]
    seg_offsets: tuple[int, ...]


def answer_text(decoded: str) -> str:
    """Upstream's first three steps: drop newlines, halve double spaces once, keep what follows the last
    "ASSISTANT: "."""
    return decoded.replace("\n", "").replace("  ", " ").split(ANSWER_SEPARATOR)[-1]


def parse_glamm_output(decoded: str) -> GlammAnswer:
    """Parse the decoded output ids (prompt included) exactly as eval/gcg/infer.py does, plus spans."""
    text = answer_text(decoded)
    caption, origin, seg_offsets = _clean_with_origin(text)
    phrases, spans = [], []
    for match in PHRASE.finditer(text):
        group = match.group(1)
        phrase = group.strip()
        first = match.start(1) + (len(group) - len(group.lstrip()))
        phrases.append(phrase)
        spans.append(_span(caption, origin, phrase, first, first + len(phrase)))
    return GlammAnswer(text, caption, tuple(phrases), tuple(spans), tuple(seg_offsets))


def clean_caption(decoded: str) -> str:
    """eval/region_captioning/infer.py's caption: the GCG cleaning without the phrase list."""
    return parse_glamm_output(decoded).caption


def pair_phrases(parsed: GlammAnswer, masks: Sequence[RLE]) -> tuple[tuple[Phrase, ...], tuple[RLE, ...]]:
    """(phrases with the mask of the same index, masks no phrase claims), as eval/gcg/evaluate.py pairs them."""
    phrases = []
    for index, (text, span) in enumerate(zip(parsed.phrases, parsed.spans)):
        start, end = span if span is not None else (None, None)
        phrases.append(Phrase(text, (masks[index],) if index < len(masks) else (), start, end))
    return tuple(phrases), tuple(masks[len(parsed.phrases):])


def _clean_with_origin(text: str) -> tuple[str, list[int | None], list[int]]:
    """Upstream's caption cleaning, keeping for every caption character its index in `text` (None for the
    single spaces the whitespace join inserts) and the caption offsets where "[SEG]" was removed."""
    # re.sub(r"<.*?>", "", text): keep what lies between the tag matches
    kept: list[tuple[str, int]] = []
    position = 0
    for match in TAG.finditer(text):
        kept.extend((text[i], i) for i in range(position, match.start()))
        position = match.end()
    kept.extend((text[i], i) for i in range(position, len(text)))
    stripped = "".join(char for char, _ in kept)

    # .replace("[SEG]", ""): left to right, non-overlapping, no rescan (as str.replace)
    chars: list[tuple[str, int]] = []
    seg_marks: list[int] = []
    cursor = 0
    while cursor < len(stripped):
        if stripped.startswith(SEG_TOKEN, cursor):
            seg_marks.append(len(chars))
            cursor += len(SEG_TOKEN)
            continue
        chars.append(kept[cursor])
        cursor += 1

    # " ".join(s.split()): the non-whitespace characters, one space between words
    joined: list[tuple[str, int | None]] = []
    joined_end: list[int] = []   # per chars[k]: len(joined) once chars[k] is placed
    previous_space = False
    for char, source in chars:
        if char.isspace():
            previous_space = True
        else:
            if previous_space and joined:
                joined.append((" ", None))
            joined.append((char, source))
            previous_space = False
        joined_end.append(len(joined))

    # .strip("'").strip()
    caption = "".join(char for char, _ in joined)
    quoted = caption.strip("'")
    start = len(caption) - len(caption.lstrip("'"))
    final = quoted.strip()
    start += len(quoted) - len(quoted.lstrip())
    origin = [source for _, source in joined[start:start + len(final)]]
    # a [SEG] stands right after the caption text that precedes it
    offsets = [min(max((joined_end[mark - 1] if mark else 0) - start, 0), len(final)) for mark in seg_marks]
    return final, origin, offsets


def _span(caption: str, origin: list[int | None], phrase: str, first: int, last: int) -> tuple[int, int] | None:
    """The caption span whose characters come from text[first:last], if it reads exactly `phrase`."""
    inside = [k for k, source in enumerate(origin) if source is not None and first <= source < last]
    if not phrase or not inside:
        return None
    start, end = inside[0], inside[-1] + 1
    return (start, end) if caption[start:end] == phrase else None
