"""PTB tokenisation in Python (`gcgbench.metrics.ptb_tokenize`): what pycocoevalcap's PTBTokenizer gives.

No Java here. Each expected line is what `java -cp stanford-corenlp-3.4.1.jar
edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase` printed for the input (before
pycocoevalcap's punctuation filter); tests/test_caption_jars_parity.py compares with the jar at scale.
"""

from __future__ import annotations

import pytest

from gcgbench.metrics.ptb_classes import character_map, digit_units, letter_units
from gcgbench.metrics.ptb_tokenize import filter_punctuation, lex_lines, tokenize_for_image

JAR_LINES = [
    ("A man riding a horse.", "a man riding a horse ."),
    ("It's a dog's life, isn't it?", "it 's a dog 's life , is n't it ?"),
    ("He cannot go (or can he)...", "he can not go -lrb- or can he -rrb- ..."),
    ("U.S. soldiers in the U.S. He ran.", "u.s. soldiers in the u.s. . he ran ."),
    ("\"Hello,\" she said -- 'bye'", "`` hello , '' she said -- ` bye '"),
    ("3,000 people at 10:30 on 1/2/2014 paid $5 or \u20ac3 \u00bd", "3,000 people at 10:30 on 1/2/2014 paid $ 5 or $ 3 1/2"),
    ("www.example.com and http://x.org/a_b! me@mail.com", "www.example.com and http://x.org/a_b ! me@mail.com"),
    ("e.g. etc. Mr. Smith vs. Dr. Who", "e.g. etc. . mr. smith vs. dr. who"),
    ("caf\u00e9 na\u00efve \u00fcber", "caf\u00e9 na\u00efve \u00fcber"),
    ("", ""),
    ("well-known t-shirt x-ray 2-3", "well-known t-shirt x-ray 2-3"),
    ("C++ and c# & at&t AT&T", "c++ and c# & at & t at&t"),
    ("\U0001F600 emoji a\U0001F600b", "emoji a b"),
    ("gonna wanna gimme", "gon na wan na gim me"),
    ("'90s rock'n'roll y'all 'tis 'twas", "'90s rock 'n' roll y' all 't is 't was"),
    ("{braces} [brackets] <angle>", "-lcb- braces -rcb- -lsb- brackets -rsb- <angle>"),
    ("I. am", "i. am"),
    ("Inc. Ltd. Co. ltd", "inc. . ltd. . co. ltd"),
    ("ca. 5 fig. 3", "ca. 5 fig. 3"),
]


def test_lexer_lines_equal_the_jar():
    captions = [caption for caption, _ in JAR_LINES]
    assert lex_lines("\n".join(captions)).split("\n") == [line for _, line in JAR_LINES]


@pytest.mark.parametrize(("caption", "expected"), JAR_LINES)
def test_each_caption_alone(caption, expected):
    assert lex_lines(caption) == expected


def test_punctuation_filter_is_pycocoevalcaps():
    assert filter_punctuation("`` hello , '' she said -- ` bye ' ...") == "hello she said bye"
    assert filter_punctuation("-lrb- a -rrb- -LRB- b") == "-lrb- a -rrb- b"  # the filter lists upper case only
    assert filter_punctuation("a  b ") == "a  b"  # an empty token between two spaces stays
    assert filter_punctuation("") == ""


def test_tokenize_for_image_is_the_pycocoevalcap_call():
    captions = {"i1": [{"caption": "Two dogs play."}, {"caption": "A dog\nruns!"}], "i2": [{"caption": "..."}]}
    assert tokenize_for_image(captions) == {"i1": ["two dogs play", "a dog runs"], "i2": [""]}


def test_lookahead_crosses_captions_like_the_jar():
    # The jar lexes all captions as one text: "etc." before a line starting with an upper-case letter is
    # a sentence end (the period is repeated), before a lower-case one it is not.
    assert lex_lines("see etc.\nThe end") == "see etc. .\nthe end"
    assert lex_lines("see etc.\nthe end") == "see etc.\nthe end"


def test_letters_and_digits_are_the_lexers_unicode_6():
    cmap = character_map()
    assert len(cmap) == 0x10000
    letters, digits = letter_units(), digit_units()
    assert "\\u4e00" in letters and "\\u0041-\\u005a" in letters
    assert "\\u037f" not in letters  # GREEK CAPITAL LETTER YOT, Unicode 7.0: untokenizable for the jar
    assert lex_lines("a\u037fb \u037f") == "a b"
    assert "\\u0660-\\u0669" in digits


def test_untokenizable_characters_are_dropped_and_lone_surrogates_written_as_question_marks():
    assert lex_lines("a \u0001 b") == "a b"
    assert lex_lines("x\U0001F600@y.com") == "x\U0001F600@y.com"  # e-mail: any unit before '@'


def test_ascii_texts_lex_the_same_with_the_ascii_grammar_as_with_the_full_one(monkeypatch):
    # An ASCII-only text is lexed with letter and digit classes cut down to ASCII (compiled ~10x faster); a
    # match depends only on the text's own characters, so the tokens must be those of the full grammar.
    import random
    import string

    from caption_cases import caption
    from gcgbench.metrics import ptb_lexer, ptb_tokenize

    rng = random.Random(7)
    captions = [caption(rng).replace("\n", " ") for _ in range(3000)]
    captions = [c for c in captions if c.isascii()]
    symbols = string.punctuation + string.digits + " "
    captions += ["".join(rng.choice(symbols + "aZ.") for _ in range(rng.randint(1, 12))) for _ in range(2000)]
    captions += [f"{word}{mark}" for word in ("a", "etc", "U.S", "Mr", "no", "x", "1", "A1") for mark in string.punctuation]
    text = "\n".join(captions)
    assert text.isascii() and len(captions) > 4500
    ascii_lines = lex_lines(text)
    assert ptb_tokenize._rules(ptb_lexer.ASCII) is not ptb_tokenize._rules(ptb_lexer.FULL)
    monkeypatch.setattr(ptb_tokenize, "ASCII", ptb_lexer.FULL)  # every text through the full grammar
    assert lex_lines(text).split("\n") == ascii_lines.split("\n")
    assert letter_units(ptb_lexer.ASCII) == "\\u0041-\\u005a\\u0061-\\u007a" and digit_units(ptb_lexer.ASCII) == "\\u0030-\\u0039"


def test_class_file_strings_decode_as_the_jvm_specs_modified_utf8():
    # JVM spec 4.4.7, written out: 1..7F one byte; 0 and 80..7FF two; 800..FFFF (surrogates too) three
    import random

    from gcgbench.metrics.ptb_classes import _modified_utf8

    def encode(units):
        out = bytearray()
        for unit in units:
            if 0 < unit < 0x80:
                out.append(unit)
            elif unit < 0x800:
                out += bytes([0xC0 | unit >> 6, 0x80 | unit & 0x3F])
            else:
                out += bytes([0xE0 | unit >> 12, 0x80 | unit >> 6 & 0x3F, 0x80 | unit & 0x3F])
        return bytes(out)

    rng = random.Random(3)
    for _ in range(300):
        units = [rng.choice((0, rng.randrange(0x80), rng.randrange(0x800), rng.randrange(0x10000),
                             rng.randrange(0xD800, 0xE000))) for _ in range(rng.randrange(40))]
        assert _modified_utf8(encode(units)) == units
    assert _modified_utf8(b"\xc0\x80\xed\xa0\xbd\xed\xb8\x80") == [0, 0xD83D, 0xDE00]
