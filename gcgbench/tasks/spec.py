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

`include: _family.yaml` (a path relative to the including file) starts from another file, as
lm-evaluation-harness's `include:` does: the included mapping is read first (it may include another) and
the task's own keys are merged over it — mappings (`files`, `checksums`, `params`) key by key, recursively,
everything else replaced. Files whose name starts with `_` are templates: they are never tasks themselves.

`metrics` is one thing everywhere: the metrics the task reports first, in this order, the headline first.
Each must be a metric the task's family computes (checked when the file loads, `gcgbench.tasks.families`);
results.json lists them first (then any other metric the family computed) and records `higher_is_better`.

The folder is found next to the package (a source checkout) or, in an installed wheel, as the
`gcgbench_tasks` package that pyproject.toml maps onto it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

from gcgbench.api.errors import InputError
from gcgbench.api.task import TaskSpec
from gcgbench.tasks.families import check_metrics, higher_is_better

REQUIRED = ("name", "family", "version", "files", "prompt", "metrics")


def task_folder() -> Path:
    """The folder of built-in task files."""
    checkout = Path(__file__).resolve().parents[2] / "tasks"
    if checkout.is_dir():
        return checkout
    # an installed wheel: the `gcgbench_tasks` data package (a namespace package: no __init__.py)
    spec = importlib.util.find_spec("gcgbench_tasks")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("gcgbench_tasks", None, "the built-in task files are not installed; reinstall gcgbench")
    return Path(list(spec.submodule_search_locations)[0])


def iter_task_files(folders: list[Path] | None = None) -> Iterator[Path]:
    """The task files of `folders` (default: the built-in folder), templates (`_*.yaml`) left out."""
    for folder in folders or [task_folder()]:
        yield from sorted(path for path in Path(folder).glob("*.yaml") if not path.name.startswith("_"))


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        raw: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, None, f"cannot read the task file ({error.__class__.__name__})") from None
    except yaml.YAMLError as error:
        raise InputError(path, None, f"not valid YAML ({str(error).splitlines()[0]})") from None
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start})") from None
    if not isinstance(raw, dict):
        raise InputError(path, None, "a task file must be a YAML mapping")
    return raw


def merge_over(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """`own` over `base`: mappings merged key by key (recursively), any other value replaced."""
    merged = dict(base)
    for key, value in own.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_over(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_task_mapping(path: Path, _including: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A task file's mapping with its `include:` chain resolved (missing or circular includes are InputErrors)."""
    path = Path(path)
    raw = _read_mapping(path)
    include = raw.pop("include", None)
    if include is None:
        return raw
    if not isinstance(include, str):
        raise InputError(path, "include", "must be a file name relative to this file")
    target = (path.parent / include).resolve()
    if target in _including or target == path.resolve():
        raise InputError(path, "include", f"includes itself through {include}")
    if not target.is_file():
        raise InputError(path, "include", f"{include} not found next to this file")
    return merge_over(read_task_mapping(target, (*_including, path.resolve())), raw)


def load_spec(path: Path) -> TaskSpec:
    """Parse and check one task file; every problem is an InputError naming the file and the key."""
    raw = read_task_mapping(Path(path))
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
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise InputError(path, "params", "must be a mapping")
    check_metrics(str(path), str(raw["family"]), params, tuple(metrics))
    return TaskSpec(
        name=str(raw["name"]),
        family=str(raw["family"]),
        version=str(raw["version"]),
        description=str(raw.get("description", "")),
        files=dict(files),
        checksums={role: checksums.get(role) for role in files},
        prompt=str(raw["prompt"]),
        metrics=tuple(metrics),
        params=dict(params),
        higher_is_better={metric: higher_is_better(metric) for metric in metrics},
        aliases=tuple(str(alias) for alias in raw.get("aliases") or ()),
        source=str(path),
        alternatives={role: tuple(paths) for role, paths in alternatives.items()},
    )
