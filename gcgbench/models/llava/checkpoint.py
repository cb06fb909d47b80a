"""Reading LLaVA-repo checkpoint folders: JSON configs, state files, the LLM's weight files, key reports.

Shared by the LLaVA-repo layouts of `llava-as` (`liuhaotian/llava-v1.5-7b`, `-lora`) and by DiffLMM, which
upstream both load through LLaVA's `llava/model/builder.py::load_pretrained_model`.
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from gcgbench.api.lazy import lazy_module
from gcgbench.api.errors import InputError

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

CONFIG_ONLY_KEYS = ("model_type", "architectures", "transformers_version", "_name_or_path", "torch_dtype", "dtype")


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, None, "no such file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, None, f"not JSON ({error})") from None
    if not isinstance(data, dict):
        raise InputError(path, None, "expected a JSON object")
    return data



def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A `.safetensors` or torch-pickled state dict (loaded with `weights_only=True`)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise InputError(path, None, f"cannot read a state dict ({type(error).__name__}: {str(error)[:200]})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, None, "expected a flat {name: tensor} state dict")
    return dict(state)



def weight_files(folder: Path) -> list[Path]:
    """The LLM weight files transformers would read: safetensors (index) first, else pytorch_model (index)."""
    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        if (folder / index).is_file():
            weight_map = read_json(folder / index).get("weight_map", {})
            return [folder / index] + [folder / name for name in sorted(set(weight_map.values()))]
        if (folder / single).is_file():
            return [folder / single]
    return []



def llama_config(config: Mapping[str, Any]) -> Any:
    """transformers `LlamaConfig` from the LoRA folder's LLaVA config (the `mm_*` fields ride along)."""
    from transformers import LlamaConfig

    return LlamaConfig(**{k: v for k, v in config.items() if k not in CONFIG_ONLY_KEYS})



def key_problem(missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str] = ()) -> str:
    """"missing keys: a, b; unexpected keys: c" (at most 8 of each shown), or "" when all agree."""
    def shown(keys: Sequence[str]) -> str:
        return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

    parts = [f"{label}: {shown(keys)}" for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                                          ("keys with the wrong shape", mismatched)) if keys]
    return "; ".join(parts)


@contextmanager
def quiet_logs(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def load_tokenizer(model_base: Path, config: Mapping[str, Any], llm: Any, label: str = "model_base") -> Any:
    """`AutoTokenizer.from_pretrained(model_base)` (upstream: `use_fast=False`); `<im_patch>` added and the
    embeddings resized when `mm_use_im_patch_token` (upstream's default when the field is absent)."""
    from transformers import AutoTokenizer

    try:
        with quiet_logs("transformers"):
            tokenizer = AutoTokenizer.from_pretrained(model_base, local_files_only=True)
    except (OSError, ValueError, ImportError) as error:
        raise InputError(label, str(model_base), f"cannot load the tokenizer: {str(error).splitlines()[0]} "
                                                        "(a tokenizer.model-only folder needs `pip install sentencepiece`)") from None
    if config.get("mm_use_im_patch_token", True):
        tokenizer.add_tokens(["<im_patch>"], special_tokens=True)
    if len(tokenizer) != llm.get_input_embeddings().weight.shape[0]:
        llm.resize_token_embeddings(len(tokenizer))
    return tokenizer


CLIP_TEXT_PARTS = ("text_model.", "text_projection.", "visual_projection.", "logit_scale")


def load_clip_vision(folder: Path, dtype: torch.dtype) -> Any:
    """`CLIPVisionModel` from a CLIP folder (the full CLIPModel's text weights are expected extras)."""
    from transformers import CLIPVisionModel

    if not (folder / "config.json").is_file():
        raise InputError("clip_path", str(folder), "no config.json; expected the openai/clip-vit-large-patch14-336 layout")
    try:
        model, info = CLIPVisionModel.from_pretrained(folder, dtype=dtype, output_loading_info=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("clip_path", str(folder), f"cannot load CLIP: {str(error).splitlines()[0]}") from None
    unexpected = [k for k in info.get("unexpected_keys", ()) if not k.startswith(CLIP_TEXT_PARTS)
                  and not k.endswith("position_ids")]
    problem = key_problem(sorted(map(str, info.get("missing_keys", ()))), sorted(map(str, unexpected)),
                          sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ())))
    if problem:
        raise InputError("clip_path", str(folder), problem)
    return model
