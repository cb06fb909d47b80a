"""METEOR 1.5's alignment: the matchers, then the jar's beam search over their matches.

Restated from cmu-mtlab/meteor src/edu/cmu/meteor/aligner/{Aligner,PartialAlignment}.java
(`Aligner.align`, `resolve`, `getCountAndChunks`), including its quirks, which decide ties:
- identical sentences (equal word keys) run the exact matcher only;
- a reference start with exactly one match whose words no other match covers is fixed before the search;
- beam of 40 partial alignments per reference position, sorted (stably, like `Collections.sort`) by
  `Constants.PARTIAL_COMPARE_TOTAL`: more weighted matches, then fewer chunks, then less distance; the
  weights used for searching are 1, 0.5, 0.5, 0.5 (`MeteorScorer.loadConfiguration`), added to the
  INTEGER fields `matches1`/`matches2` (Java's `int += double` truncates after each addition);
- extending a path with a match adds the distance to the path being extended, not to the new path, so
  later extensions and the "skip this word" path inherit it;
- a path at a used word that is not inside its current match and has no fixed match there is dropped.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Sequence

from gcgbench.metrics.meteor.matchers import (
    Match,
    ParaphraseTable,
    Stage,
    match_exact,
    match_paraphrase,
    match_stem,
    match_synonym,
)
from gcgbench.metrics.meteor.resources import Synonyms

BEAM_SIZE = 40
SEARCH_WEIGHTS = (1.0, 0.5, 0.5, 0.5)  # exact, stem, synonym, paraphrase (MeteorScorer.loadConfiguration)


# A partial alignment (`PartialAlignment`) is a list, copied with list(): the sort key first.
NEG_TOTAL, CHUNKS, DISTANCE, IDX, LAST_END, USED1, USED2, CHOSEN, MATCHES1, MATCHES2 = range(10)


def _new_path(used1: int, used2: int) -> list:
    """Used words are bit masks; the matches the search chose are a linked list (CHOSEN), since the jar
    only ever looks up the fixed matches of the start path in its `matches` array."""
    return [0, 0, 0, 0, -1, used1, used2, None, 0, 0]


def _take(path: list, match: Match) -> None:
    """The statistics update shared by a fixed match and a newly chosen one (without the distance)."""
    weight = SEARCH_WEIGHTS[match.module]
    path[MATCHES1] = int(path[MATCHES1] + match.match_length * weight)  # Java: int += double
    path[MATCHES2] = int(path[MATCHES2] + match.length * weight)
    path[NEG_TOTAL] = -(path[MATCHES1] + path[MATCHES2])
    if path[LAST_END] != -1 and match.match_start != path[LAST_END]:
        path[CHUNKS] += 1
    path[IDX] = match.start + match.length
    path[LAST_END] = match.match_start + match.match_length


def _masks(match: Match) -> tuple[int, int]:
    """Bit masks of the test and reference words a match covers."""
    return ((1 << match.match_length) - 1) << match.match_start, ((1 << match.length) - 1) << match.start


_rank = operator.itemgetter(NEG_TOTAL, CHUNKS, DISTANCE)  # PARTIAL_COMPARE_TOTAL as a sort key


@dataclass
class Alignment:
    """What `MeteorScorer.getMeteorStats(Alignment)` reads: per-stage content/function matches on each
    side, chunks, and the function-word counts."""

    words1: list[str]
    words2: list[str]
    matches: list[Match | None] = field(default_factory=list)
    content1: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    content2: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    function1: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    function2: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    function_words1: int = 0
    function_words2: int = 0
    chunks: int = 0


def align(
    words1: Sequence[str],
    words2: Sequence[str],
    synonyms: Synonyms,
    paraphrases: ParaphraseTable,
    function_words: frozenset[str],
) -> Alignment:
    """`Aligner.align` of test `words1` against reference `words2` with the English modules."""
    stage = Stage(words1, words2)
    identical = stage.keys1 == stage.keys2
    match_exact(0, stage)
    if not identical:
        match_stem(1, stage, words1, words2)
        match_synonym(2, stage, words1, words2, synonyms)
        match_paraphrase(3, stage, words1, words2, paraphrases)

    fixed: list[Match | None] = [None] * len(words2)
    start = _new_path(0, 0)
    for i, candidates in enumerate(stage.matches):
        if len(candidates) != 1:
            continue
        match = candidates[0]
        overlap = any(stage.coverage2[i + k] != 1 for k in range(match.length)) or any(
            stage.coverage1[match.match_start + k] != 1 for k in range(match.match_length)
        )
        if not overlap:
            fixed[i] = match
            mask1, mask2 = _masks(match)
            start[USED1] |= mask1
            start[USED2] |= mask2
    best = _resolve(stage, start, fixed)
    matches = list(fixed)
    node = best[CHOSEN]
    while node is not None:
        matches[node[0].start] = node[0]
        node = node[1]

    alignment = Alignment(list(words1), list(words2), matches)
    is_function1 = [word.lower() in function_words for word in words1]
    is_function2 = [word.lower() in function_words for word in words2]
    alignment.function_words1 = sum(is_function1)
    alignment.function_words2 = sum(is_function2)
    for match in matches:
        if match is None:
            continue
        for k in range(match.match_length):
            target = alignment.function1 if is_function1[match.match_start + k] else alignment.content1
            target[match.module] += 1
        for k in range(match.length):
            target = alignment.function2 if is_function2[match.start + k] else alignment.content2
            target[match.module] += 1
    alignment.chunks = _count_chunks(matches)
    return alignment


def _resolve(stage: Stage, start: list, fixed: list[Match | None]) -> list:
    """`Aligner.resolve`: left-to-right beam search over reference positions."""
    length = len(stage.matches)
    candidates = [[(match, *_masks(match), abs(match.start - match.match_start),
                    match.match_length * SEARCH_WEIGHTS[match.module], match.length * SEARCH_WEIGHTS[match.module],
                    match.match_start, match.match_start + match.match_length, match.start + match.length)
                   for match in matches] for matches in stage.matches]
    next_paths = [start]
    for current in range(length + 1):
        next_paths.sort(key=_rank)  # stable, like Collections.sort
        paths = next_paths
        next_paths = []
        for path in paths[:BEAM_SIZE]:
            if current == length:
                if path[LAST_END] != -1:
                    path[CHUNKS] += 1
                next_paths.append(path)
                continue
            if path[USED2] >> current & 1:
                if current < path[IDX]:
                    next_paths.append(path)
                elif fixed[path[IDX]] is not None:
                    match = fixed[path[IDX]]
                    _take(path, match)
                    path[DISTANCE] += abs(match.start - match.match_start)
                    next_paths.append(path)
                continue
            for match, mask1, mask2, distance, weighted1, weighted2, match_start, end1, end2 in candidates[current]:
                if path[USED2] & mask2 or path[USED1] & mask1:
                    continue
                new_path = list(path)  # then `_take`, inlined
                new_path[USED1] |= mask1
                new_path[USED2] |= mask2
                new_path[CHOSEN] = (match, path[CHOSEN])
                matches1 = new_path[MATCHES1] = int(path[MATCHES1] + weighted1)
                matches2 = new_path[MATCHES2] = int(path[MATCHES2] + weighted2)
                new_path[NEG_TOTAL] = -(matches1 + matches2)
                if path[LAST_END] != -1 and match_start != path[LAST_END]:
                    new_path[CHUNKS] += 1
                new_path[IDX] = end2
                new_path[LAST_END] = end1
                path[DISTANCE] += distance  # sic: the extended path's distance, not the new one's
                next_paths.append(new_path)
            if path[LAST_END] != -1:
                path[CHUNKS] += 1
                path[LAST_END] = -1
            path[IDX] += 1
            next_paths.append(path)
        if not next_paths:
            next_paths.append(paths[0])
    next_paths.sort(key=_rank)
    return next_paths[0]


def _count_chunks(matches: Sequence[Match | None]) -> int:
    """`Aligner.getCountAndChunks`: chunks of the final alignment, walking the reference."""
    chunks, index, last_match_end = 0, 0, -1
    while index < len(matches):
        match = matches[index]
        if match is None:
            if last_match_end != -1:
                chunks += 1
                last_match_end = -1
            index += 1
        else:
            if last_match_end != -1 and match.match_start != last_match_end:
                chunks += 1
            index = match.start + match.length
            last_match_end = match.match_start + match.match_length
    return chunks + (1 if last_match_end != -1 else 0)
