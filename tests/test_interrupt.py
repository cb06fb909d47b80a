"""Ctrl-C at any phase of `gcgbench run` (issue 15, item 2): SIGINT during generation, during METEOR
(a JVM child) and between tasks ends the process within 10 s with status 130 and "interrupted", leaves
no Java process behind, and keeps the cached generations and the scores of the tasks already scored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gcgbench.data.sample import write_sample
from gcgbench.runner.children import descendants
from gcgbench.runner.store import GenerationCache

pytestmark = [pytest.mark.java, pytest.mark.slow]
TESTS = Path(__file__).resolve().parent
DEADLINE_S = 10.0


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


def start(sample, folder: Path, delay: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "gcgbench", "run", "--model", "counting_backend:CountingBackend",
               "--model-args", f"log={folder / 'log'},delay={delay}", "--task", "gcg_val,gcg_test",
               "--data-root", str(sample), "--text-model", "minilm", "--bootstrap", "5",
               "--cache", str(folder / "cache"), "--output", str(folder / "out"), *extra]
    environment = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # SIGINT back to its default first: a suite started as a background job of a non-interactive shell
    # (`cmd &` in a script) inherits SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def logged(folder: Path) -> int:
    try:
        return len((folder / "log").read_text().splitlines())
    except OSError:
        return 0


def java_children(process: subprocess.Popen) -> list[int]:
    found = []
    for pid in descendants(process.pid):
        try:
            if b"java" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                found.append(pid)
        except OSError:
            pass
    return found


def wait_for(condition, process: subprocess.Popen, timeout_s: float = 120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert process.poll() is None, f"ended before the interrupt: {process.communicate()}"
        time.sleep(0.05)
    process.kill()
    pytest.fail("the phase to interrupt never came")


def interrupt(process: subprocess.Popen) -> tuple[int, str]:
    """SIGINT to the Python process only (as `kill -INT`; a terminal's Ctrl-C also reaches the JVM)."""
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"still running {DEADLINE_S} s after SIGINT")
    assert time.monotonic() - sent < DEADLINE_S
    return process.returncode, stderr


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cached_entries(folder: Path) -> int:
    store = GenerationCache(folder / "cache")
    try:
        return store.info().entries
    finally:
        store.close()


def test_sigint_during_generation(sample, tmp_path):
    process = start(sample, tmp_path, delay="0.5")
    # the backend logs a doc before returning it and the runner caches it after: the second logged doc (one
    # doc a batch) means the first batch has finished, so the interrupt below cannot land between the two
    wait_for(lambda: logged(tmp_path) >= 2, process)
    code, stderr = interrupt(process)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert cached_entries(tmp_path) >= 1                     # every finished batch stayed cached
    assert not (tmp_path / "out" / "results.json").exists()  # nothing was scored


def test_sigint_during_meteor_kills_java(sample, tmp_path):
    process = start(sample, tmp_path, "0", "--meteor", "java")   # the jar: the Python METEOR starts no JVM

    def meteor_running():
        return [pid for pid in java_children(process)
                if b"meteor" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    jvms = wait_for(meteor_running, process)
    time.sleep(0.5)  # let it get into compute_score
    code, stderr = interrupt(process)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    time.sleep(0.2)
    assert not [pid for pid in jvms if alive(pid)], "a JVM outlived gcgbench"
    predictions = tmp_path / "out" / "predictions" / "gcg_val.jsonl"
    assert cached_entries(tmp_path) == len(predictions.read_text().splitlines()) == logged(tmp_path)


def test_sigint_between_tasks_keeps_the_scores_of_finished_tasks(sample, tmp_path):
    process = start(sample, tmp_path, delay="0.5")
    first_task_docs = None

    def second_task_generating():
        nonlocal first_task_docs
        first = tmp_path / "out" / "predictions" / "gcg_val.jsonl"
        if first_task_docs is None and first.exists():
            first_task_docs = len(first.read_text().splitlines())
        return first_task_docs is not None and logged(tmp_path) > first_task_docs

    wait_for(second_task_generating, process)
    code, stderr = interrupt(process)
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(results["results"]) == ["gcg_val"] and results["n_samples"]["gcg_val"] == first_task_docs
    assert results["interrupted"] == {"scored": ["gcg_val"], "not_scored": ["gcg_test"]}
    assert (tmp_path / "out" / "samples" / "gcg_val.jsonl").exists()
    # Every batch the runner got back is cached. The backend logs a doc just before returning it, so the one
    # batch in flight when the signal lands (one doc: the default batch size) may be logged and not cached.
    cached, generated = cached_entries(tmp_path), logged(tmp_path)
    assert generated - 1 <= cached <= generated and generated > first_task_docs <= cached
