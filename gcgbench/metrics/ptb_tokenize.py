"""pycocoevalcap's PTB tokenisation (Stanford CoreNLP 3.4.1 `PTBTokenizer -preserveLines -lowerCase`, then its
punctuation filter) in Python, equal to the jar.

`tokenize_for_image` is pycocoevalcap `PTBTokenizer.tokenize` (pycocoevalcap/tokenizer/ptbtokenizer.py):
captions ('\\n' → ' ') are joined by '\\n' in the dict's order and lexed as ONE text (JFlex lookahead may
cross captions), the output split on '\\n' is zipped back onto the image ids, and each line keeps
`w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS`. Lower-cased brackets (-lrb-, -rrb-, -lsb-,
-rsb-, -lcb-, -rcb-) survive that filter, because it lists the upper-case forms.

The lexer (`lex_lines`) runs the rules of `gcgbench.metrics.ptb_lexer` the way JFlex runs them: at each
position the longest match wins, trailing context counting toward its length, the earliest rule among
equally long ones; a rule with trailing context r1/r2 returns the longest r1 that leaves a match of r2.
Text is handled as UTF-16 code units like Java's; tokens are lower-cased with Java's `toLowerCase`
(Python's `lower`), and a lone surrogate is written as '?' as Java's UTF-8 writer does.
Fast paths give what the rules would: a line feed ends the line, a space or tab and the SPACE characters
after it are skipped, and a run of ASCII letters followed by
a space, a tab, a newline, the end of the text, or a comma or semicolon followed by one of those, is one
token (except cannot/gonna/gotta/lemme/gimme/wanna): no rule matches longer there, and the rules that match
as long (trailing context included) return the same text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, Sequence

import regex
from gcgbench.metrics.ptb_lexer import ASCII, FULL, compiled_rules

PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                          "...", ";"])

_FAST_WORD = regex.compile(r"[A-Za-z]+(?=[ \t\n]|[,;](?:[ \t\n]|\Z)|\Z)")
_FAST_SPACE = regex.compile("[ \t][ \t\u00a0\u2000-\u200a\u3000]*")  # SPACES: no other rule starts at [ \t]
_ASSIMILATIONS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])
_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = {"\u00a2": "cents", "\u00a3": "#", "\u0080": "$", "\u00a4": "$", "\u20a0": "$", "\u20ac": "$"}
_AMP = regex.compile("&amp;", regex.IGNORECASE)
_JAVA_WHITESPACE_END = " \t\n\u000b\u000c\r\u0085"


@lru_cache(maxsize=2)
def _rules(below: int):  # noqa: ANN202

    return compiled_rules(below)


def _code_units(text: str) -> str:
    """`text` with every character outside the BMP written as its two UTF-16 surrogates."""
    if all(ord(char) <= 0xFFFF for char in text):
        return text
    units = []
    for char in text:
        code = ord(char)
        if code <= 0xFFFF:
            units.append(char)
        else:
            units.append(chr(0xD800 + ((code - 0x10000) >> 10)) + chr(0xDC00 + ((code - 0x10000) & 0x3FF)))
    return "".join(units)


_SURROGATE = regex.compile("[\ud800-\udfff]")


def _from_code_units(units: str) -> str:
    """Surrogate pairs back to characters; a lone surrogate becomes '?' (Java's UTF-8 encoder)."""
    if _SURROGATE.search(units) is None:
        return units
    out: list[str] = []
    index = 0
    while index < len(units):
        char = units[index]
        code = ord(char)
        if 0xD800 <= code <= 0xDBFF and index + 1 < len(units) and 0xDC00 <= ord(units[index + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((code - 0xD800) << 10) + (ord(units[index + 1]) - 0xDC00)))
            index += 2
            continue
        out.append("?" if 0xD800 <= code <= 0xDFFF else char)
        index += 1
    return "".join(out)


def _latex_quotes(token: str, probably_left: bool) -> str:
    """PTBLexer.latexQuotes."""
    if probably_left:
        token = token.replace("&apos;", "`").replace("'", "`")
        token = regex.sub('"|&quot;', "``", token)
    else:
        token = token.replace("&apos;", "'")
        token = regex.sub('"|&quot;', "''", token)
    token = regex.sub("[\u0091\u2018\u201b\u2039]", "`", token)
    token = regex.sub("[\u0092\u2019\u203a]", "'", token)
    token = regex.sub("[\u0093\u201c\u00ab]", "``", token)
    return regex.sub("[\u0094\u201d\u00bb]", "''", token)


def _soft(token: str) -> str:
    """PTBLexer.removeSoftHyphens."""
    if "\u00ad" not in token:
        return token
    return token.replace("\u00ad", "") or "-"


def _act(action: str, text: str) -> tuple[str | None, int]:
    """(token or None, how many characters of `text` it consumes)."""
    if action == "text":
        return text, len(text)
    if action == "drop":
        return None, len(text)
    if action == "soft":
        return _soft(text), len(text)
    if action.startswith("pushback"):
        keep = len(text) - int(action[-1])
        return text[:keep], keep
    if action == "nbsp":
        return text.replace(" ", "\u00a0"), len(text)
    if action == "mdash":
        return "--", len(text)
    if action == "amp":
        return _AMP.sub("&", text), len(text)
    if action == "right_quote":
        return _latex_quotes(text, False), len(text)
    if action == "left_quote":
        return _latex_quotes(text, True), len(text)
    if action == "fraction":
        return "".join(_FRACTIONS.get(char, char) for char in text), len(text)
    if action == "currency":
        return "".join(_CURRENCY.get(char, char) for char in text), len(text)
    if action in ("acronym", "strip"):
        while text and (text[-1] in " \t\u0085" or "\n" <= text[-1] <= "\r"):  # the jar's jflex-bug workaround
            text = text[:-1]
        if action == "strip":
            return text, len(text)
        if len(text) == 2:
            return text[:1], 1
        return text, len(text) - 1  # the word with its period, and the period again
    if action == "period_again":
        return text, len(text) - 1
    if action == "phone":
        return text.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-"), len(text)
    if action == "parens":
        return text.replace("(", "-LRB-").replace(")", "-RRB-"), len(text)
    if action == "lt":
        return "<", len(text)
    if action == "gt":
        return ">", len(text)
    if action == "hyphens":
        return ("--" if 3 <= len(text) <= 4 else text), len(text)
    if action == "...":
        return "...", len(text)
    if action == "newline":
        return "*NL*", len(text)
    if action.startswith("-"):
        return action, len(text)
    raise AssertionError(f"unknown PTB action {action!r}")


_STARTERS: dict[tuple[int, str], tuple] = {}


def _rules_starting_with(unit: str, below: int) -> tuple:
    """The rules (of the grammar for units under `below`) a match can start with `unit` in (regex partial
    matching), in rule order; cached."""
    rules = _STARTERS.get((below, unit))
    if rules is None:
        rules = tuple(rule for rule in _rules(below) if rule.quick.match(unit, partial=True) is not None)
        _STARTERS[below, unit] = rules
    return rules


def _longest(units: str, position: int, below: int) -> tuple[int, str]:
    """(length of the matched text without trailing context, action) of the JFlex rule that wins here, with
    the grammar for texts whose units are all under `below`."""
    best_total, best = -1, (1, "drop")
    for rule in _rules_starting_with(units[position], below):
        if rule.quick.match(units, position) is None:
            continue
        match = rule.posix.match(units, position)
        if match is None:  # the quick test of a slow rule is only a necessary condition
            continue
        total = match.end() - position
        if total <= best_total or total == 0:
            continue
        best_total = total
        context = rule.context
        if context is None:
            best = (total, rule.action)
            continue
        head, tail = context
        end = position + total
        for length in range(total, -1, -1):
            if head.fullmatch(units, position, position + length) and tail.fullmatch(units, position + length, end):
                best = (length, rule.action)
                break
    return best


def lex_lines(text: str) -> str:
    """What `PTBTokenizer -preserveLines -lowerCase` writes for `text`: tokens joined by ' ', '\\n' per line end."""
    units = _code_units(text)
    below = ASCII if units.isascii() else FULL
    out: list[str] = []
    begin_line = True
    position = 0
    while position < len(units):
        if units[position] == "\n":  # NEWLINE; no other rule starts with a line feed
            out.append("\n")
            begin_line = True
            position += 1
            continue
        space = _FAST_SPACE.match(units, position)
        if space is not None:
            position = space.end()
            continue
        word = _FAST_WORD.match(units, position)
        if word is not None and word.group().lower() not in _ASSIMILATIONS:
            token, consumed = word.group(), word.end() - position
        else:
            length, action = _longest(units, position, below)
            token, consumed = _act(action, units[position: position + length])
        position += consumed
        if token is None:
            continue
        if token == "*NL*":
            out.append("\n")
            begin_line = True
            continue
        if not begin_line:
            out.append(" ")
        begin_line = False
        out.append(_from_code_units(token).lower())
    return "".join(out)


def filter_punctuation(line: str) -> str:
    """pycocoevalcap's `' '.join([w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS])`."""
    return " ".join(word for word in line.rstrip().split(" ") if word not in PUNCTUATIONS)


def tokenize_for_image(captions_for_image: Mapping[str, Sequence[Mapping[str, str]]]) -> dict[str, list[str]]:
    """pycocoevalcap `PTBTokenizer().tokenize` without Java: `{image_id: [{"caption": str}, ...]}` →
    `{image_id: [tokenised caption, ...]}` (an image whose line the lexer merged away gets fewer captions,
    as with the jar)."""
    image_ids = [key for key, captions in captions_for_image.items() for _ in range(len(captions))]
    sentences = "\n".join(c["caption"].replace("\n", " ") for captions in captions_for_image.values() for c in captions)
    lines = lex_lines(sentences).split("\n")
    tokenized: dict[str, list[str]] = {}
    for image_id, line in zip(image_ids, lines):
        tokenized.setdefault(image_id, []).append(filter_punctuation(line))
    return tokenized
