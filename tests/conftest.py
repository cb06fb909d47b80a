"""Test-suite isolation: no test reads or writes the user's real caches.

Everything gcgbench keeps between runs lives under `$XDG_CACHE_HOME` (default `~/.cache`): the generation
cache (`gcgbench/`, runner/store.py `default_cache_dir`), the bundled sample data (`gcgbench/sample-v1`,
data/sample.py `default_cache_dir`) and the file-hash cache (`gcgbench/file-sha256.json`,
api/hashing.py). For the whole session `XDG_CACHE_HOME` points at one temporary folder, so the bundled
sample (slow to generate) is made once per session and shared by every test, and `make test` leaves
`~/.cache/gcgbench` as it found it. Subprocesses started by tests inherit the variable.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_user_cache(tmp_path_factory):
    """`XDG_CACHE_HOME` = a session temporary folder (shared sample data, empty generation cache)."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        # results of these tests must not depend on where a developer keeps the leaderboards or data
        patch.delenv("GCGBENCH_DATA", raising=False)
        patch.delenv("GCGBENCH_LEADERBOARDS", raising=False)
        yield folder
