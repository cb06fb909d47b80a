"""GLaMM's network in transformers 5 + segment-anything modules, loaded strictly from an HF checkpoint folder.

Module tree (`model/GLaMM.py::GLaMMForCausalLM`, `model/llava/llava_with_region_arch.py::LlavaMetaModel`,
`model/SAM/build_sam.py::build_sam_vit_h`), i.e. the checkpoint key prefixes:

    model.embed_tokens / model.layers.N.* / model.norm     Llama (transformers LlamaModel), vocab 32007
    model.mm_projector.{0,2}                               Linear(1024 → 4096) GELU Linear(4096 → 4096) (mlp2x_gelu)
    model.region_encoder.*                                 MLVLROIQueryModule (see region.py)
    model.grounding_encoder.{image_encoder,prompt_encoder,mask_decoder}.*   SAM ViT-H (segment-anything)
    model.text_hidden_fcs.0.{0,2}                          Linear(4096 → 4096) ReLU Linear(4096 → out_dim 256) Dropout
    lm_head                                                Linear(4096 → 32007, no bias)

Keys a GLaMM checkpoint may hold that are deliberately not loaded: `model.layers.N.self_attn.rotary_emb.inv_freq`
(transformers 4.28 saved the rotary buffer; it is recomputed) and `model.vision_tower.*` (upstream builds the
vision tower with `delay_load=True` and then loads `openai/clip-vit-large-patch14-336` over it in
`initialize_vision_modules`, so the global encoder always comes from that separate CLIP folder). Any other
missing, unexpected or mis-shaped key stops loading with an InputError naming them.

Weights: `model.safetensors` / `pytorch_model.bin`, or shards listed by `model.safetensors.index.json` /
`pytorch_model.bin.index.json` (the official GLaMM folders: two `pytorch_model-0000N-of-00002.bin`). The network
is built on the meta device and every tensor is cast to the run dtype and moved to the device as its shard is
read, so host memory holds one shard at a time.

`config.json` keys read: the Llama ones (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
num_key_value_heads, vocab_size, rms_norm_eps, max_position_embeddings, rope_theta, hidden_act), and GLaMM's
out_dim, mm_hidden_size, mm_vision_select_layer, num_level_reg_features, with_region, bbox_token_idx.
SAM and the region encoder have no config upstream (their sizes are constants); a test checkpoint may give
smaller ones under `"gcgbench_test_sizes": {"sam": {...}, "region_encoder": {...}}`, absent from real folders.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from gcgbench.api.errors import InputError
from gcgbench.grounding.sam_refine import import_segment_anything
from gcgbench.models.glamm.region import RegionEncoder, RegionSizes

IGNORED_KEYS = (re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq"), re.compile(r"model\.vision_tower\..*"))
CLIP_TEXT_PARTS = ("text_model.", "text_projection", "visual_projection", "logit_scale")
SAM_PIXEL_MEAN, SAM_PIXEL_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
LLAMA_KEYS = {"hidden_size": None, "intermediate_size": None, "num_hidden_layers": None, "num_attention_heads": None,
              "vocab_size": None, "num_key_value_heads": "optional", "rms_norm_eps": 1e-6,
              "max_position_embeddings": 2048, "hidden_act": "silu"}


@dataclass(frozen=True)
class SamSizes:
    """build_sam_vit_h: ViT-H encoder (1280 wide, 32 blocks, 16 heads, global attention in 7/15/23/31,
    window 14, 1024 px, 16 px patches), prompt embeddings 256, mask decoder of depth 2 / mlp 2048 / 8 heads."""

    encoder_embed_dim: int = 1280
    encoder_depth: int = 32
    encoder_num_heads: int = 16
    encoder_global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    mlp_ratio: float = 4.0
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256


@dataclass(frozen=True)
class GlammSpec:
    """What config.json says about the network (see the module docstring)."""

    llama: Mapping[str, Any]
    out_dim: int
    mm_hidden_size: int | None
    select_layer: int
    num_region_levels: int
    with_region: bool
    bbox_token_idx: int | None
    sam: SamSizes = SamSizes()
    region: RegionSizes = RegionSizes()
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hidden_size(self) -> int:
        return int(self.llama["hidden_size"])

    @classmethod
    def from_folder(cls, folder: Path) -> "GlammSpec":
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise InputError(folder, "config.json", "missing: not a GLaMM checkpoint folder (MBZUAI/GLaMM-* layout)")
        try:
            config = json.loads(path.read_text())
        except ValueError as error:
            raise InputError(path, None, f"not JSON ({error})") from None
        llama: dict[str, Any] = {}
        for key, default in LLAMA_KEYS.items():
            if key in config:
                llama[key] = config[key]
            elif default is None:
                raise InputError(path, key, "missing (a GLaMM config holds the Llama sizes)")
            elif default != "optional":
                llama[key] = default
        if "rope_theta" in config:   # absent from the 4.28-era GLaMM configs: 10000
            llama["rope_theta"] = float(config["rope_theta"])
        test_sizes = config.get("gcgbench_test_sizes") or {}
        sam = _sizes(SamSizes, test_sizes.get("sam"), path)
        mm_hidden = config.get("mm_hidden_size")
        region = _sizes(RegionSizes, {"embed_dims": mm_hidden or 1024, "out_dims": llama["hidden_size"],
                                      **(test_sizes.get("region_encoder") or {})}, path)
        out_dim = int(config.get("out_dim", 256))
        if out_dim != sam.prompt_embed_dim:
            raise InputError(path, "out_dim", f"{out_dim} differs from the SAM prompt width {sam.prompt_embed_dim}")
        return cls(llama, out_dim, mm_hidden, int(config.get("mm_vision_select_layer", -2)),
                   int(config.get("num_level_reg_features", 4)), bool(config.get("with_region", True)),
                   config.get("bbox_token_idx"), sam, region, config)

    def llama_config(self, attn: str) -> Any:
        from transformers import LlamaConfig

        config = LlamaConfig(**self.llama, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
        config._attn_implementation = attn
        return config


def _sizes(cls: type, given: Mapping[str, Any] | None, source: Path) -> Any:
    given = dict(given or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InputError(source, "gcgbench_test_sizes", f"unknown {cls.__name__} field(s) {', '.join(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})


def build_sam(sizes: SamSizes) -> nn.Module:
    """segment-anything's `Sam` with build_sam_vit_h's arguments (or the test sizes)."""
    modeling = import_segment_anything().modeling
    embedding = sizes.image_size // sizes.patch_size
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            depth=sizes.encoder_depth, embed_dim=sizes.encoder_embed_dim, img_size=sizes.image_size,
            mlp_ratio=sizes.mlp_ratio, norm_layer=partial(nn.LayerNorm, eps=1e-6), num_heads=sizes.encoder_num_heads,
            patch_size=sizes.patch_size, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=list(sizes.encoder_global_attn_indexes), window_size=sizes.window_size,
            out_chans=sizes.prompt_embed_dim),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=sizes.prompt_embed_dim, image_embedding_size=(embedding, embedding),
            input_image_size=(sizes.image_size, sizes.image_size), mask_in_chans=sizes.mask_in_chans),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=sizes.decoder_depth, embedding_dim=sizes.prompt_embed_dim,
                                                   mlp_dim=sizes.decoder_mlp_dim, num_heads=sizes.decoder_num_heads),
            transformer_dim=sizes.prompt_embed_dim, iou_head_depth=3, iou_head_hidden_dim=sizes.iou_head_hidden_dim),
        pixel_mean=list(SAM_PIXEL_MEAN), pixel_std=list(SAM_PIXEL_STD))


class GlammNetwork(nn.Module):
    """`GLaMMForCausalLM` minus the vision tower: `model` (LlamaModel + GLaMM's modules) and `lm_head`."""

    def __init__(self, spec: GlammSpec, attn: str = "eager"):
        super().__init__()
        from transformers import LlamaModel

        self.spec = spec
        self.llama_config = spec.llama_config(attn)
        hidden = spec.hidden_size
        self.model = LlamaModel(self.llama_config)
        self.model.add_module("mm_projector", nn.Sequential(
            nn.Linear(spec.region.embed_dims, hidden), nn.GELU(), nn.Linear(hidden, hidden)))
        self.model.add_module("region_encoder", RegionEncoder(spec.region))
        self.model.add_module("grounding_encoder", build_sam(spec.sam))
        self.model.add_module("text_hidden_fcs", nn.ModuleList([nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, spec.out_dim), nn.Dropout(0.0))]))
        self.lm_head = nn.Linear(hidden, int(spec.llama["vocab_size"]), bias=False)


def checkpoint_files(folder: Path) -> list[Path]:
    """The weight files of a checkpoint folder, in shard order."""
    folder = Path(folder)
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (ValueError, KeyError, TypeError) as error:
                raise InputError(index, "weight_map", f"not a shard index ({error!r})") from None
            files = [folder / name for name in sorted(set(weight_map.values()))]
            absent = [f.name for f in files if not f.is_file()]
            if absent:
                raise InputError(index, None, f"shard(s) {', '.join(absent)} missing from {folder}")
            return files
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (folder / single).is_file():
            return [folder / single]
    raise InputError(folder, None, "no weights: expected pytorch_model-*.bin with pytorch_model.bin.index.json "
                                   "(the official GLaMM layout), or safetensors")


def _read_shard(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield key, handle.get_tensor(key)
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:   # legacy (non-zip) torch files cannot be memory-mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - an unreadable file is the user's input problem
        raise InputError(path, None, f"cannot read a torch state dict ({type(error).__name__}: {error})") from None
    if not isinstance(state, Mapping):
        raise InputError(path, None, f"expected a state dict, got {type(state).__name__}")
    yield from state.items()


def load_network(folder: Path, dtype: torch.dtype, device: str, attn: str = "eager") -> GlammNetwork:
    """GlammNetwork with every weight of `folder` (strict by key name and shape; see the module docstring)."""
    spec = GlammSpec.from_folder(folder)
    with torch.device("meta"):
        network = GlammNetwork(spec, attn)
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    seen: set[str] = set()
    unexpected, mismatched = [], []
    for path in checkpoint_files(folder):
        for key, tensor in _read_shard(path):
            if key not in expected:
                if not any(pattern.fullmatch(key) for pattern in IGNORED_KEYS):
                    unexpected.append(key)
                continue
            if tuple(tensor.shape) != expected[key]:
                mismatched.append(f"{key} {list(tensor.shape)} (expected {list(expected[key])})")
                continue
            _assign(network, key, tensor, dtype, device)
            seen.add(key)
    problem = describe_keys(sorted(set(expected) - seen), sorted(unexpected), sorted(mismatched))
    if problem:
        raise InputError(folder, None, f"weights do not fit GLaMM's network: {problem}")
    _rebuild_buffers(network, device)
    return network.eval()


def _assign(network: nn.Module, key: str, tensor: torch.Tensor, dtype: torch.dtype, device: str) -> None:
    module_name, _, leaf = key.rpartition(".")
    module = network.get_submodule(module_name)
    value = tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
    if leaf in module._parameters:
        module._parameters[leaf] = nn.Parameter(value, requires_grad=False)
    else:
        module._buffers[leaf] = value


def _rebuild_buffers(network: GlammNetwork, device: str) -> None:
    """The buffers no checkpoint holds: the rotary frequencies (float32, as 4.28 computes its cos/sin cache
    before `model.bfloat16()` rounds it) and SAM's pixel statistics."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    network.model.rotary_emb = LlamaRotaryEmbedding(config=network.llama_config).to(device)
    sam = network.model.grounding_encoder
    sam.register_buffer("pixel_mean", torch.tensor(SAM_PIXEL_MEAN, device=device).view(-1, 1, 1), False)
    sam.register_buffer("pixel_std", torch.tensor(SAM_PIXEL_STD, device=device).view(-1, 1, 1), False)
    left = [name for name, tensor in [*network.named_parameters(), *network.named_buffers()] if tensor.is_meta]
    if left:
        raise InputError("model_path", None, f"tensors left without weights: {', '.join(left[:8])}")


def describe_keys(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    def shown(keys: list[str]) -> str:
        return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

    parts = [f"{label}: {shown(keys)}" for label, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("keys with the wrong shape", mismatched)) if keys]
    return "; ".join(parts)


def load_clip(folder: Path, dtype: torch.dtype, device: str, attn: str = "eager") -> Any:
    """`CLIPVisionModel` from an openai/clip-vit-large-patch14-336 folder (full CLIP: text weights ignored)."""
    from transformers import CLIPVisionModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError("clip_path", str(folder), "not a CLIP folder (no config.json); expected openai/clip-vit-large-patch14-336")
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()   # the full CLIP's text weights are reported as unexpected: we check them below
    try:
        model, info = CLIPVisionModel.from_pretrained(folder, dtype=dtype, attn_implementation=attn,
                                                      output_loading_info=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("clip_path", str(folder), f"cannot load CLIP: {str(error).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    unexpected = [k for k in info.get("unexpected_keys", ()) if not str(k).startswith(CLIP_TEXT_PARTS)]
    mismatched = [str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ())]
    problem = describe_keys(sorted(map(str, info.get("missing_keys", ()))), sorted(map(str, unexpected)), sorted(mismatched))
    if problem:
        raise InputError("clip_path", str(folder), problem)
    return model.to(device).eval()


@dataclass(frozen=True)
class ClipPreprocess:
    """transformers 4.28 `CLIPImageProcessor` with the CLIP folder's preprocessor_config.json: shortest side to
    `shortest_edge` (PIL, `resample`, long side `int(s·long/short)`), center crop (top = (h − ch) // 2), ×1/255
    to float32, (x − mean) / std — the image is cropped, never padded (GLaMM eval/gcg/infer.py)."""

    shortest_edge: int
    crop: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resample: int = 3

    @classmethod
    def from_folder(cls, folder: Path) -> "ClipPreprocess":
        path = Path(folder) / "preprocessor_config.json"
        if not path.is_file():
            raise InputError("clip_path", str(folder), "no preprocessor_config.json (the CLIP image processor settings)")
        config = json.loads(path.read_text())
        size, crop = config.get("size", 336), config.get("crop_size", 336)
        shortest = size if isinstance(size, int) else size.get("shortest_edge", size.get("height"))
        crop = (crop, crop) if isinstance(crop, int) else (crop["height"], crop["width"])
        return cls(int(shortest), (int(crop[0]), int(crop[1])), tuple(config["image_mean"]), tuple(config["image_std"]),
                   int(config.get("resample", 3)))

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        from PIL import Image

        height, width = image.shape[:2]
        short, long = (width, height) if width <= height else (height, width)
        if short != self.shortest_edge:
            new_long = int(self.shortest_edge * long / short)
            new_height, new_width = (new_long, self.shortest_edge) if width <= height else (self.shortest_edge, new_long)
            image = np.array(Image.fromarray(image).resize((new_width, new_height), resample=self.resample, reducing_gap=None))
        height, width = image.shape[:2]
        top, left = (height - self.crop[0]) // 2, (width - self.crop[1]) // 2
        if top < 0 or left < 0:
            raise InputError("image", None, f"{width}x{height} is smaller than the CLIP crop {self.crop}")
        image = image[top:top + self.crop[0], left:left + self.crop[1]]
        scaled = (image * (1 / 255)).astype(np.float32)
        normalized = (scaled - np.array(self.mean, dtype=np.float32)) / np.array(self.std, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(normalized.transpose(2, 0, 1)))[None]


def sam_pixels(image: np.ndarray, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """SAM input (eval/utils.py `grounding_image_ecoder_preprocess` after `ResizeLongestSide(size).apply_image`):
    long side to `size` (PIL bilinear), (x − mean) / std on the 0–255 scale, zero-padded bottom/right; with the
    resized (h, w)."""
    from PIL import Image

    height, width = image.shape[:2]
    scale = size * 1.0 / max(height, width)
    new_height, new_width = int(height * scale + 0.5), int(width * scale + 0.5)
    resized = np.array(Image.fromarray(image).resize((new_width, new_height), Image.BILINEAR))
    pixels = torch.from_numpy(resized).permute(2, 0, 1).contiguous()
    pixels = (pixels - torch.tensor(SAM_PIXEL_MEAN).view(-1, 1, 1)) / torch.tensor(SAM_PIXEL_STD).view(-1, 1, 1)
    pixels = torch.nn.functional.pad(pixels, (0, size - new_width, 0, size - new_height))
    return pixels[None], (new_height, new_width)
