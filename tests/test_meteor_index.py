"""The METEOR paraphrase index (metrics/meteor/resources.py) on small hand-made tables: what `paraphrases_for`
returns equals a literal reading of the table (Java `StringTokenizer` words, `readLine` line ends, every entry
whose words all lie in the vocabulary, in file order), one build serves processes that ask at once, and a
truncated table is a one-line error."""

from __future__ import annotations

import gzip
import random
import re
import threading
import time
from pathlib import Path

import pytest

from gcgbench.metrics.meteor import resources


def write_table(path: Path, entries: list[tuple[str, str]], line_end: str = "\n") -> Path:
    with gzip.open(path, "wb") as stream:
        for number, (reference, paraphrase) in enumerate(entries):
            stream.write(f"0.{number + 1}{line_end}{reference}{line_end}{paraphrase}{line_end}".encode())
    return path


def literal_paraphrases(entries: list[tuple[str, str]], vocabulary: set[str]) -> list[tuple[tuple[str, ...], ...]]:
    """The table read the way ParaphraseTransducer.java tokenises it, filtered by brute force."""
    found = []
    for reference, paraphrase in entries:
        words = [tuple(t for t in re.split(r"[ \t\n\r\f]", phrase) if t) for phrase in (reference, paraphrase)]
        if words[0] and vocabulary.issuperset(words[0]) and vocabulary.issuperset(words[1]):
            found.append((words[0], words[1]))
    return found


@pytest.fixture
def table(tmp_path, monkeypatch):
    """Point the resources at a table in tmp_path and an index folder beside it; fresh lru caches."""
    def use(entries, line_end="\n"):
        path = write_table(tmp_path / "paraphrase-en.gz", entries, line_end)
        monkeypatch.setattr(resources, "paraphrase_path", lambda: path)
        monkeypatch.setenv(resources.INDEX_DIR_ENV, str(tmp_path / "index"))
        resources.paraphrase_index.cache_clear()
        return path

    yield use
    resources.paraphrase_index.cache_clear()


WORDS = ["a", "big", "dog", "large", "hound", "the", "photograph", "picture", "of", "an", "x", "kid", "child"]


def random_entries(rng: random.Random, count: int) -> list[tuple[str, str]]:
    def phrase(allow_empty: bool) -> str:
        size = rng.randint(0 if allow_empty else 1, 3)
        return " ".join(rng.choice(WORDS) for _ in range(size))
    return [(phrase(allow_empty=rng.random() < 0.05), phrase(allow_empty=True)) for _ in range(count)]


@pytest.mark.parametrize("seed", range(4))
def test_lookup_equals_the_literal_table_on_random_tables(table, seed):
    rng = random.Random(seed)
    entries = random_entries(rng, 400)
    table(entries)
    for _ in range(20):
        vocabulary = set(rng.sample(WORDS, rng.randint(1, len(WORDS))))
        assert resources.paraphrases_for(vocabulary) == literal_paraphrases(entries, vocabulary)


@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"])
def test_tabs_double_spaces_and_line_ends_split_as_java_does(table, line_end):
    entries = [("big  dog", "large\thound"), (" the kid ", "the child\f"), ("dog", ""), ("", "dog"),
               ("a\u00a0b", "x"), ("photograph", "picture")]
    table(entries, line_end)
    vocabulary = {"big", "dog", "large", "hound", "the", "kid", "child", "photograph", "picture", "a\u00a0b", "x"}
    found = resources.paraphrases_for(vocabulary)
    assert found == literal_paraphrases(entries, vocabulary)
    assert (("big", "dog"), ("large", "hound")) in found and (("dog",), ()) in found
    assert (("a\u00a0b",), ("x",)) in found      # a no-break space is no StringTokenizer delimiter
    assert resources.paraphrases_for({"photograph"}) == []   # both phrases' words are needed
    assert resources.paraphrases_for([]) == []


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_small_blocks_plain_or_not_and_a_missing_last_line_end_read_as_the_literal_table(table, monkeypatch,
                                                                                        line_end):
    """The build reads the table in blocks, each split at once when plain and word by word when not: with tiny
    blocks most entries straddle a block boundary, and some blocks hold a tab or a double space."""
    rng = random.Random(7)
    entries = random_entries(rng, 300)
    entries = [(r.replace(" ", rng.choice([" ", " ", "  ", "\t"]), 1), p) for r, p in entries]
    path = table(entries, line_end)
    with gzip.open(path, "rb") as stream:
        raw = stream.read()
    with gzip.open(path, "wb") as stream:  # the last paraphrase line has no line end
        stream.write(raw[: -len(line_end)])
    monkeypatch.setattr(resources, "_BLOCK_BYTES", 40)
    for _ in range(10):
        vocabulary = set(rng.sample(WORDS, rng.randint(1, len(WORDS))))
        assert resources.paraphrases_for(vocabulary) == literal_paraphrases(entries, vocabulary)


def test_a_truncated_table_is_a_one_line_error(table, tmp_path):
    path = table([("big dog", "large hound")])
    with gzip.open(path, "ab") as stream:
        stream.write(b"0.5\nlonely reference\n")
    with pytest.raises(resources.MeteorResourceError, match="truncated entry at the end of the file"):
        resources.paraphrase_index()
    assert not list((tmp_path / "index").glob("*.partial"))


def test_built_once_stale_versions_removed_and_a_second_process_waits(table, tmp_path, monkeypatch):
    table([("big dog", "large hound")])
    folder = tmp_path / "index"
    folder.mkdir()
    stem = f"paraphrase-en-{resources._fingerprint(resources.paraphrase_path())}"
    stale = folder / f"{stem}-v{resources.INDEX_VERSION - 1}.sqlite"
    stale.write_bytes(b"old")
    builds = []
    real_build = resources._build_index
    monkeypatch.setattr(resources, "_build_index",
                        lambda source, target: (builds.append(target), real_build(source, target)))
    # another process holds the build lock: this one waits for it, then finds the finished index and builds nothing
    waited = []
    with resources._build_lock(folder):
        worker = threading.Thread(target=lambda: waited.append(resources.paraphrase_index()))
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive() and not waited
        real_build(resources.paraphrase_path(), folder / f"{stem}-v{resources.INDEX_VERSION}.sqlite")
    worker.join(10)
    assert waited == [folder / f"{stem}-v{resources.INDEX_VERSION}.sqlite"] and builds == []
    assert resources.paraphrases_for({"big", "dog", "large", "hound"}) == [(("big", "dog"), ("large", "hound"))]
    # a fresh index elsewhere is built by this process, and the stale version beside it goes
    monkeypatch.setenv(resources.INDEX_DIR_ENV, str(folder))
    (folder / f"{stem}-v{resources.INDEX_VERSION}.sqlite").unlink()
    resources.paraphrase_index.cache_clear()
    resources.paraphrase_index()
    assert len(builds) == 1 and not stale.exists()


def test_a_damaged_index_is_a_one_line_error_naming_the_file(table):
    table([("big dog", "large hound")])
    index = resources.paraphrase_index()
    index.write_bytes(index.read_bytes()[:600])   # cut inside its first page: what a full disk leaves
    with pytest.raises(resources.MeteorResourceError, match=rf"{re.escape(str(index))}: unreadable METEOR paraphrase"):
        resources.paraphrases_for({"big", "dog"})
