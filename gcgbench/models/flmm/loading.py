"""F-LMM inputs and weights: pad-to-square preprocessing, the teacher-forced sequence, checkpoint loading.

LLaVA-1.5 is handled here; LLaVA-NeXT's any-resolution inputs and attention layout are `next.py`.

Preprocessing (`flmm/datasets/llava_processors.py::CustomLlavaImageProcessor`, the CLIP-336 processor of
`openai/clip-vit-large-patch14-336` = the `preprocessor_config.json` of `llava-hf/llava-1.5-7b-hf`): RGB;
resize so the LONG side is `size.shortest_edge` (336; the other side `int(short · 336 / long)`, bicubic, PIL);
no centre crop; paste centred on a square of the mean colour `int(mean · 255)` (top/left padding
`pad // 2`); rescale by 1/255; normalise. `PadMeta` keeps the padding, the resized size and the square size.

Sequence (`flmm/datasets/transforms.py::RefCOCO2PNG`, `flmm/datasets/png.py::PNGDataset`, prompt
template xtuner `PROMPT_TEMPLATE[...]['INSTRUCTION']` of the config: `vicuna` for LLaVA-1.5 and
LLaVA-NeXT-Vicuna, `mistral` for LLaVA-NeXT-Mistral, `configs/llava_next/*_png.py`):
    tokenizer.encode(INSTRUCTION.format(input="<image>\\nPlease give me a description of the image."))
    (with BOS; vicuna "USER: {input} ASSISTANT:", mistral "[INST] {input} [/INST]")
    + answer tokens (each text piece encoded on its own, add_special_tokens=False; `teacher_forced_pieces`)
with the one `<image>` token expanded to the image's feature count (HF LLaVA ≥ 4.4x does in the
processor what F-LMM's `Custom*ForConditionalGeneration._merge_input_ids_with_image_features` did).
`prompt_template=auto` picks vicuna for LLaVA-1.5 and for a Llama-based LLaVA-NeXT, mistral for a
Mistral-based one (`text_config.model_type`).

Weights:
- LLaVA: `LlavaForConditionalGeneration` (or `LlavaNextForConditionalGeneration` for a `llava_next` folder)
  `.from_pretrained(model_path)` (llava-hf layout), eager attention (sdpa returns no attention weights);
  missing/unexpected/mismatched keys → InputError naming them. `lmm=auto` takes the class from the folder's
  `config.json` `model_type`; `lmm=llava` / `lmm=llava_next` must agree with it.
- SAM: segment-anything `sam_model_registry[sam_type]` + `sam_checkpoint` (sam_vit_l_0b3195.pth), strict
  (`gcgbench.grounding.sam_refine.build_sam`).
- F-LMM checkpoint (`checkpoints/frozen_llava_1_5_vicuna_7b_unet_sam_l_refcoco_png.pth`, or for LLaVA-NeXT
  `frozen_llava_next_{vicuna,mistral}_7b_unet_sam_l_refcoco_png.pth`: `torch.save` of the
  `FrozenLlavaSAM` / `FrozenLlavaNextSAM` state dict, optionally under a `state_dict` key as xtuner's `guess_load_checkpoint`
  accepts): exactly the keys of `FlmmHeads.checkpoint_state()` (`mask_head.*`, `sam.model.prompt_encoder.*`,
  `sam.model.mask_decoder.*`, `text_proj.*`, `text_layer_weights`). Keys of the frozen parts (`llava.*`,
  `sam.model.image_encoder.*`) are tolerated and not used — those weights come from `model_path` and
  `sam_checkpoint`, exactly as F-LMM builds them before `load_state_dict(..., strict=False)`. Any other
  key, a missing key or a wrong shape → InputError naming them. One exception: SAM's untrained buffer
  (`sam.model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix`), if absent, keeps the value from
  `sam_checkpoint` — what F-LMM's own non-strict load leaves there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.lazy import lazy_module

torch = lazy_module("torch")   # at first use: `gcgbench models` lists the backend without torch

FLMM_PROMPT = "Please give me a description of the image."      # configs/*/…_png.py `prompt` (after "<image>\n")
VICUNA_INSTRUCTION = "USER: {input} ASSISTANT:"                   # xtuner PROMPT_TEMPLATE.vicuna['INSTRUCTION']
INSTRUCTIONS = {"vicuna": VICUNA_INSTRUCTION,
                "mistral": "[INST] {input} [/INST]"}              # xtuner PROMPT_TEMPLATE.mistral['INSTRUCTION']
TEXT_MODEL_TEMPLATES = {"llama": "vicuna", "mistral": "mistral"}  # text_config.model_type → F-LMM's template
LMM_CLASSES = {"llava": "LlavaForConditionalGeneration", "llava_next": "LlavaNextForConditionalGeneration"}
LMM_LAYOUTS = {"llava": "llava-hf/llava-1.5-7b-hf", "llava_next": "llava-hf/llava-v1.6-vicuna-7b-hf"}
IMAGE_TOKEN = "<image>"
FOLDER_FILES = ("config.json", "preprocessor_config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "added_tokens.json", "generation_config.json")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FROZEN_PREFIXES = ("llava.", "sam.model.image_encoder.")


@dataclass(frozen=True)
class PadMeta:
    """`meta_datas[0]` of CustomLlavaImageProcessor: padding of the resized image inside the square."""

    before_height: int
    after_height: int
    before_width: int
    after_width: int
    height: int          # resized image (before padding)
    width: int
    padded: int          # side of the square


@dataclass(frozen=True)
class PadToSquare:
    """CustomLlavaImageProcessor.preprocess for one image → ((3, S, S) float32 tensor, PadMeta)."""

    size: int = 336
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    rescale_factor: float = 1 / 255

    @classmethod
    def from_folder(cls, folder: Path) -> "PadToSquare":
        """Settings from `preprocessor_config.json` (CLIP-336 defaults for what it does not say)."""
        config: dict[str, Any] = {}
        for name in ("preprocessor_config.json", "processor_config.json"):
            path = Path(folder) / name
            if path.is_file():
                loaded = json.loads(path.read_text())
                config = loaded.get("image_processor", loaded) if isinstance(loaded, dict) else {}
                break
        size = config.get("size", {"shortest_edge": 336})
        side = size.get("shortest_edge") if isinstance(size, dict) else size
        if side is None and isinstance(size, dict):
            side = max(size.get("height", 336), size.get("width", 336))
        return cls(int(side), tuple(config.get("image_mean", CLIP_MEAN)), tuple(config.get("image_std", CLIP_STD)),
                   float(config.get("rescale_factor", 1 / 255)))

    def __call__(self, image: Any) -> tuple[torch.Tensor, PadMeta]:
        from PIL import Image

        image = image.convert("RGB")
        w, h = image.size
        new_h, new_w = (self.size, int(w * self.size / h)) if h > w else (int(h * self.size / w), self.size)
        resized = np.asarray(image.resize((new_w, new_h), Image.BICUBIC))
        side = max(new_h, new_w)
        pad_value = np.array([int(x * 255) for x in self.mean], dtype=np.uint8)
        square = np.ones((side, side, 3), dtype=np.uint8) * pad_value
        before_h, before_w = (side - new_h) // 2, (side - new_w) // 2
        square[before_h:before_h + new_h, before_w:before_w + new_w] = resized
        pixels = (square.astype(np.float64) * self.rescale_factor).astype(np.float32)
        pixels = (pixels - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        meta = PadMeta(before_h, side - new_h - before_h, before_w, side - new_w - before_w, new_h, new_w, side)
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))), meta


@dataclass(frozen=True)
class PadView:
    """One LLaVA-1.5 image: the padded square's pixels and its g×g patch grid (`FrozenLlavaSAM._forward`)."""

    pixels: torch.Tensor       # (3, S, S)
    meta: PadMeta
    grid: int                  # g = S / patch

    grids = 1                  # attention grids stacked into the mask head input

    @property
    def image_tokens(self) -> int:
        return self.grid * self.grid

    def model_inputs(self, device: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixels[None].to(device, dtype)}

    def maps(self, per_layer: Sequence[torch.Tensor]) -> torch.Tensor:
        """Each layer's (heads, g²) merged attention → (layers·heads, g, g), channel l·H + k."""
        return torch.cat(list(per_layer)).view(-1, self.grid, self.grid).float()

    def crop(self, coarse: torch.Tensor) -> torch.Tensor:
        return unpad(coarse, self.meta)


@dataclass(frozen=True)
class PadVision:
    """LLaVA-1.5's image side: `PadToSquare` preprocessing + the vision tower's patch size."""

    processor: PadToSquare
    patch_size: int

    grids = 1

    @classmethod
    def from_folder(cls, folder: Path, vision_config: Any) -> "PadVision":
        processor = PadToSquare.from_folder(folder)
        if processor.size != vision_config.image_size:
            raise InputError("model_path", str(folder), f"preprocessor size {processor.size} != vision tower "
                                                        f"image_size {vision_config.image_size}")
        return cls(processor, int(vision_config.patch_size))

    def __call__(self, image: Any) -> PadView:
        pixels, meta = self.processor(image)
        return PadView(pixels, meta, meta.padded // self.patch_size)


def unpad(coarse: torch.Tensor, meta: PadMeta) -> torch.Tensor:
    """Crop the padded-square logits (N, h', w') to the image region, with F-LMM's rounding."""
    mask_h, mask_w = coarse.shape[-2:]
    top = int(meta.before_height * mask_h / meta.padded)
    left = int(meta.before_width * mask_w / meta.padded)
    height = int(meta.height * mask_h / meta.padded + 0.5)
    width = int(meta.width * mask_w / meta.padded + 0.5)
    return coarse[:, top:top + height, left:left + width].contiguous()


@dataclass(frozen=True)
class TeacherForced:
    """A teacher-forced sequence: token ids (image expanded) and, per phrase, its answer positions."""

    input_ids: list[int]
    phrase_positions: list[list[int]]


def prompt_ids(tokenizer: Any, prompt: str, image_token_id: int, image_tokens: int,
               instruction: str = VICUNA_INSTRUCTION) -> list[int]:
    """BOS + instruction("<image>\\n{prompt}") with `<image>` expanded to `image_tokens` copies."""
    ids = list(tokenizer.encode(instruction.format(input=f"{IMAGE_TOKEN}\n{prompt}"), add_special_tokens=True))
    if ids.count(image_token_id) != 1:
        raise InputError("model_path", None, f"the tokenizer does not encode {IMAGE_TOKEN} as the one token "
                                             f"{image_token_id} (config image_token_index)")
    at = ids.index(image_token_id)
    return ids[:at] + [image_token_id] * image_tokens + ids[at + 1:]


def teacher_forced(prompt: Sequence[int], pieces: Sequence[tuple[str, bool]], tokenizer: Any,
                   suffix: Sequence[int] = ()) -> TeacherForced:
    """prompt + each (text, grounded) piece encoded on its own + suffix; grounded pieces become phrases."""
    ids, phrases = list(prompt), []
    for text, grounded in pieces:
        piece = list(tokenizer.encode(text, add_special_tokens=False)) if text else []
        if grounded:
            phrases.append(list(range(len(ids), len(ids) + len(piece))))
        ids += piece
    return TeacherForced(ids + list(suffix), phrases)


def teacher_forced_pieces(prompt: Sequence[int], pieces: Sequence[str], owners: Sequence[int | None], encoder: Any,
                          after_each: Sequence[int] = ()) -> TeacherForced:
    """prompt + each piece encoded on its own (`add_special_tokens=False`) followed by `after_each`; phrase i
    is the tokens of piece `owners[i]` (no tokens for None). PNG: pieces = utterances (`PNGDataset`); RES
    `--concat`: pieces = the objects' sentences, `after_each` = the "." id (`RefCOCO2PNG.transform_concat`)."""
    ids, ranges = list(prompt), []
    for piece in pieces:
        encoded = list(encoder.encode(piece, add_special_tokens=False)) if piece else []
        ranges.append((len(ids), len(ids) + len(encoded)))
        ids += encoded + list(after_each)
    return TeacherForced(ids, [list(range(*ranges[o])) if o is not None else [] for o in owners])


def legacy_style_tokenizer_json(folder: Path) -> bool:
    """Whether the folder's tokenizer.json tokenizes each non-special piece with a dummy "▁" prefix, as a
    `Prepend("▁")` normaliser (llava-hf's) or a Metaspace pre-tokenizer with prepend_scheme "always" do; no
    tokenizer.json: the slow tokenizer 4.39 would convert, legacy by default."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return True
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return True
    pre = data.get("pre_tokenizer") or {}
    scheme = pre.get("prepend_scheme") if isinstance(pre, dict) else None
    return scheme != "first"


def resolve_lmm(folder: Path, requested: str) -> str:
    """`llava` or `llava_next`: the folder's `config.json` model_type, checked against `lmm=` when given."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise InputError("model_path", str(folder), f"not a model folder (no config.json); expected the "
                                                    f"{LMM_LAYOUTS['llava']} or {LMM_LAYOUTS['llava_next']} layout")
    try:
        found = json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise InputError(str(path), None, f"not a readable JSON config ({error})") from None
    if found not in LMM_CLASSES:
        raise InputError(str(path), "model_type", f"{found!r}: F-LMM runs on {' or '.join(LMM_CLASSES)} folders")
    if requested not in ("auto", found):
        raise InputError("--model-args", "lmm", f"lmm={requested} but {path} has model_type {found!r}")
    return found


def resolve_instruction(requested: str, lmm: str, text_model_type: str | None) -> str:
    """The instruction template (`INSTRUCTIONS` key) for `prompt_template=requested` (auto: by the LMM)."""
    if requested != "auto":
        return requested
    if lmm == "llava":
        return "vicuna"
    if text_model_type not in TEXT_MODEL_TEMPLATES:
        raise InputError("--model-args", "prompt_template", f"no F-LMM template for a {text_model_type!r} "
                                                            f"LLaVA-NeXT; give one of {', '.join(INSTRUCTIONS)}")
    return TEXT_MODEL_TEMPLATES[text_model_type]


def load_llava(folder: Path, dtype: torch.dtype, lmm: str = "llava") -> tuple[Any, Any]:
    """(LLaVA model of class `LMM_CLASSES[lmm]` with eager attention, tokenizer) from a llava-hf layout folder."""
    import transformers
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise InputError("model_path", str(folder), f"not a model folder (no config.json); expected the "
                                                    f"{LMM_LAYOUTS[lmm]} layout")
    try:
        model, info = getattr(transformers, LMM_CLASSES[lmm]).from_pretrained(
            folder, dtype=dtype, output_loading_info=True, local_files_only=True, attn_implementation="eager")
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("model_path", str(folder), f"cannot load LLaVA weights: {str(error).splitlines()[0]}") from None
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys") or ()]
    problem = key_problem(sorted(map(str, info.get("missing_keys") or ())),
                          sorted(map(str, info.get("unexpected_keys") or ())), sorted(map(str, mismatched)))
    if problem:
        raise InputError("model_path", str(folder), problem)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError("model_path", str(folder), f"cannot load the tokenizer: {str(error).splitlines()[0]}") from None
    return model.eval(), tokenizer


def load_flmm_state(heads: torch.nn.Module, path: Path) -> list[str]:
    """Load an F-LMM checkpoint into `FlmmHeads` strictly; returns the tolerated frozen-part keys it skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint", str(path), "no such file (the F-LMM .pth from the README's Google Drive table)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - an unreadable file is the user's input problem
        raise InputError("checkpoint", str(path), f"cannot read a torch state dict ({type(error).__name__}: {error})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise InputError("checkpoint", str(path), f"expected a state dict, got {type(state).__name__}")
    expected = heads.checkpoint_state()
    skipped = sorted(k for k in state if k.startswith(FROZEN_PREFIXES))
    sam_buffers = {name for name, _ in heads.named_buffers() if name.startswith("sam.model.")}
    missing = sorted(set(expected) - set(state) - sam_buffers)
    unexpected = sorted(set(state) - set(expected) - set(skipped))
    mismatched = sorted(f"{k} {list(state[k].shape)} vs {list(expected[k].shape)}" for k in set(expected) & set(state)
                        if tuple(state[k].shape) != tuple(expected[k].shape))
    problem = key_problem(missing, unexpected, mismatched)
    if problem:
        raise InputError("checkpoint", str(path), problem + " (an F-LMM checkpoint for another LMM?)")
    heads.load_state_dict({**heads.state_dict(), **{k: state[k] for k in expected if k in state}}, strict=True)
    return skipped


def key_problem(missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str] = ()) -> str:
    def shown(keys: Sequence[str]) -> str:
        return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

    parts = [f"{label}: {shown(keys)}" for label, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("keys with the wrong shape", mismatched)) if keys]
    return "; ".join(parts)
