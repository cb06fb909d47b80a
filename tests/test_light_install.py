"""Scoring needs no model stack: with torch, transformers, diffusers, spaCy, segment-anything and
sentence-transformers made unimportable, GCG (BERT phrase encoder in numpy), RES, PNG, VQA and captioning
predictions score, and `check`, `leaderboard show` and `report` work; the model backends, and a text model that is
not a BERT, say in one line what to install.
(.ci/run also installs the core package alone into a fresh venv and scores there.)"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL_STACK = ("torch", "transformers", "diffusers", "spacy", "segment_anything", "sentence_transformers",
               "torchvision")
BLOCKED_RUN = """
import sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from gcgbench.cli.app import main
sys.exit(main(sys.argv[2:]))
"""


def without_models(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(MODEL_STACK), *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    """Oracle predictions of one task per family (the oracle needs no model either)."""
    out = tmp_path_factory.mktemp("light") / "run"
    done = without_models("run", "--model", "oracle", "--task", "res_refcoco_val,png_val,textvqa_val",
                          "--no-cache", "--bootstrap", "20", "--output", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_core_dependencies_hold_no_model_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    for package in ("torch", "transformers", "diffusers", "spacy", "segment-anything", "sentence-transformers"):
        assert package not in core
    extras = project["optional-dependencies"]
    assert {"torch>=2.1", "transformers>=5.0"} <= set(extras["gcg"]) <= set(extras["models"])


def test_scoring_res_png_vqa_without_the_model_stack(oracle_run, tmp_path):
    results = json.loads((oracle_run / "results.json").read_text())
    assert results["results"]["res_refcoco_val"]["ciou"] == pytest.approx(1.0)
    assert results["results"]["png_val"]["ar"] > 0.999
    assert results["results"]["textvqa_val"]["accuracy"] == pytest.approx(1.0)
    for task in ("res_refcoco_val", "png_val"):
        done = without_models("score", "--task", task, "--predictions", str(oracle_run), "--bootstrap", "0",
                              "--output", str(tmp_path / task))
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr


def test_check_show_and_report_without_the_model_stack(oracle_run):
    done = without_models("check", str(oracle_run), "--against", str(oracle_run))
    assert done.returncode == 0 and "no regression" in done.stdout + done.stderr
    assert without_models("leaderboard", "show", "res_refcoco_val").returncode == 0
    done = without_models("report", str(oracle_run))
    assert done.returncode == 0 and (oracle_run / "report.html").is_file()


def test_gcg_scoring_without_the_model_stack(tmp_path):
    """The oracle's GCG run, MiniLM phrase similarity in numpy: every metric perfect, the encoder recorded."""
    done = without_models("run", "--model", "oracle", "--task", "gcg_val", "--no-cache", "--bootstrap", "0",
                          "--text-model", "minilm", "--output", str(tmp_path / "gcg"))
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "gcg" / "results.json").read_text())
    assert results["results"]["gcg_val"]["mask_recall"] == pytest.approx(1.0)
    assert "all-MiniLM-L6-v2" in results["metric_config"]["gcg_val"]["text_similarity_model"]


def test_non_bert_text_model_and_backends_name_what_to_install(tmp_path):
    folder = tmp_path / "mpnet"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "mpnet"}')
    (folder / "vocab.txt").write_text("[PAD]\n")
    (folder / "model.safetensors").write_bytes(b"")
    done = without_models("run", "--model", "oracle", "--task", "gcg_val", "--no-cache", "--bootstrap", "0",
                          "--text-model", str(folder), "--output", str(tmp_path / "gcg"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "gcgbench[gcg]" in done.stderr
    done = without_models("run", "--model", "llava-as", "--task", "res_refcoco_val", "--no-cache",
                          "--output", str(tmp_path / "llava"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pip install 'gcgbench[models]'" in done.stderr
