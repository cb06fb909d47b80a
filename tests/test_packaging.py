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


def test_every_data_file_of_the_package_is_listed_in_package_data():
    """Templates, checkpoints and other non-Python files reach the wheel only through [tool.setuptools.package-data]."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib")
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    data = [p for p in (ROOT / "gcgbench").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts and not p.name.startswith(".")]
    assert any(p.parts[-2] == "templates" for p in data)  # the leaderboard and report page templates

    def listed(path: Path) -> bool:
        for package, patterns in globs.items():
            folder = ROOT.joinpath(*package.split("."))
            if folder in path.parents and any(fnmatch.fnmatch(path.relative_to(folder).as_posix(), pattern)
                                              for pattern in patterns):
                return True
        return False

    missing = [p.relative_to(ROOT).as_posix() for p in data if not listed(p)]
    assert not missing, f"add to pyproject.toml [tool.setuptools.package-data]: {missing}"


@pytest.mark.slow
def test_wheel_contains_task_files(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("gcgbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gcgbench_tasks/gcg_val.yaml" in names
    assert "gcgbench/metrics/gcg.py" in names
    assert {"gcgbench/html/templates/diagnose.html.j2", "gcgbench/html/templates/compare.html.j2"} <= set(names)
    shipped = [p.relative_to(ROOT).as_posix() for p in (ROOT / "gcgbench" / "checkpoints").rglob("*")
               if p.is_file() and not p.name.startswith(".")]
    assert shipped and not set(shipped) - set(names), "embedded tiny checkpoints missing from the wheel"
    templates = [p.relative_to(ROOT).as_posix() for p in (ROOT / "gcgbench" / "html" / "templates").glob("*.html")]
    assert templates and not set(templates) - set(names), "page templates missing from the wheel"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "Requires-Dist: jinja2" in zipfile.ZipFile(wheel).read(metadata).decode()
    # installed from the wheel (no checkout beside it), the task files are found and read
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = ("import gcgbench.tasks.spec as s; from gcgbench.tasks.registry import task_names; "
            "print(s.task_folder()); print(len(task_names()))")
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin"},
                           check=True, capture_output=True, text=True).stdout.split()
    assert found[0].startswith(str(target)) and int(found[1]) >= 20
