"""Loading the official DiffLMM release: base Vicuna + `non_lora_trainables.bin` + a LoRA adapter, merged.

`Shengcao1006/difflmm-llava-v1.5-7b-lora` is loaded upstream by `llava/model/builder.py::load_pretrained_model`
(groundLMM = LLaVA v1.2.2), branch `'llava' in name and 'lora' in name and model_base is not None`:

1. `LlavaConfig.from_pretrained(model_path)`: the LLM and `mm_*` settings come from the LoRA folder's
   `config.json` (model_type `llava_llama`); `LlavaLlamaForCausalLM.from_pretrained(model_base, config=...)`
   reads the weights of the base (`lmsys/vicuna-7b-v1.5`, HF Llama layout: `model.embed_tokens.weight`,
   `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`, `model.layers.{i}.mlp.{gate,up,down}_proj.weight`,
   `model.layers.{i}.{input,post_attention}_layernorm.weight`, `model.norm.weight`, `lm_head.weight`;
   `pytorch_model-0000k-of-0000n.bin` + index or safetensors). If the base vocabulary differs from the
   config's, `lm_head`/`embed_tokens` are re-created empty (then `non_lora_trainables.bin` must hold them).
2. `non_lora_trainables.bin` (torch pickle; LLaVA `train.py::get_peft_state_non_lora_maybe_zero_3`: every
   trainable non-LoRA parameter of the PeftModel, i.e. the projector, keys
   `base_model.model.model.mm_projector.{clip_projector.{0,2},sd_norm_layer,sd_proj_layer.0,linear.{0,2}}.{weight,bias}`,
   `...mm_projector.{clip_pe,vt_pe}`). Prefixes are stripped exactly as the builder does:
   `k[11:] if k.startswith('base_model.')`, then, if any key starts with `model.model.`,
   `k[6:] if k.startswith('model.')` → `model.mm_projector.…`. Upstream loads them with `strict=False`; we
   require every key to name a parameter (unexpected → error) and every projector parameter to be given.
3. `PeftModel.from_pretrained(model, model_path).merge_and_unload()`: `adapter_config.json` (peft LoRA:
   `r`, `lora_alpha`, `target_modules` = LLaVA's `find_all_linear_names` → q/k/v/o/gate/up/down_proj,
   `fan_in_fan_out`, `use_rslora`) and `adapter_model.{safetensors,bin}` with keys
   `base_model.model.<module>.lora_A.weight` (r × in) and `.lora_B.weight` (out × r). The merge, done here
   without peft, is  W ← W + (B·A)·s,  s = lora_alpha / r  (lora_alpha / √r with `use_rslora`), with B·A
   transposed when `fan_in_fan_out`; computed in float32, stored in the model dtype. Target modules are
   matched as peft does: equal to a target, or ending in `.<target>` (a string target is a full regex).
   Every targeted Linear must have its A and B; any other adapter key is unexpected.

The LLM is transformers' `LlamaForCausalLM`; the projector is attached as `model.mm_projector`, so the
merged model's state-dict keys are exactly `LlavaLlamaForCausalLM`'s. Problems → one-line `InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from gcgbench.models.difflmm.vision import DiffLmmVisionConfig, DiffLmmVisionTower, SDCLIPBlock, load_vision_tower
from gcgbench.models.llava.checkpoint import load_tokenizer, read_json
from gcgbench.models.llava.lora import LoraSettings
from gcgbench.models.llava.lora import load_language_model as load_lora_language_model


def load_language_model(model_path: Path, model_base: Path, dtype: torch.dtype, device: str,
                        config: Mapping[str, Any], vision: DiffLmmVisionConfig) -> tuple[Any, LoraSettings, list[str]]:
    """LLaVA's LoRA loading (`gcgbench.models.llava.lora`) with DiffLMM's `SDCLIPBlock` as the projector."""
    return load_lora_language_model(model_path, model_base, dtype, device, config, SDCLIPBlock.from_config(vision),
                                    "the DiffLMM release")


@dataclass
class DiffLmm:
    """The loaded model: merged LLM (`.model.mm_projector` attached), tokenizer, vision tower, settings."""

    llm: Any
    tokenizer: Any
    tower: DiffLmmVisionTower
    vision: DiffLmmVisionConfig
    lora: LoraSettings
    merged_modules: list[str] = field(default_factory=list)

    @property
    def projector(self) -> SDCLIPBlock:
        return self.llm.model.mm_projector

    def image_tokens(self, images: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """(B, 3, R, R) pre-processed images → (B, n, hidden) LLM input tokens."""
        return self.tower.encode(images, generators, self.projector)


def load_difflmm(model_path: str | Path, model_base: str | Path, sd_path: str | Path, clip_path: str | Path,
                 dtype: torch.dtype, device: str) -> DiffLmm:
    """The whole model from local folders (see the module docstring for each layout)."""
    model_path, model_base = Path(model_path), Path(model_base)
    config = read_json(model_path / "config.json")
    vision = DiffLmmVisionConfig.from_llava_config(config, model_path / "config.json")
    llm, lora, merged = load_language_model(model_path, model_base, dtype, device, config, vision)
    tokenizer = load_tokenizer(model_base, config, llm)
    tower = load_vision_tower(vision, sd_path, clip_path, dtype, device)
    return DiffLmm(llm, tokenizer, tower, vision, lora, merged)
