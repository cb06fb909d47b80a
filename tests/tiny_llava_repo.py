"""Tiny random-weight LLaVA-1.5 checkpoints in the LLaVA-repo layouts (test-only).

`write_tiny_llava_repo(root)` writes, from ONE set of random weights:
- `clip/`:  a CLIPModel in the openai/clip-vit-large-patch14-336 layout (48 px, patch 8 → 36 image tokens) with
  its preprocessor_config.json (CLIPImageProcessor, bicubic, shortest edge 48, crop 48);
- `base/`:  the Llama LLM in the lmsys/vicuna-7b-v1.5 layout (model.safetensors, config.json, tokenizer);
- `lora/`:  the liuhaotian/llava-v1.5-7b-lora layout: LLaVA config.json (mm_* fields), adapter_config.json,
  adapter_model.safetensors (LoRA A/B on q/k/v/o/gate/up/down_proj), non_lora_trainables.bin (the projector
  under peft's `base_model.model.model.mm_projector.*` names);
- `full/`:  the liuhaotian/llava-v1.5-7b layout: the same model merged (W + B·A·alpha/r), the projector and the
  (unused upstream) `model.vision_tower.vision_tower.*` weights in pytorch_model.bin, config.json, tokenizer.
The tokenizer is `tests/data/llama_spm` (vocabulary 420) with the given `legacy` flag.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.llama_tokenizers import write_llama_tokenizer

HIDDEN, VISION_HIDDEN, LAYERS, VOCAB, RANK, ALPHA = 32, 24, 2, 420, 4, 8.0
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def llama_fields() -> dict:
    return {"vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "hidden_act": "silu", "tie_word_embeddings": False}


def repo_config() -> dict:
    return {**llama_fields(), "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava_llama",
            "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": VISION_HIDDEN,
            "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch",
            "image_aspect_ratio": "pad", "mm_use_im_patch_token": False, "mm_use_im_start_end": False,
            "torch_dtype": "float32", "use_cache": True}


def write_tiny_llava_repo(root: Path, legacy: bool = False, seed: int = 0) -> dict[str, Path]:
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, LlamaConfig, LlamaForCausalLM

    root = Path(root)
    torch.manual_seed(seed)
    clip = root / "clip"
    clip_model = CLIPModel(CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "vocab_size": 64, "max_position_embeddings": 16},
        vision_config={"hidden_size": VISION_HIDDEN, "intermediate_size": 48, "num_hidden_layers": 3,
                       "num_attention_heads": 4, "image_size": 48, "patch_size": 8},
        projection_dim=16)).eval()
    clip_model.save_pretrained(clip)
    CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48}).save_pretrained(clip)

    llm = LlamaForCausalLM(LlamaConfig(**llama_fields())).eval()
    projector = torch.nn.Sequential(torch.nn.Linear(VISION_HIDDEN, HIDDEN), torch.nn.GELU(), torch.nn.Linear(HIDDEN, HIDDEN))
    base = root / "base"
    llm.save_pretrained(base)
    write_llama_tokenizer(base, legacy)

    lora = root / "lora"
    lora.mkdir(parents=True, exist_ok=True)
    (lora / "config.json").write_text(json.dumps(repo_config(), indent=1))
    (lora / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "target_modules": TARGETS, "fan_in_fan_out": False,
        "bias": "none", "lora_dropout": 0.05, "task_type": "CAUSAL_LM"}))
    adapter, merged = {}, {k: v.clone() for k, v in llm.state_dict().items()}
    for name, module in llm.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in TARGETS:
            a = torch.randn(RANK, module.in_features) * 0.2
            b = torch.randn(module.out_features, RANK) * 0.2
            adapter[f"base_model.model.{name}.lora_A.weight"] = a
            adapter[f"base_model.model.{name}.lora_B.weight"] = b
            merged[f"{name}.weight"] = module.weight.detach() + (b @ a) * (ALPHA / RANK)
    save_file(adapter, str(lora / "adapter_model.safetensors"))
    projector_state = {f"model.mm_projector.{k}": v.detach().clone() for k, v in projector.state_dict().items()}
    torch.save({f"base_model.model.{k}": v for k, v in projector_state.items()}, lora / "non_lora_trainables.bin")

    full = root / "full"
    full.mkdir(parents=True, exist_ok=True)
    vision_keys = {f"model.vision_tower.vision_tower.{k}": v.detach().clone()
                   for k, v in clip_model.state_dict().items() if k.startswith("vision_model.")}
    torch.save({**merged, **projector_state, **vision_keys}, full / "pytorch_model.bin")
    (full / "config.json").write_text(json.dumps(repo_config(), indent=1))
    write_llama_tokenizer(full, legacy)
    return {"clip": clip, "base": base, "lora": lora, "full": full}
