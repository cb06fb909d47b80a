"""A PNG narrative as the pieces upstream tokenizes one by one, and which piece each requested phrase is.

a&s `aas/infer_attn_png.py` and F-LMM `flmm/datasets/png.py:123-141` encode every segment's `utterance` of
`png_coco_*.json` on its own (`tokenizer.encode(utterance, add_special_tokens=False)`), grounded or not, and
concatenate the ids; a grounded segment's tokens are its phrase's tokens. PNG requests carry the utterances
verbatim (`inputs["utterances"]`, and per phrase its `utterance` index: `gcgbench/data/png.py`). A request
without them (a task of one's own) is cut at its phrase spans instead: the gaps between phrases, stripped,
become ungrounded pieces (the nearest we can get without the utterances).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence


def narrative_pieces(inputs: Mapping[str, Any]) -> tuple[list[str], list[int | None]]:
    """(pieces in order, the piece index of each requested phrase or None when it has no text)."""
    phrases: Sequence[Mapping[str, Any]] = inputs.get("phrases") or []
    utterances = inputs.get("utterances")
    if isinstance(utterances, list) and all(isinstance(p.get("utterance"), int) and 0 <= p["utterance"] < len(utterances)
                                            for p in phrases):
        return [str(u) for u in utterances], [int(p["utterance"]) for p in phrases]
    caption = str(inputs.get("caption", ""))
    pieces: list[str] = []
    owners: list[int | None] = []
    cursor = 0
    for phrase in phrases:
        text, start, end = str(phrase["text"]), phrase.get("start"), phrase.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and cursor <= start <= end <= len(caption)):
            found = caption.find(text, cursor)
            start, end = (found, found + len(text)) if found >= 0 else (cursor, cursor)
        gap = caption[cursor:start].strip()
        if gap:
            pieces.append(gap)
        pieces.append(caption[start:end] if end > start else text)
        owners.append(len(pieces) - 1)
        cursor = max(cursor, end)
    tail = caption[cursor:].strip()
    if tail:
        pieces.append(tail)
    return pieces, owners


def phrase_span(caption: str, phrase: Mapping[str, Any]) -> tuple[int, int]:
    """A requested phrase's [start, end) in the narrative; found by text when the request gives no span."""
    if phrase.get("start") is not None and phrase.get("end") is not None:
        return int(phrase["start"]), int(phrase["end"])
    start = caption.find(phrase["text"])
    return (start, start + len(phrase["text"])) if start >= 0 else (0, 0)
