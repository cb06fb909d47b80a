"""Modules imported at their first use: a backend module names torch at its top, yet a run whose generations all
come from the cache never touches it and does not pay torch's ~2 s import.

`lazy_module(name)` is the recipe of the Python documentation (`importlib.util.LazyLoader`): the module is found
now (a missing one raises `ModuleNotFoundError` here, so the registry still says what to install), registered in
`sys.modules`, and executed when an attribute of it is first read. A module already imported is returned as is.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
