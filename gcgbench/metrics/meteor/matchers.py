"""METEOR 1.5's four matchers: every candidate match between a test (line1) and a reference (line2).

Restated from cmu-mtlab/meteor src/edu/cmu/meteor/aligner/{Stage,Match,ExactMatcher,StemMatcher,
SynonymMatcher,SynonymDictionary,ParaphraseMatcher,ParaphraseTransducer}.java. The stage lists matches by
their start in the reference; within a start they keep the order the matchers add them (exact, stem,
synonym, paraphrase; each scanning reference position j, then test position i), which is the order the
beam search tries them in. Words are compared by Java `String.hashCode()` keys, as the jar does.

- exact (stage 0): equal keys.
- stem (stage 1): equal keys of the Snowball English stems (org.tartarus.snowball.ext.englishStemmer, the
  2015 algorithm; the `snowballstemmer` 2.2 package gives the same stems on all 172,936 words of the
  WordNet and paraphrase vocabularies, 3.x and nltk's do not), different word keys.
- synonym (stage 2): the words' synset sets (their own, plus those of their WordNet base form:
  `getStemSynSets`, irregular forms from the exception list, else WordNet's suffix rules) intersect,
  different word keys.
- paraphrase (stage 3): a phrase of the paraphrase table at reference position j whose paraphrase occurs at
  test position i (matches by (length, table order) at each j), then the same with test and reference
  swapped, added under the reference start. No "different words" condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from gcgbench.metrics.meteor.java import java_hash
from gcgbench.metrics.meteor.resources import Synonyms


@dataclass(frozen=True)
class Match:
    """`aligner/Match.java`: `start`/`length` in line2 (reference), `match_start`/`match_length` in line1."""

    start: int
    length: int
    match_start: int
    match_length: int
    module: int


class Stage:
    """`aligner/Stage.java`: word keys, matches by reference start, how many matches cover each word."""

    def __init__(self, words1: Sequence[str], words2: Sequence[str]) -> None:
        self.keys1 = [java_hash(word) for word in words1]
        self.keys2 = [java_hash(word) for word in words2]
        self.matches: list[list[Match]] = [[] for _ in words2]
        self.coverage1 = [0] * len(words1)
        self.coverage2 = [0] * len(words2)

    def add(self, match: Match) -> None:
        self.matches[match.start].append(match)
        for offset in range(match.match_length):
            self.coverage1[match.match_start + offset] += 1
        for offset in range(match.length):
            self.coverage2[match.start + offset] += 1


def match_exact(module: int, stage: Stage) -> None:
    for j, key2 in enumerate(stage.keys2):
        for i, key1 in enumerate(stage.keys1):
            if key1 == key2:
                stage.add(Match(j, 1, i, 1, module))


@lru_cache(maxsize=200_000)
def english_stem(word: str) -> str:
    """Snowball English stem (`SnowballStemmerWrapper.stem`)."""
    return _stemmer().stemWord(word)


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - snowballstemmer has no type hints
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def match_stem(module: int, stage: Stage, words1: Sequence[str], words2: Sequence[str]) -> None:
    stems1 = [java_hash(english_stem(word)) for word in words1]
    stems2 = [java_hash(english_stem(word)) for word in words2]
    for j, stem2 in enumerate(stems2):
        for i, stem1 in enumerate(stems1):
            if stem1 == stem2 and stage.keys1[i] != stage.keys2[j]:
                stage.add(Match(j, 1, i, 1, module))


# WordNet 3 morphology as `SynonymDictionary.morph` applies it (suffix i is replaced by ending i).
_SUFFIXES = ("s", "ses", "xes", "zes", "ches", "shes", "men", "ies", "s", "ies", "es", "es", "ed", "ed", "ing", "ing",
             "er", "est", "er", "est")
_ENDINGS = ("", "s", "x", "z", "ch", "sh", "man", "y", "", "y", "e", "", "e", "", "e", "", "", "", "e", "e")


def _morph(word: str, synonyms: Synonyms) -> str:
    """`SynonymDictionary.morph`: the first suffix rewrite that gives a WordNet word, else ''.

    (The jar's "ful" handling only appends "ful" to a rewrite of a word ending in "ful", and no suffix of
    the list ends such a word, so it never applies; `retval != tmp` is a reference comparison that is true
    exactly when the suffix matched.)"""
    end = "ful" if word.endswith("ful") else ""
    if word.endswith("ss") or _java_length(word) <= 2:
        return word
    for suffix, ending in zip(_SUFFIXES, _ENDINGS):
        if word.endswith(suffix):
            candidate = word[: len(word) - len(suffix)] + ending
            if candidate in synonyms.synsets:
                return candidate + end
    return ""


def _java_length(word: str) -> int:
    return len(word) + sum(1 for char in word if ord(char) > 0xFFFF)


def synset_ids(word: str, synonyms: Synonyms) -> frozenset[int]:
    """`getSynSets(word) ∪ getStemSynSets(word)` (cached per word on `synonyms`)."""
    cached = synonyms.cache.get(word)
    if cached is not None:
        return cached
    ids = set(synonyms.synsets.get(word, ()))
    bases = synonyms.bases.get(word)
    if bases is not None:
        for base in bases:
            ids.update(synonyms.synsets.get(base, ()))
    else:
        ids.update(synonyms.synsets.get(_morph(word, synonyms), ()))
    result = frozenset(ids)
    if len(synonyms.cache) < 500_000:
        synonyms.cache[word] = result
    return result


def match_synonym(module: int, stage: Stage, words1: Sequence[str], words2: Sequence[str], synonyms: Synonyms) -> None:
    sets1 = [synset_ids(word, synonyms) for word in words1]
    sets2 = [synset_ids(word, synonyms) for word in words2]
    for j, set2 in enumerate(sets2):
        for i, set1 in enumerate(sets1):
            if not set1.isdisjoint(set2) and stage.keys1[i] != stage.keys2[j]:
                stage.add(Match(j, 1, i, 1, module))


class ParaphraseTable:
    """`ParaphraseTransducer` restricted to the entries a batch can use: a trie of reference phrases whose
    end states emit their paraphrases in table order."""

    def __init__(self, entries: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
        self.root: dict = {}
        for reference, paraphrase in entries:
            state = self.root
            for word in reference:
                state = state.setdefault(word, {})
            state.setdefault(None, []).append(paraphrase)

    def paths(self, words: Sequence[str], start: int) -> list[tuple[int, tuple[str, ...]]]:
        """`getPaths`: (reference phrase length, paraphrase) for the phrases starting at `start`."""
        found: list[tuple[int, tuple[str, ...]]] = []
        state = self.root
        for offset in range(len(words) - start):
            state = state.get(words[start + offset])
            if state is None:
                break
            for paraphrase in state.get(None, ()):
                found.append((offset + 1, paraphrase))
        return found


def _occurs_at(words: Sequence[str], position: int, phrase: tuple[str, ...]) -> bool:
    """The jar's test `i + k == length || line[i + k] != words[k]` for every k, negated."""
    if position + len(phrase) > len(words):
        return False
    for k in range(1, len(phrase)):
        if words[position + k] != phrase[k]:
            return False
    return True


def _starts(words: Sequence[str], phrase: tuple[str, ...], positions: dict[str, list[int]]) -> list[int]:
    """Positions where `phrase` occurs in `words`, ascending (every position for an empty phrase)."""
    if not phrase:
        return list(range(len(words)))
    return [i for i in positions.get(phrase[0], ()) if _occurs_at(words, i, phrase)]


def _positions(words: Sequence[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words):
        positions.setdefault(word, []).append(index)
    return positions


def match_paraphrase(module: int, stage: Stage, words1: Sequence[str], words2: Sequence[str], table: ParaphraseTable) -> None:
    positions1, positions2 = _positions(words1), _positions(words2)
    for j in range(len(words2)):
        for length, paraphrase in table.paths(words2, j):
            for i in _starts(words1, paraphrase, positions1):
                stage.add(Match(j, length, i, len(paraphrase), module))
    for i in range(len(words1)):
        for length, paraphrase in table.paths(words1, i):
            for j in _starts(words2, paraphrase, positions2):
                stage.add(Match(j, len(paraphrase), i, length, module))
