"""The suite never touches the user's real caches (tests/conftest.py)."""

from pathlib import Path

from gcgbench.api import hashing
from gcgbench.data.sample import root as sample
from gcgbench.runner import store


def test_every_cache_folder_is_the_session_temporary_one(isolated_user_cache):
    home_cache = Path.home() / ".cache"
    for folder in (store.default_cache_dir(), sample.default_cache_dir(), hashing._hash_cache_path()):
        assert Path(folder).is_relative_to(isolated_user_cache)
        assert not Path(folder).is_relative_to(home_cache)
