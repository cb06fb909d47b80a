"""Where the data is: `--data-root`, an optional data config file with per-task overrides, or the sample.

Data config (YAML), for users whose folders differ from GLaMM's `data/` layout:

    data_root: /datasets/glamm_data
    overrides:                       # task name -> file role -> path (absolute, or relative to data_root)
      res_refcoco_val:
        images: /datasets/coco/train2014

With neither a data root nor a config, tasks run on the bundled synthetic sample (generated on first use).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.data.sample import sample_root


def resolve_data_paths(data_root: Path | None, data_config: Path | None = None) -> DataPaths:
    overrides: dict[str, dict[str, str]] = {}
    if data_config is not None:
        if not data_config.is_file():
            raise InputError(data_config, None, "data config file not found")
        try:
            raw = yaml.safe_load(data_config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise InputError(data_config, None, f"not valid YAML ({str(error).splitlines()[0]})") from None
        except UnicodeDecodeError as error:
            raise InputError(data_config, None, f"not UTF-8 text (byte {error.start})") from None
        if not isinstance(raw, dict) or set(raw) - {"data_root", "overrides"}:
            raise InputError(data_config, None, "expected a mapping with 'data_root' and/or 'overrides'")
        found = raw.get("overrides") or {}
        if not isinstance(found, dict) or not all(
            isinstance(roles, dict) and all(isinstance(p, str) for p in roles.values()) for roles in found.values()
        ):
            raise InputError(data_config, "overrides", "must map task names to {role: path}")
        overrides = {task: dict(roles) for task, roles in found.items()}
        if data_root is None and raw.get("data_root"):
            data_root = Path(raw["data_root"]).expanduser()
    if data_root is None:
        return DataPaths(sample_root(), overrides, is_sample=True)
    if not Path(data_root).exists():
        raise InputError(data_root, None, "data root not found (--data-root or GCGBENCH_DATA: a folder laid out "
                                          "like GLaMM's data/)")
    if not Path(data_root).is_dir():
        raise InputError(data_root, None, "data root is a file, not a folder")
    return DataPaths(Path(data_root), overrides)
