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
    """UTF-16 code units of a class-file string (Java's modified UTF-8)."""
    units, index = [], 0
    while index < len(data):
        byte = data[index]
        if byte < 0x80:
            units.append(byte)
            index += 1
        elif byte >> 5 == 0b110:
            units.append(((byte & 0x1F) << 6) | (data[index + 1] & 0x3F))
            index += 2
        else:
            units.append(((byte & 0x0F) << 12) | ((data[index + 1] & 0x3F) << 6) | (data[index + 2] & 0x3F))
            index += 3
    return units


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


def _units(is_member) -> str:  # noqa: ANN001
    """A regex character-class body (\\uXXXX escapes and ranges) of the code units `is_member` accepts."""
    parts, unit = [], 0
    while unit < 0x10000:
        if not is_member(unit):
            unit += 1
            continue
        end = unit
        while end + 1 < 0x10000 and is_member(end + 1):
            end += 1
        parts.append(f"\\u{unit:04x}" if end == unit else f"\\u{unit:04x}-\\u{end:04x}")
        unit = end + 1
    return "".join(parts)


@lru_cache(maxsize=1)
def letter_units() -> str:
    """Class body of the lexer's `[:letter:]`."""
    cmap = character_map()
    plain, none = {cmap[0x4E00], cmap[0x0410]}, cmap[0x0001]

    def is_letter(unit: int) -> bool:
        if cmap[unit] in plain:
            return True
        if cmap[unit] == none or 0xD800 <= unit <= 0xDFFF:
            return False
        return unicodedata.category(chr(unit)).startswith("L")

    return _units(is_letter)


@lru_cache(maxsize=1)
def digit_units() -> str:
    """Class body of the lexer's `[:digit:]`."""
    cmap = character_map()
    plain, none = cmap[0x0661], cmap[0x0001]

    def is_digit(unit: int) -> bool:
        if cmap[unit] == plain:
            return True
        if cmap[unit] == none or 0xD800 <= unit <= 0xDFFF:
            return False
        return unicodedata.category(chr(unit)) == "Nd"

    return _units(is_digit)
