"""LLaVA's LoRA release layout, merged without peft (`llava/model/builder.py`, branch `'lora' in model_name and
model_base is not None`), for `liuhaotian/llava-v1.5-7b-lora` (llava-as) and `Shengcao1006/difflmm-llava-v1.5-7b-lora`
(difflmm) alike:

1. `LlavaConfig.from_pretrained(model_path)`: the LLM and `mm_*` settings come from the LoRA folder's
   `config.json`; the base weights (`lmsys/vicuna-7b-v1.5`, HF Llama layout) load into that config. If the base
   vocabulary differs from the config's, `lm_head`/`embed_tokens` are re-created empty (then
   `non_lora_trainables.bin` must hold them).
2. `non_lora_trainables.bin` (torch pickle; LLaVA `train.py::get_peft_state_non_lora_maybe_zero_3`: every
   trainable non-LoRA parameter, i.e. the projector `model.mm_projector.*`). Prefixes are stripped exactly as
   the builder does: `k[11:] if k.startswith('base_model.')`, then, if any key starts with `model.model.`,
   `k[6:] if k.startswith('model.')`. Upstream loads them with `strict=False`; we require every key to name a
   parameter (unexpected → error) and every projector parameter to be given.
3. `PeftModel.from_pretrained(model, model_path).merge_and_unload()`: `adapter_config.json` (`r`, `lora_alpha`,
   `target_modules`, `fan_in_fan_out`, `use_rslora`) and `adapter_model.{safetensors,bin}` with keys
   `base_model.model.<module>.lora_A.weight` (r × in) and `.lora_B.weight` (out × r). The merge is
   W ← W + (B·A)·s,  s = lora_alpha / r  (lora_alpha / √r with `use_rslora`), B·A transposed when
   `fan_in_fan_out`; computed in float32, stored in the model dtype. Target modules are matched as peft does.
   Every targeted Linear must have its A and B; any other adapter key is unexpected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.lazy import lazy_module
from gcgbench.api.errors import InputError
from gcgbench.grounding import attention_capture as ac
from gcgbench.models.llava.checkpoint import key_problem, llama_config, quiet_logs, read_json, read_state_file, weight_files

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

NON_LORA_FILE = "non_lora_trainables.bin"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])(?:\.default)?\.weight$")
IGNORED_BASE_KEYS = re.compile(r"(^|\.)rotary_emb\.inv_freq$")   # old Llama checkpoints saved this buffer
PROJECTOR_PREFIX = "model.mm_projector."


@dataclass(frozen=True)
class LoraSettings:
    """The `adapter_config.json` fields the merge depends on."""

    r: int
    alpha: float
    target_modules: tuple[str, ...] | str
    fan_in_fan_out: bool = False
    use_rslora: bool = False

    @property
    def scale(self) -> float:
        return self.alpha / math.sqrt(self.r) if self.use_rslora else self.alpha / self.r

    def targets(self, name: str) -> bool:
        """peft `check_target_module_exists`: regex full match, exact name, or name ending in `.target`."""
        if isinstance(self.target_modules, str):
            return re.fullmatch(self.target_modules, name) is not None
        return name in self.target_modules or any(name.endswith(f".{t}") for t in self.target_modules)

    @classmethod
    def from_folder(cls, folder: Path) -> "LoraSettings":
        path = folder / ADAPTER_CONFIG
        config = read_json(path)
        if str(config.get("peft_type", "LORA")).upper() != "LORA":
            raise InputError(path, "peft_type", f"expected LORA, got {config.get('peft_type')!r}")
        unsupported = {"use_dora": bool(config.get("use_dora")), "rank_pattern": bool(config.get("rank_pattern")),
                       "alpha_pattern": bool(config.get("alpha_pattern")),
                       "layers_to_transform": config.get("layers_to_transform") is not None,
                       "modules_to_save": bool(config.get("modules_to_save")),
                       "bias": config.get("bias", "none") != "none"}
        bad = [name for name, used in unsupported.items() if used]
        if bad:
            raise InputError(path, None, f"unsupported LoRA options: {', '.join(bad)} (LLaVA's finetune_lora uses none)")
        for key in ("r", "lora_alpha", "target_modules"):
            if key not in config:
                raise InputError(path, None, f"missing {key!r}")
        targets = config["target_modules"]
        targets = targets if isinstance(targets, str) else tuple(str(t) for t in targets)
        return cls(int(config["r"]), float(config["lora_alpha"]), targets, bool(config.get("fan_in_fan_out", False)),
                   bool(config.get("use_rslora", False)))



def strip_non_lora_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """LLaVA builder: drop `base_model.`, then (if any key starts with `model.model.`) one `model.`."""
    stripped = {(k[11:] if k.startswith("base_model.") else k): v for k, v in state.items()}
    if any(k.startswith("model.model.") for k in stripped):
        stripped = {(k[6:] if k.startswith("model.") else k): v for k, v in stripped.items()}
    return stripped



def lora_pairs(state: Mapping[str, torch.Tensor], source: object) -> dict[str, dict[str, torch.Tensor]]:
    """{module name: {"A": tensor, "B": tensor}} from adapter keys; a non-LoRA key → InputError."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    strange = []
    for key, tensor in state.items():
        match = LORA_KEY.match(key)
        if match is None:
            strange.append(key)
            continue
        pairs.setdefault(match["module"], {})[match["which"]] = tensor
    if strange:
        raise InputError(source, None, key_problem([], sorted(strange)) + " (not LoRA A/B weights)")
    return pairs



def merge_lora(model: torch.nn.Module, state: Mapping[str, torch.Tensor], lora: LoraSettings, source: object) -> list[str]:
    """W += (B @ A) · scale for every targeted Linear of `model`; returns the merged module names."""
    pairs = lora_pairs(state, source)
    linears = {name: module for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    targeted = {name for name in linears if lora.targets(name)}
    missing = sorted(f"base_model.model.{name}.lora_{w}.weight" for name in targeted for w in "AB"
                     if w not in pairs.get(name, {}))
    unexpected = sorted(f"base_model.model.{name}.lora_{w}.weight" for name in pairs if name not in targeted
                        for w in pairs[name])
    wrong = []
    for name in sorted(targeted & set(pairs)):
        weight, a, b = linears[name].weight, pairs[name].get("A"), pairs[name].get("B")
        if a is None or b is None:
            continue
        out_features, in_features = weight.shape[::-1] if lora.fan_in_fan_out else weight.shape
        if a.shape != (lora.r, in_features) or b.shape != (out_features, lora.r):
            wrong.append(f"base_model.model.{name}.lora_A/B {tuple(a.shape)}/{tuple(b.shape)}")
    problem = key_problem(missing, unexpected, wrong)
    if problem:
        raise InputError(source, None, problem)
    with torch.no_grad():
        for name in sorted(targeted):
            weight = linears[name].weight
            a = pairs[name]["A"].to(weight.device, torch.float32)
            b = pairs[name]["B"].to(weight.device, torch.float32)
            delta = (b @ a) * lora.scale
            if lora.fan_in_fan_out:
                delta = delta.T
            weight.copy_((weight.float() + delta).to(weight.dtype))
    return sorted(targeted)



def load_language_model(model_path: Path, model_base: Path, dtype: torch.dtype, device: str,
                        config: Mapping[str, Any], projector: torch.nn.Module,
                        release: str = "the LoRA release") -> tuple[Any, LoraSettings, list[str]]:
    """Steps 1-3: base weights → `projector` (attached as `model.mm_projector`) from `non_lora_trainables.bin`
    → merged LoRA, on `device`; the LLM's attention is the a&s capture attention."""
    from transformers import LlamaForCausalLM

    if not weight_files(model_base):
        raise InputError("model_base", str(model_base), "no model.safetensors / pytorch_model.bin (or their index); "
                                                        "expected the lmsys/vicuna-7b-v1.5 layout")
    ac.register_capture_attention()
    try:
        with quiet_logs("transformers"):
            llm, info = LlamaForCausalLM.from_pretrained(model_base, config=llama_config(config), dtype=dtype,
                                                         output_loading_info=True, local_files_only=True,
                                                         ignore_mismatched_sizes=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("model_base", str(model_base), f"cannot load the base LLM: {str(error).splitlines()[0]}") from None
    unexpected = [k for k in info.get("unexpected_keys", ()) if not IGNORED_BASE_KEYS.search(k)]
    resized = sorted(k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys", ()))
    problem = key_problem(sorted(info.get("missing_keys", ())), sorted(unexpected))
    if problem or info.get("error_msgs"):
        hint = f" (model_base must be the LLM {release} was trained from, lmsys/vicuna-7b-v1.5)" if unexpected else ""
        raise InputError("model_base", str(model_base), (problem or "; ".join(map(str, info["error_msgs"]))[:300]) + hint)
    llm.model.mm_projector = projector.to(dtype)

    non_lora_path = model_path / NON_LORA_FILE
    if not non_lora_path.is_file():
        raise InputError(non_lora_path, None, f"no such file (the projector weights of {release})")
    non_lora = strip_non_lora_prefixes(read_state_file(non_lora_path))
    own = llm.state_dict()
    needed = sorted(k for k in own if k.startswith(PROJECTOR_PREFIX)) + resized
    missing = [k for k in needed if k not in non_lora]
    unexpected = sorted(k for k in non_lora if k not in own)
    wrong = sorted(k for k in non_lora if k in own and tuple(non_lora[k].shape) != tuple(own[k].shape)
                   and k not in resized)
    problem = key_problem(missing, unexpected, wrong)
    if problem:
        raise InputError(non_lora_path, None, problem + (f" (the base's {', '.join(resized)} has another vocabulary size)"
                                                         if any(k in resized for k in missing) else ""))
    for key in resized:   # upstream re-creates these with the config's vocabulary size, then loads them here
        _set_parameter(llm, key, non_lora[key].to(dtype))
    llm.load_state_dict({k: v for k, v in non_lora.items() if k not in resized}, strict=False)

    lora = LoraSettings.from_folder(model_path)
    adapter = next((model_path / name for name in ADAPTER_FILES if (model_path / name).is_file()), None)
    if adapter is None:
        raise InputError(model_path, None, f"no {' or '.join(ADAPTER_FILES)} (the LoRA weights of {release})")
    llm = llm.to(device)
    merged = merge_lora(llm, read_state_file(adapter), lora, adapter)
    llm.set_attn_implementation(ac.CAPTURE_ATTENTION)
    return llm.eval().requires_grad_(False), lora, merged



def _set_parameter(model: torch.nn.Module, key: str, value: torch.Tensor) -> None:
    owner_name, _, attribute = key.rpartition(".")
    owner = model.get_submodule(owner_name)
    setattr(owner, attribute, torch.nn.Parameter(value, requires_grad=False))
