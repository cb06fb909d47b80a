"""Test-suite isolation: no test reads or writes the user's real caches.

Everything gcgbench keeps between runs lives under `$XDG_CACHE_HOME` (default `~/.cache`): the generation
cache (`gcgbench/`, runner/store.py `default_cache_dir`), the bundled sample data (`gcgbench/sample-v1`,
data/sample/root.py `default_cache_dir`) and the file-hash cache (`gcgbench/file-sha256.json`,
api/hashing.py). For the whole session `XDG_CACHE_HOME` points at one temporary folder, the same for every
pytest-xdist worker (`session_folder`; gcgbench's caches are safe for concurrent processes, as for torchrun
ranks), so the bundled sample is made once per session and a generation one worker made is read back by the
other, and `make test` leaves `~/.cache/gcgbench` as it found it. Subprocesses started by tests inherit the
variable.

One cache outlives the session: the METEOR paraphrase index (metrics/meteor/resources.py, ~75 s and
~400 MB to build, named by the paraphrase table's fingerprint and the index version, so it can never be
stale). `GCGBENCH_METEOR_INDEX_DIR` points it at `out/test-cache/meteor` in this checkout (git-ignored,
removed by `make clean`), built by the first session and read by every later one. On a fresh checkout an xdist
session starts its build in a background process at once (`meteor_index_in_the_background`); a test that needs
METEOR before it is done waits on the index's own file lock (metrics/meteor/resources.py), every other test runs
meanwhile, so the ~75 s build leaves no core idle.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

METEOR_INDEX_DIR = Path(__file__).resolve().parents[1] / "out" / "test-cache" / "meteor"


def session_folder(tmp_path_factory) -> Path:
    """A folder every process of this pytest session shares. Under pytest-xdist each worker has its own base
    temporary folder, `<session's>/popen-gwK` (or `<--basetemp>/gwK`): its parent is the session's."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / "shared-by-workers"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session", autouse=True)
def isolated_user_cache(tmp_path_factory):
    """`XDG_CACHE_HOME` = a session temporary folder shared by the workers (the sample data, the generation
    cache: empty when the session starts)."""
    folder = session_folder(tmp_path_factory) / "xdg-cache"
    folder.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        patch.setenv("GCGBENCH_METEOR_INDEX_DIR", str(METEOR_INDEX_DIR))
        # results of these tests must not depend on where a developer keeps the leaderboards or data
        patch.delenv("GCGBENCH_DATA", raising=False)
        patch.delenv("GCGBENCH_LEADERBOARDS", raising=False)
        yield folder


@pytest.fixture(scope="session", autouse=True)
def meteor_index_in_the_background(isolated_user_cache):
    """Under pytest-xdist (the whole suite) the first worker starts building a missing METEOR index in the
    background and waits for it at the end of the session. A single-process run (one test file, say) builds it
    only when a test needs it."""
    from gcgbench.metrics.meteor import resources

    try:
        missing = os.environ.get("PYTEST_XDIST_WORKER") == "gw0" and not resources.index_path().is_file()
    except resources.MeteorResourceError:
        missing = False   # no pycocoevalcap: the METEOR tests say so themselves
    builder = None
    if missing:
        builder = subprocess.Popen([sys.executable, "-c", "from gcgbench.metrics.meteor.resources import "
                                    "paraphrase_index; paraphrase_index()"], stdout=subprocess.DEVNULL)
    yield
    if builder is not None:
        builder.wait()


class TinyRuns(Mapping):
    """model -> run folder of `gcgbench run --model M --task gcg_val --bootstrap 50` (the embedded tiny model,
    no model args, the bundled sample), each made on first access (~10-30 s on 2 cores) by whichever worker
    asks first, in the folder the workers share: a worker that asks while the other is making it waits (a file
    lock) and then reads it. Generations go to the session's generation cache, so a later run of the same
    model on the same data (e.g. `gcgbench reproduce tiny-llava-as-sample`) reads them instead of generating."""

    MODELS = ("llava-as", "difflmm")

    def __init__(self, folder: Path):
        self._folder, self._runs = folder, {}

    def __getitem__(self, model: str) -> Path:
        if model not in self.MODELS:
            raise KeyError(model)
        if model not in self._runs:
            out, done = self._folder / f"tiny-run-{model}", self._folder / f"tiny-run-{model}.done"
            with open(self._folder / f"tiny-run-{model}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not done.exists():  # first to ask, or the one that asked first failed: (re)make it
                    from gcgbench.cli.app import main

                    shutil.rmtree(out, ignore_errors=True)
                    argv = ["run", "--model", model, "--task", "gcg_val", "--output", str(out), "--bootstrap", "50"]
                    # the run's own output goes to a log, not into the capture of the test that asked first
                    with open(self._folder / f"tiny-run-{model}.log", "w") as log, \
                            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                        code = main(argv)
                    assert code == 0, (self._folder / f"tiny-run-{model}.log").read_text()
                    done.touch()
            self._runs[model] = out
        return self._runs[model]

    def __iter__(self):
        return iter(self.MODELS)

    def __len__(self) -> int:
        return len(self.MODELS)


@pytest.fixture(scope="session")
def tiny_gcg_runs(tmp_path_factory, isolated_user_cache) -> TinyRuns:
    """Runs of the embedded tiny models on gcg_val, shared by tests that only read a run's outputs (compare,
    diagnose, the tiny reproduction card); a model runs only when a test asks for it."""
    return TinyRuns(session_folder(tmp_path_factory))
