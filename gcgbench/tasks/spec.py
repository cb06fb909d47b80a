"""Reading the declarative task files (`tasks/*.yaml`).

A task file names one benchmark split:

    name: res_refcoco_val          # unique; the --task name
    family: res                    # gcg | res | png | captioning | vqa ...
    version: "1"                   # bump when prompt, split or protocol changes (keys the cache)
    description: RefCOCO val (UNC), referring expression segmentation
    files:                         # role: path relative to the data root (GLaMM's data/ layout)
      refs: Refer_Segm/refcoco/refs(unc).p
      instances: Refer_Segm/refcoco/instances.json
      images: coco_2014/train2014
    checksums:                     # role: sha256 of the upstream release, or null where not pinned
      refs: null
    prompt: "Please segment {expression} in this image."
    metrics: [ciou, giou]
    params: {dataset: refcoco, split: val}
    aliases: []                    # other --task names for this split (e.g. gcg for gcg_val)
    alternatives:                  # optional: role -> other places upstream documents for the same files,
      images: [GranDf_HA_images/val_test]   # tried in order when the default path does not exist

The folder is found next to the package (a source checkout) or, in an installed wheel, as the
`gcgbench_tasks` package that pyproject.toml maps onto it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import yaml

from gcgbench.api.errors import InputError
from gcgbench.api.task import TaskSpec

REQUIRED = ("name", "family", "version", "files", "prompt", "metrics")


def task_folder() -> Path:
    """The folder of built-in task files."""
    checkout = Path(__file__).resolve().parents[2] / "tasks"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("gcgbench_tasks")))


def iter_task_files(folders: list[Path] | None = None) -> Iterator[Path]:
    for folder in folders or [task_folder()]:
        yield from sorted(Path(folder).glob("*.yaml"))


def load_spec(path: Path) -> TaskSpec:
    """Parse and check one task file; every problem is an InputError naming the file and the key."""
    try:
        raw: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InputError(path, None, f"not valid YAML ({str(error).splitlines()[0]})") from None
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start})") from None
    if not isinstance(raw, dict):
        raise InputError(path, None, "a task file must be a YAML mapping")
    for key in REQUIRED:
        if key not in raw:
            raise InputError(path, key, "missing")
    files, checksums = raw["files"], raw.get("checksums") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise InputError(path, "files", "must map roles to relative paths")
    unknown = set(checksums) - set(files)
    if unknown:
        raise InputError(path, "checksums", f"roles {sorted(unknown)} are not in files")
    alternatives = raw.get("alternatives") or {}
    if not isinstance(alternatives, dict) or not all(
        role in files and isinstance(paths, list) and all(isinstance(p, str) for p in paths)
        for role, paths in alternatives.items()
    ):
        raise InputError(path, "alternatives", "must map roles of 'files' to lists of relative paths")
    metrics = raw["metrics"]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise InputError(path, "metrics", "must be a list of metric names")
    return TaskSpec(
        name=str(raw["name"]),
        family=str(raw["family"]),
        version=str(raw["version"]),
        description=str(raw.get("description", "")),
        files=dict(files),
        checksums={role: checksums.get(role) for role in files},
        prompt=str(raw["prompt"]),
        metrics=tuple(metrics),
        params=dict(raw.get("params") or {}),
        aliases=tuple(str(alias) for alias in raw.get("aliases") or ()),
        source=str(path),
        alternatives={role: tuple(paths) for role, paths in alternatives.items()},
    )
