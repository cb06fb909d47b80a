"""METEOR 1.5 in Python (`gcgbench.metrics.meteor`): hand-computed scores, the jar's quirks, edge cases.

No Java here; tests/test_caption_jars_parity.py compares with the jar on thousands of caption pairs.
Every expected statistics line below is also what `meteor-1.5.jar -stdio -l en -norm` prints.
"""

from __future__ import annotations

import math

import pytest

from gcgbench.metrics.meteor import MeteorScorer, corpus_score, meteor_score
from gcgbench.metrics.meteor.java import java_hash, java_split_bars, java_tokens, java_trim
from gcgbench.metrics.meteor.matchers import english_stem
from gcgbench.metrics.meteor.normalize import normalize_line
from gcgbench.metrics.meteor.resources import function_words, paraphrases_for
from gcgbench.metrics.meteor.scorer import stats_line


@pytest.fixture(scope="module")
def scorer() -> MeteorScorer:
    return MeteorScorer()


def one(scorer, hypothesis, references):
    output = scorer.score([hypothesis], [references])
    return stats_line(output.stats[0]), output.scores[0]


def test_java_string_behaviours():
    assert java_hash("") == 0 and java_hash("a") == 97 and java_hash("Aa") == java_hash("BB") == 2112
    assert java_hash("\U0001F600") == 31 * 0xD83D + 0xDE00  # two UTF-16 units
    word = "photographers"  # long enough to wrap around 2^32
    expected = sum(ord(char) * 31 ** (len(word) - 1 - i) for i, char in enumerate(word)) % 2**32
    assert java_hash(word) == (expected - 2**32 if expected >= 2**31 else expected)
    assert java_tokens(" a\tb\u00a0c\n\fd ") == ["a", "b\u00a0c", "d"]
    assert java_trim("\x01 a b\x1f") == "a b" and java_trim("\u00a0a\u00a0") == "\u00a0a\u00a0"
    assert java_split_bars("SCORE ||| a |||| b ||| c|||") == ["SCORE ", " a ", "| b ", " c"]


def test_identical_sentence_scores_one(scorer):
    # 3 words, 'the' a function word; all exact, one chunk: P = R = 1, no fragmentation penalty.
    assert one(scorer, "The cat sat.", ["the cat sat ."]) == (
        "4.0 4.0 2.0 2.0 2.0 2.0 2.0 2.0 " + "0.0 " * 12 + "1.0 4.0 4.0", 1.0)


def test_two_chunks(scorer):
    # P = R = (1·.75 + 1·.25) / (.75·1 + .25·1) = 1; frag = 2 chunks / 2 matches = 1; 1 · (1 − 0.6 · 1^0.2).
    line, score = one(scorer, "cat the", ["the cat"])
    assert line == "2.0 2.0 1.0 1.0 1.0 1.0 1.0 1.0 " + "0.0 " * 12 + "2.0 2.0 2.0"
    assert score == pytest.approx(0.4, abs=1e-15)


def test_stem_and_synonym_weights(scorer):
    # Lone words matched only by the stem (0.6) or only by WordNet (0.8) stage, one chunk: score = weight.
    assert english_stem("kindly") == english_stem("kind") == "kind"
    line, score = one(scorer, "kind", ["kindly"])
    assert line == "1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 1.0 " + "0.0 " * 10 + "1.0 1.0 1.0"
    assert score == pytest.approx(0.6, abs=1e-15)
    line, score = one(scorer, "sofa", ["couch"])
    assert line == "1.0 1.0 0.0 0.0 " + "0.0 " * 8 + "1.0 1.0 0.0 0.0 " + "0.0 " * 4 + "1.0 1.0 1.0"
    assert score == pytest.approx(0.8, abs=1e-15)


def test_paraphrase_stage_and_weighted_lengths(scorer):
    # exact 'a','a' (function); synonym picture~photograph; paraphrase 'of a child' ~ 'of a kid' (1 content,
    # 1 function word a side); one chunk, everything matched. P = R = (0.8·.75 + 0.6·.75 + 2·.25 + 0.6·.25)
    # / (.75·2 + .25·3) = 1.7 / 2.25.
    line, score = one(scorer, "a picture of a child", ["a photograph of a kid"])
    assert line == "5.0 5.0 3.0 3.0 0.0 0.0 2.0 2.0 0.0 0.0 0.0 0.0 1.0 1.0 0.0 0.0 1.0 1.0 1.0 1.0 1.0 5.0 5.0"
    assert score == pytest.approx(1.7 / 2.25, abs=1e-15)


def test_jar_quirks(scorer):
    # A word with two candidate matches (stem and synonym) is not fixed before the search, where a
    # half-weight match adds int(0.5) = 0 to the path's integer match count; the path without it has fewer
    # chunks and wins: the jar scores "dogs" against "dog" (and "quick" against "quickly") 0.
    assert one(scorer, "dogs", ["dog"]) == ("1.0 1.0 " + "0.0 " * 20 + "0.0", 0.0)
    assert one(scorer, "quick", ["quickly"])[1] == 0.0
    # Words are compared by String.hashCode: 'aan' and 'ac0' collide and count as an exact match.
    assert java_hash("aan") == java_hash("ac0")
    assert one(scorer, "aan", ["ac0"])[1] == 1.0


def test_best_reference_wins_and_ties_keep_the_first(scorer):
    line, score = one(scorer, "a dog", ["a cat", "a dog", "the dog"])
    assert score == 1.0
    # equal scores: the first reference's statistics ('x' matched at test position 0, as the jar prints)
    assert one(scorer, "x y", ["x z", "w y"])[0] == "2.0 2.0 0.0 0.0 1.0 1.0 " + "0.0 " * 14 + "1.0 1.0 1.0"
    assert one(scorer, "x y", ["w y", "x z"])[0] == "2.0 2.0 0.0 0.0 1.0 1.0 " + "0.0 " * 14 + "1.0 1.0 1.0"


def test_empty_and_punctuation_only(scorer):
    assert one(scorer, "", ["a woman walks"]) == ("0.0 3.0 0.0 1.0 " + "0.0 " * 18 + "0.0", 0.0)
    assert one(scorer, "a man", [""]) == ("2.0 0.0 1.0 0.0 " + "0.0 " * 18 + "0.0", 0.0)
    assert one(scorer, "", [""])[1] == 0.0
    # pycocoevalcap drops '|||' from the hypothesis; in a reference it makes two references
    assert one(scorer, "a|||b", ["ab"])[1] == 1.0
    assert one(scorer, "b", ["a ||| b"])[1] == 1.0


def test_normaliser_follows_the_jar():
    # Outputs of `java -cp meteor-1.5.jar edu.cmu.meteor.util.Normalizer en true` (then lower-cased by the scorer).
    assert normalize_line("U.S.-based firm's \u201cnew\u201d cars -- 3,000 of them...") == \
        "US based firm 's \" new \" cars - 3,000 of them ..."
    assert normalize_line("Mr. Smith went to Washington.") == "Mr. Smith went to Washington ."
    assert normalize_line("no. 5 and no.") == "no . 5 and no ."
    assert normalize_line("it's 1990's rock'n'roll") == "it 's 1990 's rock 'n'roll"
    assert normalize_line("a\u00a0b\u3000c  d") == "a b c d"


def test_corpus_score_sums_statistics_and_skips_perfect_chunks(scorer):
    output = scorer.score(["dog", "cat the"], [["dog"], ["the cat"]])
    # sums: lengths 3/3, 'the' a function word, 2 content + 1 function exact matches a side; chunks 2 (the
    # perfect segment's one chunk is left out); frag = 2 / 3.
    assert output.score == pytest.approx(1.0 - 0.6 * (2.0 / 3.0) ** 0.2, abs=1e-15)
    assert output.score == corpus_score(output.stats)
    assert output.scores == [1.0, pytest.approx(0.4, abs=1e-15)]
    assert math.isclose(sum(output.scores) / 2, 0.7) and output.score != pytest.approx(0.7)


def test_meteor_score_handles_zero_lengths_like_java():
    zero = [0.0] * 23
    assert meteor_score(zero) == 0.0  # NaN -> 0
    no_test = zero.copy()
    no_test[1] = 4.0
    assert meteor_score(no_test) == 0.0


def test_resources_come_from_the_jar():
    words = function_words()
    assert {"the", "a", "of", ","} <= words and "cat" not in words
    pairs = paraphrases_for(["kid", "child", "photograph", "picture", "zebra"])
    assert (("kid",), ("child",)) in pairs and (("photograph",), ("picture",)) in pairs
    assert all(set(ref) | set(par) <= {"kid", "child", "photograph", "picture", "zebra"} for ref, par in pairs)


def test_bad_calls_are_value_errors(scorer):
    with pytest.raises(ValueError, match="one list of references per hypothesis"):
        scorer.score(["a"], [])
    with pytest.raises(ValueError, match="at least one reference"):
        scorer.score(["a"], [[]])
