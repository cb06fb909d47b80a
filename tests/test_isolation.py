"""The suite never touches the user's real caches (tests/conftest.py)."""

from pathlib import Path

from gcgbench.api import hashing
from gcgbench.data.sample import root as sample
from gcgbench.metrics.meteor import resources as meteor
from gcgbench.runner import store

CHECKOUT = Path(__file__).resolve().parents[1]


def test_every_cache_folder_is_the_session_temporary_one(isolated_user_cache):
    home_cache = Path.home() / ".cache"
    for folder in (store.default_cache_dir(), sample.default_cache_dir(), hashing._hash_cache_path()):
        assert Path(folder).is_relative_to(isolated_user_cache)
        assert not Path(folder).is_relative_to(home_cache)


def test_the_meteor_index_is_kept_in_the_checkout_not_the_user_cache():
    folder = meteor.index_dir()
    assert folder == CHECKOUT / "out" / "test-cache" / "meteor"
    assert not folder.is_relative_to(Path.home() / ".cache")


def test_without_the_override_the_meteor_index_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(meteor.INDEX_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert meteor.index_dir() == tmp_path / "gcgbench" / "meteor"
    monkeypatch.setenv(meteor.INDEX_DIR_ENV, str(tmp_path / "elsewhere"))
    assert meteor.index_dir() == tmp_path / "elsewhere"
