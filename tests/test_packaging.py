"""The wheel carries every subpackage and the task files; `import gcgbench` stays light."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "gcgbench").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.mark.slow
def test_wheel_contains_task_files(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("gcgbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gcgbench_tasks/gcg_val.yaml" in names
    assert "gcgbench/metrics/gcg.py" in names
    assert {"gcgbench/leaderboard/templates/diagnose.html.j2", "gcgbench/leaderboard/templates/compare.html.j2"} <= set(names)
    shipped = [p.relative_to(ROOT).as_posix() for p in (ROOT / "gcgbench" / "checkpoints").rglob("*")
               if p.is_file() and not p.name.startswith(".")]
    assert shipped and not set(shipped) - set(names), "embedded tiny checkpoints missing from the wheel"
