"""`--meteor` / `--tokenizer`: Python by default, Java only when asked for; validated, recorded, preflighted."""

from __future__ import annotations

import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.runner import preflight as preflight_module
from gcgbench.runner.preflight import check_tasks
from gcgbench.tasks.registry import get_task


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=4)


def test_scoring_options_default_to_python_and_reject_other_values():
    options = ScoringOptions()
    assert (options.meteor, options.tokenizer, options.needs_java) == ("python", "python", False)
    assert ScoringOptions(meteor="java").needs_java and ScoringOptions(tokenizer="java").needs_java
    with pytest.raises(InputError, match="--meteor: must be one of python, java, got 'nltk'"):
        ScoringOptions(meteor="nltk")


def test_preflight_asks_for_java_only_when_a_jar_is_chosen(sample, monkeypatch):
    monkeypatch.setattr(preflight_module.shutil, "which", lambda name: None)
    tasks = [get_task("gcg_val")]
    default = check_tasks(tasks, DataPaths(sample), "minilm")
    assert all(f.task != "java" for f in default)
    meteor = [f for f in default if f.task == "meteor"]
    assert len(meteor) == 1 and meteor[0].ok and "meteor-1.5.jar" in meteor[0].message
    with_java = [f for f in check_tasks(tasks, DataPaths(sample), "minilm", java=True) if f.task == "java"]
    assert len(with_java) == 1 and not with_java[0].ok and "--meteor java" in with_java[0].message


def test_validate_without_java(sample, monkeypatch, capsys):
    monkeypatch.setattr(preflight_module.shutil, "which", lambda name: None)
    assert main(["validate", "--task", "gcg_val", "--data-root", str(sample), "--text-model", "minilm"]) == 0
    assert "ready" in capsys.readouterr().out
    assert main(["validate", "--task", "gcg_val", "--data-root", str(sample), "--text-model", "minilm",
                 "--tokenizer", "java"]) == 2   # validate exits 2 on a problem (README)
    assert "FAIL java: no Java runtime on PATH" in capsys.readouterr().out


def test_unknown_implementation_is_a_usage_error(sample, capsys):
    assert main(["validate", "--task", "gcg_val", "--data-root", str(sample), "--meteor", "nltk"]) == 2
    assert "nltk" in capsys.readouterr().err
