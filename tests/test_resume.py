"""Crash safety of the runner with the generation cache: a SIGKILLed run resumes without regenerating
what was stored and ends with the results of an uninterrupted run; two runs sharing a cache both finish;
a corrupted cache row is reported and regenerated, never scored."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample

pytestmark = pytest.mark.java
TESTS = Path(__file__).resolve().parent
BACKEND = "counting_backend:CountingBackend"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=24)


def command(sample, cache, output, log, delay="0"):
    return [sys.executable, "-m", "gcgbench", "run", "--model", BACKEND, "--model-args", f"log={log},delay={delay}",
            "--task", "gcg_val,gcg_test", "--data-root", str(sample), "--text-model", "minilm", "--bootstrap", "30",
            "--cache", str(cache), "--output", str(output)]


def environment():
    return {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def comparable(folder: Path) -> dict:
    results = json.loads((folder / "results.json").read_text())
    results.pop("timing")
    for key in ("command", "cache"):
        results["config"].pop(key)
    results["config"]["model_args"].pop("log")
    return results


def generated(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def reference(sample, tmp_path_factory):
    """One uninterrupted run with a fresh cache (in this process: here the process is not under test), its
    generation log and its cache; tests copy the cache before changing it."""
    folder = tmp_path_factory.mktemp("reference")
    argv = command(sample, folder / "cache", folder / "out", folder / "gen.log")[3:]   # after `-m gcgbench`
    assert main(argv) == 0
    assert len(generated(folder / "gen.log")) == 24
    return folder


def test_sigkilled_run_resumes_without_regenerating(sample, reference, tmp_path):
    reference_log = reference / "gen.log"
    log, cache = tmp_path / "killed.log", tmp_path / "cache"
    process = subprocess.Popen(command(sample, cache, tmp_path / "killed", log, delay="0.3"), env=environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(generated(log)) < 5 and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = generated(log)
    assert 5 <= len(before) < 24, "the kill should land mid-way"
    assert not (tmp_path / "killed" / "results.json").exists()

    resumed = subprocess.run(command(sample, cache, tmp_path / "killed", log), env=environment(),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = generated(log)
    # every doc generated exactly once over both processes, except at most the batch in flight at the kill
    assert sorted(set(after)) == sorted(set(generated(reference_log)))
    assert len(after) - len(set(after)) <= 1
    assert comparable(tmp_path / "killed") == comparable(reference / "out")


def test_two_runs_sharing_a_cache_both_finish(sample, tmp_path):
    cache = tmp_path / "cache"
    runs = [subprocess.Popen(command(sample, cache, tmp_path / f"run{i}", tmp_path / f"run{i}.log", delay="0.05"),
                             env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read()
    assert comparable(tmp_path / "run0") == comparable(tmp_path / "run1")
    rows = sqlite3.connect(cache / "generations.sqlite").execute("select count(*) from entries").fetchone()[0]
    assert rows == 24


def test_corrupted_row_is_reported_and_regenerated(sample, reference, tmp_path):
    # the reference run's cache and log stand for a first run of this test
    cache, log = tmp_path / "cache", tmp_path / "gen.log"
    shutil.copytree(reference / "cache", cache)
    shutil.copy(reference / "gen.log", log)
    database = sqlite3.connect(cache / "generations.sqlite")
    key, payload = database.execute("select key, payload from entries where doc_id = 'sa_90000002'").fetchone()
    corrupted = payload.replace("a yellow", "a purple") if isinstance(payload, str) else payload.replace(b"a yellow", b"a purple")
    database.execute("update entries set payload = ? where key = ?", (corrupted, key))
    database.commit()
    database.close()
    second = subprocess.run(command(sample, cache, tmp_path / "second", log), env=environment(),
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "corrupted entry" in second.stderr and "sa_90000002" in second.stderr
    assert generated(log).count("sa_90000002") == 2 and len(generated(log)) == 25
    assert comparable(tmp_path / "second") == comparable(reference / "out")
