"""METEOR 1.5 statistics and scores, as pycocoevalcap gets them from `java -jar meteor-1.5.jar - - -stdio -l en -norm`.

Per image (pycocoevalcap `Meteor._stat`, jar `Meteor.scoreStdio` "SCORE" and
`MeteorScorer.getMeteorStats(String, ArrayList<String>)`): the hypothesis loses every '|||' and then one
run of two spaces per pair ('  ' → ' '), the line 'SCORE ||| ref1 ||| … ||| hyp' is split on '|||' (so a
'|||' inside a reference makes more references), each part Java-trimmed; test and every reference are
normalised (`normalize_line`) and lower-cased, aligned (`align`), and the reference with the highest score
wins (the first on ties). Its 23 statistics are
    tstLen refLen tstFunc refFunc, for each stage (exact, stem, synonym, paraphrase):
    tstContent refContent tstFunction refFunction, then chunks tstWordMatches refWordMatches.

Score (`MeteorScorer.computeMetrics`), English "rank" task parameters α=0.85, β=0.2, γ=0.6, δ=0.75 and
stage weights w = (1, 0.6, 0.8, 0.6), in the jar's double arithmetic and operation order:
    P = Σ_s w_s·δ·tstContent_s + Σ_s w_s·(1−δ)·tstFunction_s, divided by δ·(tstLen−tstFunc) + (1−δ)·tstFunc
    R likewise on the reference side;  Fmean = 1 / ((1−α)/P + α/R)
    frag = 0 if every word of both sides matched in one chunk, else chunks / ((tstWM + refWM)/2)
    METEOR = max(0, Fmean·(1 − γ·frag^β)), and 0 where that is NaN.
Corpus ("EVAL" line, `MeteorStats.addStats`): statistics summed over images, except the chunks of images
that match perfectly, then the same formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from gcgbench.metrics.meteor.aligner import Alignment, align
from gcgbench.metrics.meteor.java import java_double_str, java_split_bars, java_tokens, java_trim
from gcgbench.metrics.meteor.matchers import ParaphraseTable
from gcgbench.metrics.meteor.normalize import normalize_line
from gcgbench.metrics.meteor.resources import Synonyms, function_words, paraphrases_for, synonyms

ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
STATS_LENGTH = 23


def _div(numerator: float, denominator: float) -> float:
    """Java double division (x/0 is ±Infinity or NaN instead of an exception)."""
    if denominator != 0.0:
        return numerator / denominator
    if numerator == 0.0 or math.isnan(numerator):
        return math.nan
    return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)


def meteor_score(stats: Sequence[float]) -> float:
    """`MeteorScorer.computeMetrics` of one 23-statistics vector (a segment's or a corpus sum)."""
    test_len, ref_len, test_func, ref_func = stats[0], stats[1], stats[2], stats[3]
    stages = [stats[4 + 4 * s: 8 + 4 * s] for s in range(4)]
    chunks, test_word_matches, ref_word_matches = stats[20], stats[21], stats[22]
    test_weighted_len = (DELTA * (test_len - test_func)) + ((1.0 - DELTA) * test_func)
    ref_weighted_len = (DELTA * (ref_len - ref_func)) + ((1.0 - DELTA) * ref_func)
    test_matches = ref_matches = 0.0
    for s, weight in enumerate(MODULE_WEIGHTS):
        test_matches += stages[s][0] * weight * DELTA
    for s, weight in enumerate(MODULE_WEIGHTS):
        ref_matches += stages[s][1] * weight * DELTA
    for s, weight in enumerate(MODULE_WEIGHTS):
        test_matches += stages[s][2] * weight * (1.0 - DELTA)
    for s, weight in enumerate(MODULE_WEIGHTS):
        ref_matches += stages[s][3] * weight * (1.0 - DELTA)
    precision = _div(test_matches, test_weighted_len)
    recall = _div(ref_matches, ref_weighted_len)
    f_mean = _div(1.0, _div(1.0 - ALPHA, precision) + _div(ALPHA, recall))
    test_total = sum(stages[s][0] + stages[s][2] for s in range(4))
    ref_total = sum(stages[s][1] + stages[s][3] for s in range(4))
    if test_total == test_len and ref_total == ref_len and chunks == 1:
        fragmentation = 0.0
    else:
        fragmentation = _div(chunks, (test_word_matches + ref_word_matches) / 2)
    penalty = GAMMA * _pow(fragmentation, BETA)
    score = f_mean * (1.0 - penalty)
    return score if score > 0.0 else 0.0  # NaN and -0.0 too (Java: NaN -> 0, Math.max(-0.0, 0.0) = 0.0)


def _pow(base: float, exponent: float) -> float:
    if math.isnan(base):
        return math.nan
    if math.isinf(base):
        return math.inf
    return math.pow(base, exponent)


def corpus_score(rows: Sequence[Sequence[float]]) -> float:
    """The EVAL line's last value: `computeMetrics` of the statistics summed by `MeteorStats.addStats`."""
    total = [0.0] * STATS_LENGTH
    for row in rows:
        perfect = (
            sum(row[4 + 4 * s] + row[6 + 4 * s] for s in range(4)) == row[0]
            and sum(row[5 + 4 * s] + row[7 + 4 * s] for s in range(4)) == row[1]
            and row[20] == 1.0
        )
        for column in range(STATS_LENGTH):
            if column == 20 and perfect:
                continue
            total[column] += row[column]
    return meteor_score(total)


def alignment_stats(alignment: Alignment) -> tuple[float, ...]:
    """`MeteorScorer.getMeteorStats(Alignment)` (word-based) as the 23 numbers of the SCORE line."""
    values = [len(alignment.words1), len(alignment.words2), alignment.function_words1, alignment.function_words2]
    for s in range(4):
        values += [alignment.content1[s], alignment.content2[s], alignment.function1[s], alignment.function2[s]]
    test_word_matches = sum(alignment.content1) + sum(alignment.function1)
    ref_word_matches = sum(alignment.content2) + sum(alignment.function2)
    values += [alignment.chunks, test_word_matches, ref_word_matches]
    return tuple(float(value) for value in values)


def stats_line(stats: Sequence[float]) -> str:
    """The SCORE line the jar prints for these statistics (`MeteorStats.toString`)."""
    return " ".join(java_double_str(value) for value in stats)


@dataclass(frozen=True)
class MeteorOutput:
    """Per-segment statistics and scores (the EVAL line's values) and the corpus score."""

    stats: list[tuple[float, ...]]
    scores: list[float]
    score: float


def _segment_lines(hypothesis: str, references: Sequence[str]) -> tuple[str, list[str]]:
    """Test and reference strings as the jar's stdio loop receives them from pycocoevalcap `_stat`."""
    hypothesis = hypothesis.replace("|||", "").replace("  ", " ")
    line = " ||| ".join(("SCORE", " ||| ".join(references), hypothesis))
    parts = java_split_bars(line)
    if len(parts) < 3:  # the jar would answer "Error: specify hypothesis and at least one reference"
        raise ValueError(f"METEOR cannot parse the segment line {line!r}")
    return java_trim(parts[-1]), [java_trim(part) for part in parts[1:-1]]


def _prepare(text: str) -> list[str]:
    return java_tokens(normalize_line(text).lower())


class MeteorScorer:
    """METEOR 1.5 (`-l en -norm`) over a batch of segments; resources are loaded once per instance."""

    def __init__(self) -> None:
        self.synonyms: Synonyms = synonyms()
        self.function_words = function_words()

    def score(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> MeteorOutput:
        """What pycocoevalcap's `Meteor.compute_score` returns, for parallel lists of hypotheses and
        reference lists (each with at least one reference), plus every segment's statistics."""
        if len(hypotheses) != len(references):
            raise ValueError("one list of references per hypothesis")
        segments = []
        for hypothesis, refs in zip(hypotheses, references):
            if not refs:
                raise ValueError("every hypothesis needs at least one reference")
            test, ref_lines = _segment_lines(hypothesis, refs)
            segments.append((_prepare(test), [_prepare(ref) for ref in ref_lines]))
        vocabulary = {word for test, refs in segments for words in (test, *refs) for word in words}
        table = ParaphraseTable(paraphrases_for(vocabulary))
        all_stats = [self._best(test, refs, table) for test, refs in segments]
        scores = [meteor_score(stats) for stats in all_stats]
        return MeteorOutput(all_stats, scores, corpus_score(all_stats))

    def _best(self, test: list[str], refs: list[list[str]], table: ParaphraseTable) -> tuple[float, ...]:
        best_stats: tuple[float, ...] | None = None
        best_score = -1.0
        for ref in refs:
            stats = alignment_stats(align(test, ref, self.synonyms, table, self.function_words))
            score = meteor_score(stats)
            if score > best_score:
                best_stats, best_score = stats, score
        if best_stats is None:  # only when every score is NaN-free and below -1: cannot happen
            raise AssertionError("METEOR found no reference")
        return best_stats
