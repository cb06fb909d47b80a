"""The generation cache (docs/cache.md): keys, lossless round trips, concurrency, crashes, corruption."""

import hashlib
import multiprocessing
import os
import pickle
import signal
import sqlite3
import time
from dataclasses import replace

import numpy as np
import pytest

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.types import RLE, Phrase, Prediction, Request
from gcgbench.runner.cache_entry import CacheCorruptionWarning, cache_key, make_entry
from gcgbench.runner.store import CacheError, GenerationCache, NullCache, open_cache

FINGERPRINT = {"name": "tiny", "args": {"size": "s"}, "checkpoint": {"model.safetensors": "ab" * 32}}
SETTINGS = GenerationSettings(seed=0, batch_size=1, device="cpu")


def request(i, prompt="Describe the image.", image_root="/data/images"):
    return Request(doc_id=f"d{i}", kind="grounded_caption", prompt=prompt, image_path=f"{image_root}/{i}.jpg",
                   height=6, width=5, inputs={"region": [0, 0, 2, 2]})


def prediction(doc_id, text="a cat on a mat", with_masks=True):
    if not with_masks:
        return Prediction(doc_id=doc_id, text=text)
    cat = np.zeros((6, 5), np.uint8)
    cat[1:3, 1:4] = 1
    mat = np.zeros((6, 5), np.uint8)
    mat[4:, :] = 1
    return Prediction(
        doc_id=doc_id, text=text,
        phrases=(Phrase("a cat", (RLE.from_mask(cat),), 0, 5), Phrase("a mat", (RLE.from_mask(mat),), 9, 14)),
        extra_masks=(RLE.from_mask(np.eye(6, 5, dtype=np.uint8)),),
        boxes=((1.0, 1.0, 4.0, 3.0), (0.0, 4.0, 5.0, 6.0)),
        extras={"attention_peaks": [[2, 3], [5, 1]], "note": "café ☕", "score": 0.25},
    )


def entry(i, text="a cat on a mat", task="gcg_val", version="1", fingerprint=FINGERPRINT, settings=SETTINGS,
          with_masks=True, doc_id=None):
    req = request(i) if doc_id is None else replace(request(i), doc_id=doc_id)
    return make_entry(fingerprint, task, version, req, settings, prediction(req.doc_id, text, with_masks))


def key(i, task="gcg_val", version="1", fingerprint=FINGERPRINT, settings=SETTINGS, **request_args):
    return cache_key(fingerprint, task, version, request(i, **request_args), settings)


# -- keys ---------------------------------------------------------------------------------------------

def test_key_changes_with_every_component_that_can_change_the_answer():
    base = key(0)
    changed = {
        "prompt": key(0, prompt="Describe the image briefly."),
        "doc": key(1),
        "fingerprint": key(0, fingerprint={**FINGERPRINT, "checkpoint": {"model.safetensors": "cd" * 32}}),
        "model args": key(0, fingerprint={**FINGERPRINT, "args": {"size": "m"}}),
        "task version": key(0, version="2"),
        "task": key(0, task="gcg_test"),
        "seed": key(0, settings=replace(SETTINGS, seed=1)),
        "device type": key(0, settings=replace(SETTINGS, device="cuda")),
    }
    assert base not in changed.values()
    assert len(set(changed.values())) == len(changed)
    assert len(base) == 64 and int(base, 16) >= 0


def test_key_ignores_image_path_batch_size_device_ordinal_and_dict_order():
    assert key(0) == key(0, image_root="/elsewhere/moved")
    assert key(0) == key(0, settings=replace(SETTINGS, batch_size=16))
    cuda0 = key(0, settings=replace(SETTINGS, device="cuda:0"))
    assert cuda0 == key(0, settings=replace(SETTINGS, device="cuda:3")) == key(0, settings=replace(SETTINGS, device="cuda"))
    reordered = {"checkpoint": FINGERPRINT["checkpoint"], "args": FINGERPRINT["args"], "name": "tiny"}
    assert key(0) == key(0, fingerprint=reordered)
    assert GenerationCache.key is cache_key and NullCache.key is cache_key


def test_entry_refuses_a_prediction_for_another_doc():
    with pytest.raises(ValueError, match="cannot be cached"):
        make_entry(FINGERPRINT, "gcg_val", "1", request(0), SETTINGS, prediction("d9"))


# -- storage ------------------------------------------------------------------------------------------

def test_predictions_with_masks_round_trip_exactly_across_reopen(tmp_path):
    entries = [entry(i) for i in range(3)] + [entry(3, with_masks=False)]
    with GenerationCache(tmp_path / "cache") as cache:
        assert cache.put_many(entries) == 4
        assert cache.put_many([]) == 0
    assert (tmp_path / "cache" / "generations.sqlite").is_file()
    with GenerationCache(tmp_path / "cache") as cache:
        found = cache.get_many([e.key for e in entries] + ["0" * 64])
    assert found == {e.key: e.prediction for e in entries}
    assert found.batch_sizes == {1: 4}
    assert found[entries[0].key].phrases[0].masks[0].decode()[1, 1] == 1
    connection = sqlite3.connect(tmp_path / "cache" / "generations.sqlite")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = connection.execute("SELECT model, task, task_version, doc_id, settings, batch_size FROM entries "
                             "WHERE key = ?", (entries[0].key,)).fetchone()
    assert row == ("tiny", "gcg_val", "1", "d0", '{"device":"cpu","seed":0}', 1)


def test_a_valid_entry_is_never_overwritten(tmp_path):
    cache = GenerationCache(tmp_path)
    first = entry(0, text="first answer")
    assert cache.put_many([first]) == 1
    assert cache.put_many([entry(0, text="second answer")]) == 0
    assert cache.get_many([first.key])[first.key].text == "first answer"


def test_cache_survives_pickling_to_another_process_object(tmp_path):
    cache = GenerationCache(tmp_path)
    cache.put_many([entry(0)])
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get_many([entry(0).key]) == {entry(0).key: entry(0).prediction}


def _write_range(db, start, stop, tag, barrier):
    cache = GenerationCache(db, busy_timeout=30)
    barrier.wait()
    for first in range(start, stop, 5):
        cache.put_many([entry(i, text=f"{tag} {i}") for i in range(first, min(stop, first + 5))])
    cache.close()


def test_two_processes_writing_overlapping_keys_both_finish(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    writers = [context.Process(target=_write_range, args=(tmp_path, 0, 300, "A", barrier)),
               context.Process(target=_write_range, args=(tmp_path, 150, 450, "B", barrier))]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [w.exitcode for w in writers] == [0, 0]
    keys = {key(i): i for i in range(450)}
    reported = []
    found = GenerationCache(tmp_path).get_many(keys, on_corrupt=reported.append)
    assert reported == [] and len(found) == 450
    for k, i in keys.items():
        assert found[k].doc_id == f"d{i}" and found[k].text in {f"A {i}", f"B {i}"}


def _batch_size(index):
    return 1500 if index % 3 == 2 else 4  # every third transaction is long, so the kill often lands in one


def _write_until_killed(db, committed):
    cache = GenerationCache(db)
    index = 0
    while True:
        cache.put_many([entry(j, doc_id=f"b{index}-{j}", with_masks=j % 50 == 0) for j in range(_batch_size(index))])
        committed.value = index + 1
        index += 1


def test_sigkill_while_writing_keeps_every_committed_batch(tmp_path):
    context = multiprocessing.get_context("spawn")
    committed = context.RawValue("i", 0)
    writer = context.Process(target=_write_until_killed, args=(tmp_path, committed))
    writer.start()
    deadline = time.monotonic() + 60
    while committed.value < 5 and time.monotonic() < deadline and writer.is_alive():
        time.sleep(0.01)
    time.sleep(0.02)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10)
    assert writer.exitcode == -signal.SIGKILL
    done = committed.value
    assert done >= 5

    connection = sqlite3.connect(tmp_path / "generations.sqlite")
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    counts = dict(connection.execute(
        "SELECT substr(doc_id, 2, instr(doc_id, '-') - 2), COUNT(*) FROM entries GROUP BY 1").fetchall())
    counts = {int(index): n for index, n in counts.items()}
    for index in range(done):
        assert counts.get(index) == _batch_size(index), f"committed batch {index} incomplete"
    assert set(counts) <= set(range(done + 1))  # at most the batch in flight beyond the last one reported
    assert all(n == _batch_size(index) for index, n in counts.items())  # no batch half-written
    cache = GenerationCache(tmp_path)
    assert cache.put_many([entry(0, doc_id="after-kill")]) == 1  # still writable
    assert cache.info().entries == sum(counts.values()) + 1


def _die_inside_a_transaction(db):
    cache = GenerationCache(db)
    cache.put_many([entry(j, doc_id=f"kept-{j}") for j in range(10)])
    rows = [entry(j, doc_id=f"lost-{j}").row(time.time()) for j in range(4000)]  # spills past the page cache
    connection = sqlite3.connect(db / "generations.sqlite", isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(f"INSERT INTO entries VALUES ({', '.join('?' * len(rows[0]))})", rows)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_transaction_killed_before_commit_is_rolled_back(tmp_path):
    process = multiprocessing.get_context("spawn").Process(target=_die_inside_a_transaction, args=(tmp_path,))
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL
    cache = GenerationCache(tmp_path, busy_timeout=5)
    assert cache.put_many([entry(0, doc_id="after")]) == 1  # the dead writer's lock is gone
    docs = [row[0] for row in cache._conn().execute("SELECT doc_id FROM entries ORDER BY doc_id")]
    assert docs == ["after"] + sorted(f"kept-{j}" for j in range(10))
    assert cache._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- corruption ---------------------------------------------------------------------------------------

def _set_payload(db, key_, payload, checksum=None):
    connection = sqlite3.connect(db)
    with connection:
        if checksum is None:
            connection.execute("UPDATE entries SET payload = ? WHERE key = ?", (payload, key_))
        else:
            connection.execute("UPDATE entries SET payload = ?, payload_sha256 = ? WHERE key = ?",
                               (payload, checksum, key_))
    connection.close()


def test_corrupted_rows_are_reported_and_treated_as_misses(tmp_path):
    db = tmp_path / "generations.sqlite"
    entries = [entry(i) for i in range(4)]
    cache = GenerationCache(tmp_path)
    cache.put_many(entries)
    original = sqlite3.connect(db).execute("SELECT payload FROM entries WHERE key = ?", (entries[0].key,)).fetchone()[0]
    _set_payload(db, entries[0].key, original.replace(b"a cat", b"a dog"))             # bytes flipped
    _set_payload(db, entries[1].key, b"{not json", hashlib.sha256(b"{not json").hexdigest())
    _set_payload(db, entries[2].key, b"\xff\xfe", hashlib.sha256(b"\xff\xfe").hexdigest())  # not UTF-8

    reported = []
    found = cache.get_many([e.key for e in entries], on_corrupt=reported.append)
    assert list(found) == [entries[3].key]
    by_key = {r.key: r for r in reported}
    assert set(by_key) == {e.key for e in entries[:3]}
    assert "checksum mismatch" in by_key[entries[0].key].reason
    assert "undecodable" in by_key[entries[1].key].reason and "undecodable" in by_key[entries[2].key].reason
    message = by_key[entries[0].key].message()
    assert entries[0].key in message and "gcg_val@1" in message and "'d0'" in message and "\n" not in message

    with pytest.warns(CacheCorruptionWarning, match=entries[0].key):
        assert entries[0].key not in cache.get_many([entries[0].key])

    # Regenerated entries replace the corrupted rows, and only those.
    assert cache.put_many([entry(i, text="a cat on a mat, again") for i in range(4)]) == 3
    again = cache.get_many([e.key for e in entries], on_corrupt=reported.append)
    assert len(reported) == 3 and len(again) == 4
    assert [again[e.key].text for e in entries] == ["a cat on a mat, again"] * 3 + ["a cat on a mat"]


def test_unusable_databases_are_refused_in_one_line(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "generations.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="not a usable gcgbench cache"):
        GenerationCache(tmp_path / "bad").get_many(["x"])
    GenerationCache(tmp_path / "new").put_many([entry(0)])
    with sqlite3.connect(tmp_path / "new" / "generations.sqlite") as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(CacheError, match="schema version 99"):
        GenerationCache(tmp_path / "new").info()


# -- info and prune -----------------------------------------------------------------------------------

def _populate(cache):
    other = {"name": "glamm", "args": {}, "checkpoint": {"a.bin": "01" * 32}}
    cache.put_many([entry(i) for i in range(3)])
    cache.put_many([entry(i, task="res_refcoco_val", version="2") for i in range(2)])
    cache.put_many([entry(i, fingerprint=other, settings=replace(SETTINGS, batch_size=4)) for i in range(4)])
    return other


def test_info_counts_entries_by_model_fingerprint_task_and_batch_size(tmp_path):
    cache = GenerationCache(tmp_path)
    assert cache.info().entries == 0
    other = _populate(cache)
    info = cache.info()
    assert info.entries == 9 and info.size_bytes > 0 and info.oldest <= info.newest
    assert info.by_model == {"glamm": 4, "tiny": 5}
    assert info.by_task == {"gcg_val@1": 7, "res_refcoco_val@2": 2}
    assert info.by_batch_size == {1: 5, 4: 4}
    sha = hashlib.sha256(__import__("json").dumps(other, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert info.by_fingerprint[f"glamm {sha[:12]}"] == 4


def test_prune_by_task_model_fingerprint_and_age(tmp_path):
    cache = GenerationCache(tmp_path)
    _populate(cache)
    with pytest.raises(ValueError, match="at least one filter"):
        cache.prune()
    assert cache.prune(task="res_refcoco_val@1") == 0
    assert cache.prune(task="res_refcoco_val@2") == 2
    assert cache.prune(task="gcg_val", model="nobody") == 0
    glamm = [name for name in cache.info().by_fingerprint if name.startswith("glamm")][0]
    assert cache.prune(fingerprint=glamm.split()[1][:8]) == 4
    with sqlite3.connect(tmp_path / "generations.sqlite") as connection:
        assert connection.execute("SELECT name FROM fingerprints").fetchall() == [("tiny",)]
        connection.execute("UPDATE entries SET created = created - 10 * 86400 WHERE doc_id = 'd0'")
    assert cache.prune(older_than=5 * 86400, vacuum=True) == 1
    assert cache.prune(model="tiny") == 2
    assert cache.info().entries == 0


@pytest.mark.parametrize("days", ["-1", "nan", "inf"])
def test_prune_refuses_an_age_that_is_not_a_number_of_days_and_keeps_every_entry(days, tmp_path, capsys):
    from gcgbench.cli.app import main

    cache = GenerationCache(tmp_path)
    _populate(cache)
    cache.close()
    assert main(["cache", "prune", "--cache", str(tmp_path), "--older-than-days", days]) == 2
    captured = capsys.readouterr()
    assert f"error: --older-than-days: must be a finite number of days >= 0, got {float(days)}" in captured.err
    assert GenerationCache(tmp_path).info().entries == 9


def test_null_cache_stores_nothing(tmp_path):
    cache = open_cache(None)
    assert isinstance(cache, NullCache) and not cache.enabled
    assert cache.put_many([entry(0)]) == 0 and cache.get_many([entry(0).key]) == {}
    assert cache.info().entries == 0 and cache.prune(task="gcg_val") == 0
    cache.close()
    assert isinstance(open_cache(tmp_path), GenerationCache)
