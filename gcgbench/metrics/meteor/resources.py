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
  in file order, under the longest word of its reference phrase, with the longest word of its paraphrase
  (or, when that is the same word, the entry's longest other word) beside it (one pass over the table, ~1 min).
  A batch of captions then reads only the entries whose two key words both occur in it (SQLite does that
  join against a temporary table of the batch's words) and keeps those whose words all occur in it; an entry
  with any other word cannot match (a paraphrase match needs every word of both phrases in the two
  sentences), so this filter is exact. Processes that need the index at once build it once: the first takes
  a file lock beside it, the others wait on that lock and then read the finished file.
"""

from __future__ import annotations

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
from gcgbench.api.phases import phase
from gcgbench.metrics.meteor.java import java_tokens

INDEX_VERSION = 3   # 3: the longest word of each phrase (2: the entry's longest and second-longest; 1: its rarest)


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


# A block whose phrases hold only single spaces between words (every block of METEOR 1.5's table) is already
# tokenised; any other whitespace `StringTokenizer` splits on sends the block's phrases through `java_tokens`.
_BLOCK_BYTES = 1 << 24


def _is_plain(text: str) -> bool:
    """Lines ending in \\n alone whose words are separated by single spaces, none leading or trailing: such
    lines are their own `java_tokens` joined by single spaces. (Plain substring tests: a regular expression
    over the 300 MB table took ~9 s.)"""
    return not (text.startswith(" ") or text.endswith(" ")
                or any(mark in text for mark in ("\r", "\t", "\f", "  ", "\n ", " \n")))


def _spaced(lines: list[str]) -> list[str]:
    """Each line (its line end removed) as its `java_tokens` joined by single spaces."""
    return [" ".join(java_tokens(line.rstrip("\r\n"))) for line in lines]


def _entry_blocks(path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """(reference phrases, paraphrases) of consecutive entries, block by block (about 16 MB of text each), in
    file order, words joined by single spaces; the probability lines are skipped. Lines end at \\n, \\r\\n or
    \\r, as Java's readLine."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="") as stream:
        pending: list[str] = []
        while lines := stream.readlines(_BLOCK_BYTES):
            pending += lines
            whole = len(pending) - len(pending) % 3
            block, pending = pending[:whole], pending[whole:]
            text = "".join(block)
            if _is_plain(text):  # every line ends in one \n: one split gives them all, without their line ends
                split = text.split("\n")
                yield split[1::3], split[2::3]
            else:
                yield _spaced(block[1::3]), _spaced(block[2::3])
        if pending:
            raise MeteorResourceError(f"{path}: truncated entry at the end of the file")


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


def _longest_word(phrase: str) -> str:
    """The phrase's longest word, the first of equal length ("" for an empty phrase). Long words are the rare
    ones, so few entries share a key."""
    return max(phrase.split(" "), key=len) if " " in phrase else phrase


def _second_key(reference: str, paraphrase: str, key: str) -> str:
    """The paraphrase's longest word, or when that is `key` (a quarter of the entries: "the house" ↔ "house"),
    the longest other word of the entry ("" when it has none): two different words filter far better than one."""
    second = _longest_word(paraphrase)
    if second != key:
        return second
    others = {*reference.split(" "), *paraphrase.split(" ")} - {key, ""}
    return max(sorted(others), key=len) if others else ""


def _build_index(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        with contextlib.closing(sqlite3.connect(temporary)) as db:
            db.execute("PRAGMA journal_mode = OFF")   # a failed build leaves only the temporary file, removed below
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE entry (id INTEGER PRIMARY KEY, key TEXT NOT NULL, second TEXT NOT NULL, "
                       "ref TEXT NOT NULL, par TEXT NOT NULL)")

            def rows() -> Iterator[tuple[int, str, str, str, str]]:
                number, reference_key = 0, ("", "")
                for references, paraphrases in _entry_blocks(source):
                    for reference, paraphrase in zip(references, paraphrases):
                        if reference:  # an empty reference is a path that ends at the root: `getPaths` never emits it
                            if reference_key[0] != reference:  # a reference's entries are consecutive
                                reference_key = (reference, _longest_word(reference))
                            key = reference_key[1]
                            yield number, key, _second_key(reference, paraphrase, key), reference, paraphrase
                        number += 1

            db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?)", rows())
            # key: the reference's longest word, second: another of the entry's words (`_second_key`); (key, second):
            # the second word is checked in the index, only matching rows are read from the table
            db.execute("CREATE INDEX entry_key ON entry (key, second)")
            db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
            db.commit()
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder/.build.lock` (POSIX `flock`; no lock where `fcntl` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows: two first runs at once may both build; each writes its own temporary file
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def index_path() -> Path:
    """Where the index of the installed table lives, built or not (the name holds the table's fingerprint and
    the index version)."""
    return index_dir() / f"paraphrase-en-{_fingerprint(paraphrase_path())}-v{INDEX_VERSION}.sqlite"


@lru_cache(maxsize=1)
def paraphrase_index() -> Path:
    """Path of the SQLite index of `paraphrase-en.gz`, built on first use (about a minute, once per machine;
    a process that finds another building it waits for that build). Indexes of other versions of the same
    table are removed once the new one is written."""
    target = index_path()
    if target.is_file():
        return target
    try:
        with phase("building the METEOR paraphrase index (once, about a minute)"), _build_lock(target.parent):
            if not target.is_file():
                _build_index(paraphrase_path(), target)
                for stale in target.parent.glob(f"{target.name.rsplit('-v', 1)[0]}-v*.sqlite"):
                    if stale != target:
                        stale.unlink(missing_ok=True)
    except (OSError, sqlite3.Error) as error:
        raise MeteorResourceError(f"cannot build the METEOR paraphrase index {target}: {error}") from error
    return target


def paraphrases_for(vocabulary: Iterable[str]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every (reference phrase, paraphrase) entry whose words all lie in `vocabulary`, in file order."""
    words = set(vocabulary)
    if not words:
        return []
    found: list[tuple[int, tuple[str, ...], tuple[str, ...]]] = []
    index = paraphrase_index()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as db:
            db.execute("CREATE TEMP TABLE vocabulary (word TEXT PRIMARY KEY) WITHOUT ROWID")
            db.executemany("INSERT INTO vocabulary VALUES (?)", ((word,) for word in words))
            # CROSS JOIN: SQLite walks the batch's words and looks each up in entry_key (never the other way round)
            query = ("SELECT entry.id, entry.ref, entry.par FROM vocabulary CROSS JOIN entry "
                     "ON entry.key = vocabulary.word "
                     "WHERE entry.second = '' OR entry.second IN (SELECT word FROM vocabulary)")
            for number, reference, paraphrase in db.execute(query):
                reference_words = tuple(reference.split(" "))
                paraphrase_words = tuple(paraphrase.split(" ")) if paraphrase else ()
                if words.issuperset(reference_words) and words.issuperset(paraphrase_words):
                    found.append((number, reference_words, paraphrase_words))
    except sqlite3.Error as error:
        raise MeteorResourceError(f"{index}: unreadable METEOR paraphrase index ({error}); delete the file and the "
                                  "next run builds it again") from error
    found.sort(key=lambda entry: entry[0])
    return [(reference, paraphrase) for _, reference, paraphrase in found]
