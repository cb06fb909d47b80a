"""METEOR 1.5's English resources, read at run time from the files pycocoevalcap installs (nothing redistributed).

- `meteor-1.5.jar` (a zip): `function/english.words` (function words, one a line, UTF-8),
  `nonbreaking/english.prefixes` (Moses non-breaking prefixes), `synonym/english.synsets` (word line,
  then a line of WordNet synset ids) and `synonym/english.exceptions` (base line, then a line of irregular
  forms). Loaded as in `aligner/Aligner.java` `setupModules`, `aligner/SynonymDictionary.java` and
  `util/Normalizer.java` `nbpList` (cmu-mtlab/meteor).
- `data/paraphrase-en.gz`: 5.27 M entries of three lines (probability, reference phrase, paraphrase),
  read by `aligner/ParaphraseTransducer.java`. Python cannot afford to parse it on every call (~15 s), so
  the first use writes an index next to the other gcgbench caches (`$XDG_CACHE_HOME/gcgbench/meteor/`, or
  `$GCGBENCH_METEOR_INDEX_DIR` when set; SQLite, keyed by the table's size and sha256 prefix): every entry,
  in file order, under its rarest word (counted over the whole table). A batch of captions then reads only
  the entries whose key word occurs in it and keeps those whose words all occur in it; an entry with any
  other word cannot match (a paraphrase match needs every word of both phrases in the two sentences), so
  this filter is exact.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import hashlib
import importlib.util
import os
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from collections.abc import Mapping
from typing import Iterable, Iterator

from gcgbench.api.errors import GcgbenchError
from gcgbench.metrics.meteor.java import java_tokens

INDEX_VERSION = 1


class MeteorResourceError(GcgbenchError):
    """The METEOR jar or its paraphrase table is missing or unreadable."""


def pycocoevalcap_meteor_dir() -> Path:
    """Folder of pycocoevalcap's `meteor` package (holds `meteor-1.5.jar` and `data/paraphrase-en.gz`)."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise MeteorResourceError("pycocoevalcap is not installed; METEOR needs its meteor-1.5.jar resources")
    return Path(list(spec.submodule_search_locations)[0]) / "meteor"


def jar_path() -> Path:
    path = pycocoevalcap_meteor_dir() / "meteor-1.5.jar"
    if not path.is_file():
        raise MeteorResourceError(f"{path}: missing (pycocoevalcap installs it)")
    return path


def paraphrase_path() -> Path:
    path = pycocoevalcap_meteor_dir() / "data" / "paraphrase-en.gz"
    if not path.is_file():
        raise MeteorResourceError(f"{path}: missing (pycocoevalcap installs it)")
    return path


def _jar_lines(member: str) -> list[str]:
    """Lines of one jar member as `BufferedReader.readLine` gives them (UTF-8; \\n, \\r and \\r\\n end a line)."""
    try:
        with zipfile.ZipFile(jar_path()) as jar:
            text = jar.read(member).decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise MeteorResourceError(f"{jar_path()}: cannot read {member}: {error}") from error
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@lru_cache(maxsize=1)
def function_words() -> frozenset[str]:
    """`function/english.words`: every line, as is."""
    return frozenset(_jar_lines("function/english.words"))


@lru_cache(maxsize=1)
def nonbreaking_prefixes() -> dict[str, bool]:
    """`nonbreaking/english.prefixes` as {prefix: numeric_only} (Normalizer.nbpList: first token, '#' lines
    skipped, numeric-only when the second token is '#NUMERIC_ONLY#'; a later line overrides)."""

    prefixes: dict[str, bool] = {}
    for line in _jar_lines("nonbreaking/english.prefixes"):
        tokens = java_tokens(line)
        if not tokens or tokens[0].startswith("#"):
            continue
        prefixes[tokens[0]] = len(tokens) > 1 and tokens[1] == "#NUMERIC_ONLY#"
    return prefixes


class SynsetIds(Mapping[str, frozenset[int]]):
    """word → its synset ids, parsed from the word's id line on first lookup: a batch of captions asks for a few
    hundred of the 150 k words, and parsing every line up front cost ~1 s per process. As `SynonymDictionary`, a
    later line for the same word replaces an earlier one."""

    def __init__(self, id_lines: dict[str, str]):
        self._id_lines = id_lines
        self._parsed: dict[str, frozenset[int]] = {}

    def __getitem__(self, word: str) -> frozenset[int]:
        ids = self._parsed.get(word)
        if ids is None:
            ids = frozenset(int(token) for token in java_tokens(self._id_lines[word]))
            self._parsed[word] = ids
        return ids

    def __contains__(self, word: object) -> bool:
        return word in self._id_lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._id_lines)

    def __len__(self) -> int:
        return len(self._id_lines)


@dataclass(frozen=True)
class Synonyms:
    """`SynonymDictionary`: word → synset ids, irregular form → base words (in file order)."""

    synsets: Mapping[str, frozenset[int]]
    bases: dict[str, tuple[str, ...]]
    cache: dict[str, frozenset[int]] = field(default_factory=dict, compare=False, repr=False)


@lru_cache(maxsize=1)
def synonyms() -> Synonyms:
    bases: dict[str, list[str]] = {}
    lines = _jar_lines("synonym/english.exceptions")
    for base, forms in zip(lines[0::2], lines[1::2]):
        for form in java_tokens(forms):
            bases.setdefault(form, []).append(base)
    lines = _jar_lines("synonym/english.synsets")
    synsets = SynsetIds(dict(zip(lines[0::2], lines[1::2])))
    return Synonyms(synsets, {form: tuple(words) for form, words in bases.items()})


# ------------------------------------------------------------------------------------------ paraphrases


def _entries(path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(reference words, paraphrase words) of every entry, in file order (probability lines skipped)."""

    with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as stream:
        text_lines = (line.rstrip("\r\n") for line in stream)
        for _probability in text_lines:
            reference = next(text_lines, None)
            paraphrase = next(text_lines, None)
            if reference is None or paraphrase is None:
                raise MeteorResourceError(f"{path}: truncated entry at the end of the file")
            yield java_tokens(reference), java_tokens(paraphrase)


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return f"{path.stat().st_size}-{digest.hexdigest()[:16]}"


INDEX_DIR_ENV = "GCGBENCH_METEOR_INDEX_DIR"


def index_dir() -> Path:
    """`$GCGBENCH_METEOR_INDEX_DIR` when set (the test suite keeps one index across sessions there), else
    `$XDG_CACHE_HOME/gcgbench/meteor` (default `~/.cache/gcgbench/meteor`). The file name carries the table's
    fingerprint and the index version, so a shared folder never serves a stale index."""
    override = os.environ.get(INDEX_DIR_ENV)
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gcgbench" / "meteor"


def _build_index(source: Path, target: Path) -> None:
    counts: collections.Counter[str] = collections.Counter()
    for reference, paraphrase in _entries(source):
        counts.update(set(reference) | set(paraphrase))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        with contextlib.closing(sqlite3.connect(temporary)) as db:
            db.execute("CREATE TABLE entry (id INTEGER PRIMARY KEY, key TEXT NOT NULL, ref TEXT NOT NULL, par TEXT NOT NULL)")

            def rows() -> Iterator[tuple[int, str, str, str]]:
                for number, (reference, paraphrase) in enumerate(_entries(source)):
                    if not reference:
                        continue  # a path that ends at the root state: `getPaths` never emits it
                    key = min(set(reference) | set(paraphrase), key=lambda word: (counts[word], word))
                    yield number, key, " ".join(reference), " ".join(paraphrase)

            db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?)", rows())
            db.execute("CREATE INDEX entry_key ON entry (key)")
            db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            db.commit()
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


@lru_cache(maxsize=1)
def paraphrase_index() -> Path:
    """Path of the SQLite index of `paraphrase-en.gz`, built on first use (about a minute, once)."""
    source = paraphrase_path()
    target = index_dir() / f"paraphrase-en-{_fingerprint(source)}-v{INDEX_VERSION}.sqlite"
    if not target.is_file():
        try:
            _build_index(source, target)
        except (OSError, sqlite3.Error) as error:
            raise MeteorResourceError(f"cannot build the METEOR paraphrase index {target}: {error}") from error
    return target


def paraphrases_for(vocabulary: Iterable[str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every (reference phrase, paraphrase) entry whose words all lie in `vocabulary`, in file order."""
    words = set(vocabulary)
    if not words:
        return []
    found: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
    with contextlib.closing(sqlite3.connect(f"file:{paraphrase_index()}?mode=ro", uri=True)) as db:
        query = "SELECT id, ref, par FROM entry WHERE key = ?"
        for word in words:
            for number, reference, paraphrase in db.execute(query, (word,)):
                reference_words = tuple(reference.split(" "))
                paraphrase_words = tuple(paraphrase.split(" ")) if paraphrase else ()
                if words.issuperset(reference_words) and words.issuperset(paraphrase_words):
                    found.append((number, reference_words, paraphrase_words))
    found.sort(key=lambda entry: entry[0])
    return [(reference, paraphrase) for _, reference, paraphrase in found]
