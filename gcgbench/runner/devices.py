"""`--device` checked before any model loads: the spelling, then whether this torch can use that device.

Accepted: `cpu`, `cuda`, `cuda:N`, `mps`. `cpu` needs nothing (torch is not imported for it); the others
import torch and ask it, so a CPU-only torch build, a missing GPU index or a Mac without Metal give one line
naming the option instead of an error from deep inside model loading.
"""

from __future__ import annotations

import re

from gcgbench.api.errors import InputError

DEVICE_SPELLING = re.compile(r"cpu|mps|cuda(:\d+)?")


def check_device(requested: str) -> str:
    """`requested` if this process can run on it, else `InputError("--device", ...)`."""
    if not DEVICE_SPELLING.fullmatch(requested):
        raise InputError("--device", None, f"must be cpu, cuda, cuda:N or mps, got {requested!r}")
    if requested == "cpu":
        return requested
    import torch

    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("--device", None, f"mps: this torch ({torch.__version__}) sees no Metal device")
        return requested
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise InputError("--device", None, f"{requested}: this torch ({torch.__version__}, {build}) sees no CUDA GPU")
    index = int(requested.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError("--device", None, f"{requested}: this machine has {count} CUDA GPU(s), cuda:0 … cuda:{count - 1}")
    return requested
