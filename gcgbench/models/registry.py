"""Backend names → backend classes, imported only when asked for (so `import gcgbench` never imports torch).

A backend of your own loads by `--model package.module:ClassName`. Each backend class has `from_args(args: dict[str, str]) -> Backend` and `ARGS: dict[str, str]`
(argument → one-line help); the built-in ones also declare `Options` (a typed `gcgbench.api.options.BackendOptions`
dataclass, parsed once in `from_args`) and `PROTOCOLS` (a `gcgbench.api.protocols.ProtocolTable`), which
`gcgbench models` lists and `gcgbench run` checks before any model loads.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gcgbench.api.backend import Backend
from gcgbench.api.errors import InputError

# Import names of the `gcgbench[models]` extra: a registered backend missing one says what to install.
MODEL_STACK = ("torch", "transformers", "safetensors", "segment_anything", "diffusers", "spacy", "sentencepiece",
               "google")

BACKENDS = {
    "oracle": ("gcgbench.models.oracle:OracleBackend", "answers with the ground truth: every metric perfect"),
    "replay": ("gcgbench.models.replay:ReplayBackend", "scores predictions made elsewhere through the runner"),
    "llava-as": ("gcgbench.models.llava_as.backend:LlavaAttendSegmentBackend",
                 "LLaVA-1.5 (llava-hf or LLaVA-repo layouts) + attend-and-segment grounding with a SAM refiner"),
    "difflmm": ("gcgbench.models.difflmm.backend:DiffLmmBackend",
                "DiffLMM (SD-1.5 U-Net + CLIP features, LLaVA LoRA checkpoint) + attend-and-segment"),
    "flmm": ("gcgbench.models.flmm.backend:FlmmBackend", "F-LMM: frozen LLaVA, mask head on word-pixel attention, SAM refiner"),
    "aas": ("gcgbench.models.aas.backend:AasBackend",
            "attend-and-segment on any transformers VLM, family from config.json model_type: LLaVA-NeXT, "
            "LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL, InternVL (HF layout), Idefics3, SmolVLM; SAM refiner"),
    "glamm": ("gcgbench.models.glamm.backend:GlammBackend",
              "GLaMM (GCG/RefSeg/FullScope checkpoints): [SEG] tokens decoded by SAM"),
}


def backend_class(name: str) -> Any:
    """A registered backend, or `package.module:ClassName` for a backend of your own (same interface)."""
    if name in BACKENDS:
        target = BACKENDS[name][0]
    elif ":" in name:
        target = name
    else:
        raise InputError("--model", None, f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}, "
                                          "or module:Class of your own")
    module_name, class_name = target.split(":", 1)
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        if name in BACKENDS and (error.name or "").split(".")[0] in MODEL_STACK:
            raise InputError("--model", None, f"backend {name} needs the model stack ({error.name} is not installed): "
                                              "pip install 'gcgbench[models]'") from None
        raise InputError("--model", None, f"cannot load backend {target!r}: importing {module_name!r} failed "
                                          f"({type(error).__name__}: {error})") from None
    except Exception as error:  # a user's module may raise anything while importing
        raise InputError("--model", None, f"cannot load backend {target!r}: importing {module_name!r} failed "
                                          f"({type(error).__name__}: {error})") from None
    found = getattr(module, class_name, None)
    if found is None:
        raise InputError("--model", None, f"cannot load backend {target!r}: {module_name!r} has no {class_name!r}")
    if not isinstance(found, type) or not callable(getattr(found, "from_args", None)) or not isinstance(
            getattr(found, "ARGS", None), dict):
        raise InputError("--model", None, f"{target!r} is not a backend class (a class with `from_args(args)` and "
                                          f"an `ARGS` dict; see gcgbench/api/backend.py)")
    return found


def check_backend(name: str, args: dict[str, str]) -> Any:
    """The backend class, after checking that it loads and takes these arguments (no weights are read)."""
    cls = backend_class(name)
    unknown = set(args) - set(cls.ARGS)
    if unknown:
        raise InputError("--model-args", None, f"{name} takes no argument(s) {sorted(unknown)}; it takes {sorted(cls.ARGS)}")
    return cls


def load_backend(name: str, args: dict[str, str]) -> Backend:
    return check_backend(name, args).from_args(args)
