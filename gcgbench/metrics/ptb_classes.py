"""The letters and digits of CoreNLP 3.4.1's PTBLexer, read from the compiled lexer in the jar pycocoevalcap installs.

JFlex's `[:letter:]` and `[:digit:]` are Java's `Character.isLetter` / `isDigit` of the JDK that generated
the lexer (Unicode 6.0), frozen into the character map `ZZ_CMAP_PACKED` of
`edu/stanford/nlp/process/PTBLexer.class`. Python's Unicode is newer: some 550 BMP characters are letters or
digits for Python and not for the jar (e.g. U+037F, U+0528–U+052F, U+A69E) and two the other way round
(U+1885, U+1886). So the Python tokenizer takes them from the jar (a zip: no Java needed): the map groups
units into classes; every unit that no rule mentions but `[:letter:]`, `[:uppercase:]` or `[:digit:]` falls
into the class of U+4E00 (a plain letter), of U+0410 (a plain upper-case letter) or of U+0661 (a plain
digit), and units that no rule mentions at all share the class of U+0001. Units in explicitly listed sets
(ASCII, the lexer's own ranges) are old characters, for which Python's categories agree with Java's.
"""

from __future__ import annotations

import struct
import unicodedata
import zipfile
from functools import lru_cache
from pathlib import Path

from gcgbench.api.errors import GcgbenchError
from gcgbench.metrics.meteor.resources import pycocoevalcap_meteor_dir

LEXER_CLASS = "edu/stanford/nlp/process/PTBLexer.class"


def corenlp_jar() -> Path:
    return pycocoevalcap_meteor_dir().parent / "tokenizer" / "stanford-corenlp-3.4.1.jar"


def _modified_utf8(data: bytes) -> list[int]:
    """UTF-16 code units of a class-file string (Java's modified UTF-8, JVM spec §4.4.7).

    It is UTF-8 except for two things: U+0000 is the two bytes C0 80, and a unit of a surrogate pair is
    encoded on its own in three bytes. So: C0 80 back to 00 (C0 is never a continuation byte), then Python's
    UTF-8 decoder with `surrogatepass`, which keeps each encoded surrogate as one code point."""
    try:
        text = data.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as error:
        raise GcgbenchError(f"{corenlp_jar()}: a string constant of {LEXER_CLASS} is not modified UTF-8 ({error})") from error
    return [ord(char) for char in text]


def _utf8_constants(data: bytes) -> list[list[int]]:
    """Every CONSTANT_Utf8 of a class file's constant pool (JVM spec §4.4)."""
    count = struct.unpack(">H", data[8:10])[0]
    position, index, strings = 10, 1, []
    while index < count:
        tag = data[position]
        if tag == 1:
            length = struct.unpack(">H", data[position + 1: position + 3])[0]
            strings.append(_modified_utf8(data[position + 3: position + 3 + length]))
            position += 3 + length
        elif tag in (3, 4, 9, 10, 11, 12, 17, 18):
            position += 5
        elif tag in (5, 6):
            position += 9
            index += 1  # longs and doubles take two slots
        elif tag in (7, 8, 16, 19, 20):
            position += 3
        elif tag == 15:
            position += 4
        else:
            raise GcgbenchError(f"{corenlp_jar()}: unexpected constant-pool tag {tag} in {LEXER_CLASS}")
        index += 1
    return strings


@lru_cache(maxsize=1)
def character_map() -> tuple[int, ...]:
    """`ZZ_CMAP`: the lexer's character class of every UTF-16 code unit 0..0xFFFF."""
    try:
        with zipfile.ZipFile(corenlp_jar()) as jar:
            data = jar.read(LEXER_CLASS)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise GcgbenchError(f"{corenlp_jar()}: cannot read {LEXER_CLASS} ({error}); pycocoevalcap installs it") from error
    # ZZ_CMAP_PACKED is the one string of (count, class) pairs whose counts cover the 65536 code units.
    packed = [s for s in _utf8_constants(data) if len(s) % 2 == 0 and len(s) > 2 and sum(s[0::2]) == 0x10000]
    if len(packed) != 1:
        raise GcgbenchError(f"{corenlp_jar()}: no single ZZ_CMAP_PACKED in {LEXER_CLASS}")
    cmap: list[int] = []
    for count, value in zip(packed[0][0::2], packed[0][1::2]):
        cmap.extend([value] * count)
    return tuple(cmap)


def _units(is_member, below: int) -> str:  # noqa: ANN001
    """A regex character-class body (\\uXXXX escapes and ranges) of the code units under `below` that
    `is_member` accepts."""
    parts, unit = [], 0
    while unit < below:
        if not is_member(unit):
            unit += 1
            continue
        end = unit
        while end + 1 < below and is_member(end + 1):
            end += 1
        parts.append(f"\\u{unit:04x}" if end == unit else f"\\u{unit:04x}-\\u{end:04x}")
        unit = end + 1
    return "".join(parts)


@lru_cache(maxsize=2)
def letter_units(below: int = 0x10000) -> str:
    """Class body of the lexer's `[:letter:]`, its code units under `below` (default: all)."""
    cmap = character_map()
    plain, none = {cmap[0x4E00], cmap[0x0410]}, cmap[0x0001]

    def is_letter(unit: int) -> bool:
        if cmap[unit] in plain:
            return True
        if cmap[unit] == none or 0xD800 <= unit <= 0xDFFF:
            return False
        return unicodedata.category(chr(unit)).startswith("L")

    return _units(is_letter, below)


@lru_cache(maxsize=2)
def digit_units(below: int = 0x10000) -> str:
    """Class body of the lexer's `[:digit:]`, its code units under `below` (default: all)."""
    cmap = character_map()
    plain, none = cmap[0x0661], cmap[0x0001]

    def is_digit(unit: int) -> bool:
        if cmap[unit] == plain:
            return True
        if cmap[unit] == none or 0xD800 <= unit <= 0xDFFF:
            return False
        return unicodedata.category(chr(unit)) == "Nd"

    return _units(is_digit, below)
