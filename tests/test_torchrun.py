"""A 2-process torchrun run on CPU (gloo) equals a 1-process run in every field but timings, the
command line and the recorded world size."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample

pytestmark = [pytest.mark.java, pytest.mark.slow]


def results_without_run_specifics(folder: Path) -> dict:
    results = json.loads((folder / "results.json").read_text())
    results.pop("timing")
    results["config"].pop("command")
    results["config"].pop("world_size")
    return results


def test_two_processes_equal_one(tmp_path):
    if shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists():
        pytest.skip("torchrun not installed")
    sample = write_sample(tmp_path / "sample", n_images=10)
    args = ["run", "--model", "oracle", "--task", "gcg_val,gcg_test", "--data-root", str(sample),
            "--text-model", "minilm", "--bootstrap", "30"]
    assert main([*args, "--output", str(tmp_path / "one")]) == 0   # the 1-process run: in this process
    torchrun = str(Path(sys.executable).parent / "torchrun")
    double = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", "29517", "-m", "gcgbench", *args,
                             "--output", str(tmp_path / "two")], capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr[-2000:]
    assert results_without_run_specifics(tmp_path / "one") == results_without_run_specifics(tmp_path / "two")
    assert json.loads((tmp_path / "two" / "results.json").read_text())["config"]["world_size"] == 2
    for task in ("gcg_val", "gcg_test"):
        one = (tmp_path / "one" / "predictions" / f"{task}.jsonl").read_text()
        assert one == (tmp_path / "two" / "predictions" / f"{task}.jsonl").read_text()
