"""The few Java library behaviours METEOR 1.5's results depend on, restated for Python strings.

- `java_hash`: `String.hashCode()` (s[0]·31^(n−1) + … + s[n−1] over UTF-16 code units, 32-bit signed). The
  aligner compares words by these keys, not by the strings (`aligner/Stage.java` `wordsToKeys`), so two
  different words with one hash ("Aa", "BB") count as an exact match in the jar, and here too.
- `java_tokens`: `java.util.StringTokenizer` with its default delimiters " \\t\\n\\r\\f".
- `java_trim`: `String.trim()` (drops every char <= U+0020 at both ends, nothing else).
- `java_split_bars`: `String.split("\\\\|\\\\|\\\\|")` (trailing empty strings removed).
- `java_double_str`: `Double.toString` for the integral counts METEOR prints in its statistics lines.
"""

from __future__ import annotations

import re

_TOKEN_DELIMITERS = re.compile(r"[ \t\n\r\f]+")
_BARS = re.compile(r"\|\|\|")
_HASHES: dict[str, int] = {}


def java_hash(text: str) -> int:
    """`java.lang.String.hashCode()` of `text`."""
    cached = _HASHES.get(text)
    if cached is not None:
        return cached
    value = 0
    units = text.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(units), 2):
        value = (31 * value + (units[index] | (units[index + 1] << 8))) & 0xFFFFFFFF
    if value >= 0x80000000:
        value -= 0x100000000
    if len(_HASHES) < 1_000_000:
        _HASHES[text] = value
    return value


def java_tokens(text: str) -> list[str]:
    """`StringTokenizer(text)` tokens: split on space, tab, newline, carriage return and form feed only."""
    return [token for token in _TOKEN_DELIMITERS.split(text) if token]


def java_trim(text: str) -> str:
    """`String.trim()`: strip the characters U+0000..U+0020 at both ends."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def java_split_bars(line: str) -> list[str]:
    """`line.split("\\\\|\\\\|\\\\|")`: like `re.split`, then trailing empty strings are removed."""
    parts = _BARS.split(line)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def java_double_str(value: float) -> str:
    """`Double.toString` of a non-negative integral double below 10^7 (what statistics lines hold): '15.0'."""
    if not (0.0 <= value < 1e7) or value != int(value):
        raise ValueError(f"not a METEOR count: {value!r}")
    return f"{int(value)}.0"
