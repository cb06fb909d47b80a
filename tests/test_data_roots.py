"""GranD-f images where GLaMM's eval reads them (`GranDf/GranDf_HA_images/val_test`) or where its
docs/datasets.md puts them (`GranDf_HA_images/val_test` beside `GranDf/`); results.json records which
(issue 15, item 10)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.tasks.registry import get_task
from gcgbench.tasks.spec import load_spec


@pytest.fixture(scope="module")
def documented_layout(tmp_path_factory):
    """The sample with its GranD-f images moved to GLaMM's docs/datasets.md place."""
    root = write_sample(tmp_path_factory.mktemp("sample"), n_images=8)
    shutil.move(root / "GranDf" / "GranDf_HA_images", root / "GranDf_HA_images")
    return root


def test_images_beside_grandf_are_found(documented_layout):
    task = get_task("gcg_val")
    paths = DataPaths(documented_layout)
    assert paths.file(task.spec, "images") == documented_layout / "GranDf_HA_images" / "val_test"
    docs = task.docs(paths)
    assert docs and all(Path(d.image_path).parent == documented_layout / "GranDf_HA_images" / "val_test"
                        and Path(d.image_path).is_file() for d in docs)


def test_the_eval_layout_wins_when_both_exist(documented_layout, tmp_path):
    root = tmp_path / "both"
    shutil.copytree(documented_layout, root)
    shutil.copytree(root / "GranDf_HA_images", root / "GranDf" / "GranDf_HA_images")
    assert DataPaths(root).file(get_task("gcg_val").spec, "images") == root / "GranDf" / "GranDf_HA_images" / "val_test"


@pytest.mark.java
def test_results_record_which_place_was_used(documented_layout, tmp_path, capsys):
    assert main(["run", "--model", "oracle", "--task", "gcg_val", "--data-root", str(documented_layout),
                 "--text-model", "minilm", "--bootstrap", "0", "--output", str(tmp_path / "run"), "--no-cache"]) == 0
    config = json.loads((tmp_path / "run" / "results.json").read_text())["config"]
    assert config["data_files"]["gcg_val"]["images"] == str(documented_layout / "GranDf_HA_images" / "val_test")
    assert main(["validate", "--task", "gcg_test", "--data-root", str(documented_layout), "--text-model",
                 "minilm"]) == 0


def test_missing_everywhere_names_both_places(tmp_path, capsys):
    root = write_sample(tmp_path / "sample", n_images=8)
    shutil.rmtree(root / "GranDf" / "GranDf_HA_images")
    assert main(["validate", "--task", "gcg_val", "--data-root", str(root)]) == 2  # README: bad input exits 2
    output = capsys.readouterr().out
    assert "GranDf/GranDf_HA_images/val_test not found nor at" in output and "GranDf_HA_images/val_test" in output


def test_alternatives_must_name_declared_roles(tmp_path):
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\nfamily: gcg\nversion: '1'\nfiles: {images: a}\nprompt: p\nmetrics: [miou]\n"
                    "alternatives: {masks: [b]}\n")
    with pytest.raises(InputError, match="alternatives"):
        load_spec(spec)
