"""LLaVA-1.5 (HF `llava-hf/llava-1.5-7b-hf` layout): loading, prompts, image padding, the dtype resolver.

Attention capture (`gcgbench.grounding.attention_capture`) is set on the text model at load time."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from gcgbench.api.lazy import lazy_module
from gcgbench.api.errors import InputError
from gcgbench.grounding.attention_capture import CAPTURE_ATTENTION, register_capture_attention

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

# LLaVA v1.5 `conv_templates["llava_v1"]` (SeparatorStyle.TWO), as upstream a&s builds its prompts.
LLAVA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                   "The assistant gives helpful, detailed, and polite answers to the human's questions.")
DTYPES = ("float16", "bfloat16", "float32")   # names of torch dtypes


def resolve_dtype(name: str, device: str, cuda_default: str = "float16") -> torch.dtype:
    """`dtype=` of a backend: `auto` is `cuda_default` on CUDA (each upstream's own choice) and float32 on CPU."""
    if name == "auto":
        name = cuda_default if str(device).startswith("cuda") else "float32"
    if name not in DTYPES:
        raise InputError("--model-args", "dtype", f"must be auto, {', '.join(DTYPES)}; got {name!r}")
    return getattr(torch, name)


def load_llava(model_path: Path, dtype: torch.dtype, device: str) -> tuple[Any, Any]:
    """`LlavaForConditionalGeneration` + `AutoProcessor` from a local folder; any missing, unexpected or
    mismatched weight → InputError naming the keys (transformers' loading info), nothing half-loaded."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    folder = Path(model_path)
    if not (folder / "config.json").is_file():
        raise InputError("model_path", str(folder), "not a model folder (no config.json); expected the llava-hf/llava-1.5-7b-hf layout")
    register_capture_attention()
    try:
        model, info = LlavaForConditionalGeneration.from_pretrained(
            folder, dtype=dtype, output_loading_info=True, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError("model_path", str(folder), f"cannot load LLaVA weights: {str(error).splitlines()[0]}") from None
    problem = _loading_problem(info)
    if problem:
        raise InputError("model_path", str(folder), problem)
    model.set_attn_implementation({"text_config": CAPTURE_ATTENTION, "vision_config": "sdpa"})
    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise InputError("model_path", str(folder), f"cannot load the processor/tokenizer: {str(error).splitlines()[0]}") from None
    return model.to(device).eval(), processor


def _loading_problem(info: Mapping[str, Any]) -> str:
    def shown(keys: Any) -> str:
        keys = sorted(str(k) for k in keys)
        return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

    parts = []
    for label, field in (("missing keys", "missing_keys"), ("unexpected keys", "unexpected_keys"),
                         ("keys with the wrong shape", "mismatched_keys")):
        keys = info.get(field) or ()
        if field == "mismatched_keys":
            keys = [k[0] if isinstance(k, tuple) else k for k in keys]
        if keys:
            parts.append(f"{label}: {shown(keys)}")
    if info.get("error_msgs"):
        parts.append(f"errors: {'; '.join(str(e) for e in info['error_msgs'])[:300]}")
    return "; ".join(parts)


def llava_v1_prompt(question: str, with_image: bool = True) -> str:
    """`<system> USER: <image>\\n<question> ASSISTANT:` (llava_v1 conversation, `aas/infer_attn.py`)."""
    body = f"<image>\n{question}" if with_image else question
    return f"{LLAVA_V1_SYSTEM} USER: {body} ASSISTANT:"


def expand_to_square(image: Any, background: tuple[int, int, int]) -> Any:
    """LLaVA-1.5 `expand2square`: paste the image centred on a square canvas of the mean colour."""
    from PIL import Image

    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), background)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def mean_colour(image_processor: Any) -> tuple[int, int, int]:
    mean = getattr(image_processor, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)
    return tuple(int(v * 255) for v in mean)  # type: ignore[return-value]


def region_text(region: Sequence[float], height: int, width: int) -> str:
    """A pixel box [x, y, w, h] as LLaVA-1.5's `[x1, y1, x2, y2]` text, normalised to the padded square."""
    top, left = (max(height, width) - height) // 2, (max(height, width) - width) // 2
    side = float(max(height, width))
    x, y, w, h = (float(v) for v in region)
    values = [(x + left) / side, (y + top) / side, (x + w + left) / side, (y + h + top) / side]
    return "[" + ", ".join(f"{min(1.0, max(0.0, v)):.2f}" for v in values) + "]"


def pil_image_processor(folder: Path, label: str = "model_path") -> Any:
    """The folder's image processor on the PIL path (what LLaVA's transformers 4.37 `CLIPImageProcessor` did:
    PIL bicubic resize of the shortest edge, centre crop, rescale, normalise). transformers 5 picks its
    torchvision backend whenever torchvision is installed, which resizes with torch's bicubic instead; the
    backend is therefore asked for by name and checked."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(folder, backend="pil", local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise InputError(label, str(folder), f"cannot load the image processor: {str(error).splitlines()[0]}") from None
    if getattr(processor, "backend", "pil") != "pil":
        raise InputError(label, str(folder), f"image processor {type(processor).__name__} is not on the PIL path")
    return processor


def pixel_function(processor: Any) -> Any:
    """image → (3, H, W) float32 pixel values through `processor` (one image at a time)."""
    return lambda image: processor(images=[image], return_tensors="pt")["pixel_values"][0]


def hf_image_tokens(config: Any) -> int:
    """How many image features an HF `LlavaForConditionalGeneration` splices per image: (side/patch)² (+1 CLS
    with vision_feature_select_strategy `full`)."""
    vision = config.vision_config
    extra = 1 if getattr(config, "vision_feature_select_strategy", "default") == "full" else 0
    return (vision.image_size // vision.patch_size) ** 2 + extra
