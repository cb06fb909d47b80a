"""LLaVA-1.5 in the LLaVA-repo layouts, loaded as `llava/model/builder.py::load_pretrained_model` loads them.

Layouts (a `config.json` with `mm_vision_tower` and no `text_config`; the llava-hf layout is `loading.py`):
- full, `liuhaotian/llava-v1.5-7b`: `LlavaLlamaForCausalLM.from_pretrained(model_path)`: Llama weights
  (`model.embed_tokens`, `model.layers.*`, `model.norm`, `lm_head`) and the projector `model.mm_projector.*`
  from the folder's shards; the tokenizer is the folder's (`use_fast=False`).
- LoRA, `liuhaotian/llava-v1.5-7b-lora` + `model_base` = `lmsys/vicuna-7b-v1.5`: the base weights, the projector
  from `non_lora_trainables.bin`, the LoRA merged (`lora.py`, the code DiffLMM's release uses too); the
  tokenizer is the base's.
Either way the vision tower is `CLIPVisionModel` from `clip_path` (`openai/clip-vit-large-patch14-336`): the
builder builds it with `delay_load=True`, so the `model.vision_tower.*` weights a full checkpoint may hold are
never used (they are tolerated here, as upstream, and nothing else is); image features are
`hidden_states[mm_vision_select_layer]` without CLS (`mm_vision_select_feature = patch`), then the projector
(`mm_projector_type`: `linear` or `mlp{N}x_gelu`, `llava/model/multimodal_projector/builder.py`). The image
processor is `clip_path`'s CLIPImageProcessor on the PIL path (`loading.pil_image_processor`), the image
padded to a square of its mean colour first (`image_aspect_ratio = pad`, `mm_utils.process_images`).
`<im_patch>` is added to the tokenizer (embeddings resized) when `mm_use_im_patch_token`, as the builder does.
Problems (missing/unexpected/mis-shaped keys) → one-line InputError naming the keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.lazy import lazy_module
from gcgbench.api.errors import InputError
from gcgbench.grounding import attention_capture as ac
from gcgbench.models.llava.checkpoint import (
    key_problem, llama_config, load_clip_vision, load_tokenizer, quiet_logs, read_json, weight_files,
)
from gcgbench.models.llava.lora import ADAPTER_CONFIG, IGNORED_BASE_KEYS, load_language_model

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

MLP_GELU = re.compile(r"^mlp(\d+)x_gelu$")
UNUSED_CHECKPOINT_PREFIX = "model.vision_tower."   # never read upstream (delay_load); see the module docstring


def is_repo_layout(config: Mapping[str, Any]) -> bool:
    """A LLaVA-repo `config.json` (LlavaLlamaForCausalLM): `mm_vision_tower` and no HF `text_config`."""
    return "mm_vision_tower" in config and "text_config" not in config


def build_projector(config: Mapping[str, Any], source: object = "config.json") -> torch.nn.Module:
    """`llava/model/multimodal_projector/builder.py::build_vision_projector` (linear, mlpNx_gelu)."""
    kind = str(config.get("mm_projector_type", "linear"))
    hidden, vision = int(config["hidden_size"]), int(config.get("mm_hidden_size", 0) or 0)
    if vision <= 0:
        raise InputError(source, "mm_hidden_size", "missing (the CLIP width the projector takes)")
    if kind == "linear":
        return torch.nn.Linear(vision, hidden)
    match = MLP_GELU.match(kind)
    if match is None:
        raise InputError(source, "mm_projector_type", f"{kind!r} is not linear or mlpNx_gelu")
    layers: list[torch.nn.Module] = [torch.nn.Linear(vision, hidden)]
    for _ in range(1, int(match.group(1))):
        layers += [torch.nn.GELU(), torch.nn.Linear(hidden, hidden)]
    return torch.nn.Sequential(*layers)


@dataclass
class LlavaRepo:
    """The loaded LLaVA-repo model: merged LLM (projector at `.model.mm_projector`), CLIP tower, settings."""

    llm: Any
    tokenizer: Any               # transformers tokenizer of the tokenizer folder (decoding)
    tokenizer_folder: Path       # where the slow tokenizer upstream uses reads tokenizer.model
    vision: Any                  # CLIPVisionModel
    select_layer: int
    select_feature: str

    @property
    def n_image_tokens(self) -> int:
        config = self.vision.config
        return (config.image_size // config.patch_size) ** 2 + (1 if self.select_feature == "cls_patch" else 0)

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) pre-processed images → (B, n, hidden) LLM input tokens (`encode_images`)."""
        hidden = self.vision(pixels.to(self.vision.dtype), output_hidden_states=True).hidden_states[self.select_layer]
        features = hidden if self.select_feature == "cls_patch" else hidden[:, 1:]
        projector = self.llm.model.mm_projector
        return projector(features.to(next(projector.parameters()).dtype))


def load_llava_repo(model_path: Path, model_base: Path | None, clip_path: Path | None, dtype: torch.dtype,
                    device: str) -> LlavaRepo:
    model_path = Path(model_path)
    config = read_json(model_path / "config.json")
    if clip_path is None:
        raise InputError("--model-args", "clip_path", f"{model_path} is a LLaVA-repo checkpoint: its vision tower "
                                                      f"comes from clip_path=FOLDER ({config.get('mm_vision_tower')})")
    if config.get("image_aspect_ratio", "pad") != "pad":
        raise InputError(model_path / "config.json", "image_aspect_ratio",
                         f"{config.get('image_aspect_ratio')!r}: only LLaVA-1.5's pad is supported")
    if (model_path / ADAPTER_CONFIG).is_file():
        if model_base is None:
            raise InputError("--model-args", "model_base", f"{model_path} is a LoRA folder: give model_base=FOLDER "
                                                           "(the LLM it was trained from, lmsys/vicuna-7b-v1.5)")
        projector = build_projector(config, model_path / "config.json")
        llm, _, _ = load_language_model(model_path, Path(model_base), dtype, device, config, projector,
                                        "the LLaVA LoRA release")
        tokenizer_folder = Path(model_base)
    else:
        if model_base is not None:
            raise InputError("--model-args", "model_base", f"{model_path} is a full checkpoint (no {ADAPTER_CONFIG}); "
                                                           "model_base is for LoRA folders")
        llm = _load_full(model_path, dtype, config)
        tokenizer_folder = model_path
    tokenizer = load_tokenizer(tokenizer_folder, config, llm, "model_base" if model_base else "model_path")
    vision = load_clip_vision(Path(clip_path), dtype).to(device).eval()
    vision.set_attn_implementation("sdpa")
    return LlavaRepo(llm.to(device).eval().requires_grad_(False), tokenizer, tokenizer_folder, vision,
                     int(config.get("mm_vision_select_layer", -2)), str(config.get("mm_vision_select_feature", "patch")))


def _load_full(model_path: Path, dtype: torch.dtype, config: Mapping[str, Any]) -> Any:
    """`LlavaLlamaForCausalLM.from_pretrained(model_path)`: the Llama weights and the projector, strictly."""
    from transformers import LlamaForCausalLM

    if not weight_files(model_path):
        raise InputError("model_path", str(model_path), "no model.safetensors / pytorch_model.bin (or their index)")

    class LlavaLlamaForCausalLM(LlamaForCausalLM):
        def __init__(self, llama_config: Any):
            super().__init__(llama_config)
            self.model.mm_projector = build_projector(config, model_path / "config.json")

    ac.register_capture_attention()
    try:
        with quiet_logs("transformers"):
            llm, info = LlavaLlamaForCausalLM.from_pretrained(model_path, config=llama_config(config), dtype=dtype,
                                                              output_loading_info=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("model_path", str(model_path), f"cannot load LLaVA weights: {str(error).splitlines()[0]}") from None
    unexpected = [k for k in info.get("unexpected_keys", ())
                  if not k.startswith(UNUSED_CHECKPOINT_PREFIX) and not IGNORED_BASE_KEYS.search(k)]
    mismatched = [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ())]
    problem = key_problem(sorted(map(str, info.get("missing_keys", ()))), sorted(unexpected), sorted(mismatched))
    if problem or info.get("error_msgs"):
        raise InputError("model_path", str(model_path), problem or "; ".join(map(str, info["error_msgs"]))[:300])
    llm.set_attn_implementation(ac.CAPTURE_ATTENTION)
    return llm
