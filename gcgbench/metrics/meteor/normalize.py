"""METEOR 1.5's `-norm` text normalisation for English, keeping punctuation.

A restatement of `edu.cmu.meteor.util.Normalizer.normalizeLine(line, LANG_EN, keepPunctuation=true)`
(cmu-mtlab/meteor src/edu/cmu/meteor/util/Normalizer.java, itself based on the Moses tokenizer), step by
step and in the same order; `MeteorScorer.getMeteorStats` then lower-cases the result (`toLowerCase`).
Java regular-expression classes are spelled out: `\\s` is [ \\t\\n\\x0B\\f\\r], `\\p{Digit}` is [0-9] and
`\\p{Lower}` is [a-z] (Java's ASCII defaults), whereas Python's would be Unicode-wide. The character lists
(`alpha`, `alnum`, the spaces of `r_white`) were read from the compiled jar.
"""

from __future__ import annotations

import re

from gcgbench.metrics.meteor.java import java_tokens, java_trim
from gcgbench.metrics.meteor.resources import nonbreaking_prefixes

_ALPHA = "A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f"
_ALNUM = "0-9" + _ALPHA
_JAVA_SPACE = " \t\n\x0b\f\r"

_SEP_OTHER = re.compile(f"([^{_ALNUM}{_JAVA_SPACE}.'`,\\-\u2018\u2019])")
_MULTI_DOT = re.compile(r"\.([.]+)")
_MULTI_DOT2 = re.compile(r"DOTMULTI\.([^.])")
_COMMA = re.compile(r"([^0-9])[,]([^0-9])")
_COMMA2 = re.compile(r"([0-9])[,]([^0-9])")
_COMMA3 = re.compile(r"([^0-9])[,]([0-9])")
_QUOTE = re.compile("([`\u2018\u2019])")
_QUOTE2 = re.compile("([\u201c\u201d]|'')")
_RM_DASH = re.compile(f"([{_ALNUM}.])[-]([{_ALNUM}])")
_CONT_EN = re.compile(f"([^{_ALPHA}])[']([^{_ALPHA}])")
_CONT_EN2 = re.compile(f"([^{_ALPHA}0-9])[']([{_ALPHA}])")
_CONT_EN3 = re.compile(f"([{_ALPHA}])[']([^{_ALPHA}])")
_CONT_EN4 = re.compile(f"([{_ALPHA}])[']([{_ALPHA}])")
_CONT_EN5 = re.compile(r"([0-9])[']([s])")
_NBP_ALPHA = re.compile(f"[{_ALPHA}]")
_NBP_LOWER = re.compile(r"^[a-z]")
_NBP_NUMBER = re.compile(r"^[0-9]+")
_WHITE = re.compile("[  \u2000-\u200a\u202f\u205f\u3000\u00a0]+")


def normalize_line(line: str) -> str:
    """`Normalizer.normalizeLine(line, LANG_EN, true)`."""
    working = " " + line + " "
    working = _SEP_OTHER.sub(r" \1 ", working)
    working = _MULTI_DOT.sub(r" DOTMULTI\1", working)
    while "DOTMULTI." in working:
        working = _MULTI_DOT2.sub(r"DOTDOTMULTI \1", working)
        working = working.replace("DOTMULTI.", "DOTDOTMULTI")
    working = _COMMA.sub(r"\1 , \2", working)
    working = _COMMA2.sub(r"\1 , \2", working)
    working = _COMMA3.sub(r"\1 , \2", working)
    working = _QUOTE.sub("'", working)
    working = _QUOTE2.sub(' " ', working)
    working = working.replace("\u2013", "-").replace("--", "-")
    working = _RM_DASH.sub(r"\1 \2", working)
    working = _CONT_EN.sub(r"\1 ' \2", working)
    working = _CONT_EN2.sub(r"\1 ' \2", working)
    working = _CONT_EN3.sub(r"\1 ' \2", working)
    working = _CONT_EN4.sub(r"\1 '\2", working)
    working = _CONT_EN5.sub(r"\1 '\2", working)

    words = java_tokens(working)
    prefixes = nonbreaking_prefixes()
    pieces: list[str] = []
    for index, word in enumerate(words):
        if len(word) > 1 and word.endswith("."):
            prefix = word[:-1]
            numeric_only = prefixes.get(prefix)
            following = words[index + 1] if index < len(words) - 1 else None
            if "." in prefix and _NBP_ALPHA.search(prefix):
                pieces.append(word.replace(".", ""))  # U.S. -> US
            elif numeric_only is False or (following is not None and _NBP_LOWER.search(following)):
                pieces.append(word)
            elif numeric_only is True and following is not None and _NBP_NUMBER.search(following):
                pieces.append(word)
            else:
                pieces.append(prefix + " .")
        else:
            pieces.append(word)
        pieces.append(" ")
    working = "".join(pieces)
    while "DOTDOTMULTI" in working:
        working = working.replace("DOTDOTMULTI", "DOTMULTI.")
    working = working.replace("DOTMULTI", ".")
    return java_trim(_WHITE.sub(" ", working))
