"""LLaVA-1.5 (HF `llava-hf/llava-1.5-7b-hf` layout) loading, input building, a&s attention capture, file hashes.

Attention capture. a&s needs, per generated token, ONE attention row over the image keys averaged over layers
and heads, never the full (L, H, S, S) tensors `output_attentions=True` returns (and sdpa cannot return).
We register an attention function `gcgbench_capture` through transformers' `AttentionInterface` (mask
function: sdpa's) and set it on the text model only. It always computes the layer output with
`sdpa_attention_forward`, so generated text is bit-identical to plain sdpa generation; when an
`AttentionCapture` is active it also computes, for the chosen query rows only,

    p = softmax(q_rows · Kᵀ · scale + mask)  (eager's arithmetic: matmul in the model dtype, softmax in fp32)

and adds mean_heads(p[..., image keys]) into a per-forward sum; a forward starts at layer 0. For generation
the row is the last query row of every forward (prefill: the last prompt position, then each new token's
input position), i.e. the row that predicts the next token (`aas/infer_attn.py`: `x[:, :, -1, img]`). For
teacher forcing the rows are given positions. The extra cost is one q·Kᵀ over the cached keys per layer and
step for a single row — small next to the layer's weights.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch

from gcgbench.api.errors import InputError

CAPTURE_ATTENTION = "gcgbench_capture"
# LLaVA v1.5 `conv_templates["llava_v1"]` (SeparatorStyle.TWO), as upstream a&s builds its prompts.
LLAVA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                   "The assistant gives helpful, detailed, and polite answers to the human's questions.")
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

_ACTIVE: contextvars.ContextVar["AttentionCapture | None"] = contextvars.ContextVar("gcgbench_capture", default=None)


class AttentionCapture:
    """Per forward pass: (B, R, n_img) = mean over layers and heads of the chosen rows' image attention.

    `image_columns`: (B, n_img) key positions of the image tokens in each (padded) row. `rows`: None for the
    last query row of every forward, or (B, R) query positions within the forward (teacher forcing).
    """

    def __init__(self, image_columns: torch.Tensor, rows: torch.Tensor | None = None):
        self.image_columns = image_columns
        self.rows = rows
        self._sums: list[torch.Tensor] = []
        self._layers: list[int] = []
        self._columns: torch.Tensor | None = None      # on the model's device: (n,) shared by all rows, or (B, n)

    def _image_columns_on(self, device: torch.device) -> torch.Tensor:
        if self._columns is None:
            columns = self.image_columns.to(device)
            self._columns = columns[0] if bool((columns == columns[:1]).all()) else columns
        return self._columns

    def record(self, module: Any, query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None,
               scaling: float | None) -> None:
        batch, heads, q_len, dim = query.shape
        kv_len = key.shape[2]
        groups = getattr(module, "num_key_value_groups", 1)
        keys = key if groups == 1 else key.repeat_interleave(groups, dim=1)
        scale = scaling if scaling is not None else dim ** -0.5
        if self.rows is None:                               # generation: the last query row, a view
            picked = query[:, :, -1:, :]
            row_mask = None if mask is None else mask[:, :, -1:, :kv_len]
        else:                                               # teacher forcing: the given rows
            rows = self.rows.to(query.device)
            picked = query.gather(2, rows[:, None, :, None].expand(batch, heads, rows.shape[1], dim))
            if mask is None:                                # sdpa skipped the mask: plain causal
                positions = torch.arange(kv_len, device=query.device)
                row_mask = (positions[None, :] <= (kv_len - q_len + rows)[:, :, None])[:, None]
            else:
                full = mask[..., :kv_len].expand(batch, -1, -1, -1)
                row_mask = full.gather(2, rows[:, None, :, None].expand(batch, full.shape[1], rows.shape[1], kv_len))
        scores = torch.matmul(picked, keys.transpose(2, 3)).mul_(scale).float()       # (B, H, R, S)
        if row_mask is not None:
            if row_mask.dtype == torch.bool:
                scores = scores.masked_fill_(~row_mask, float("-inf"))
            else:
                scores = scores.add_(row_mask.float())
        probs = torch.softmax(scores, dim=-1)
        columns = self._image_columns_on(query.device)
        if columns.dim() == 1:
            image = probs.index_select(3, columns)
        else:
            image = probs.gather(3, columns[:, None, None, :].expand(batch, heads, probs.shape[2], columns.shape[1]))
        layer_mean = image.mean(dim=1)                                                     # (B, R, n_img)
        if getattr(module, "layer_idx", 0) == 0 or not self._sums:
            self._sums.append(layer_mean)
            self._layers.append(1)
        else:
            self._sums[-1].add_(layer_mean)
            self._layers[-1] += 1

    def maps(self) -> torch.Tensor:
        """(forwards, B, R, n_img) on the CPU, averaged over layers."""
        if not self._sums:
            return torch.zeros((0,) + tuple(self.image_columns.shape[:1]) + (1, self.image_columns.shape[1]))
        return torch.stack([s / n for s, n in zip(self._sums, self._layers)]).float().cpu()


@contextmanager
def capturing(capture: AttentionCapture) -> Iterator[AttentionCapture]:
    token = _ACTIVE.set(capture)
    try:
        yield capture
    finally:
        _ACTIVE.reset(token)


def _capture_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                       **kwargs: Any) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    output = sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    capture = _ACTIVE.get()
    if capture is not None:
        with torch.no_grad():
            capture.record(module, query, key, attention_mask, scaling)
    return output


def register_capture_attention() -> None:
    """Make `gcgbench_capture` a valid `attn_implementation` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(CAPTURE_ATTENTION, _capture_attention)
    AttentionMaskInterface.register(CAPTURE_ATTENTION, sdpa_mask)


def resolve_dtype(name: str, device: str, cuda_default: torch.dtype = torch.float16) -> torch.dtype:
    """`dtype=` of a backend: `auto` is `cuda_default` on CUDA (each upstream's own choice) and float32 on CPU."""
    if name == "auto":
        return cuda_default if str(device).startswith("cuda") else torch.float32
    if name not in DTYPES:
        raise InputError("--model-args", "dtype", f"must be auto, {', '.join(DTYPES)}; got {name!r}")
    return DTYPES[name]


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



# ---------------------------------------------------------------------------------------------- tiny checkpoint

TINY_WORDS = (
    "a an the this that it we you me there in on with of and to near left right top bottom is are be can see "
    "gray grey red green blue yellow beige white black small large two three image picture background circle "
    "circles square squares triangle triangles shape shapes object objects scene region . , : ? \" ' "
    "USER ASSISTANT A chat between curious human artificial intelligence assistant The gives helpful detailed "
    "polite answers human's questions Describe describe detail Could could please Please give description "
    "respond interleaved segmentation masks mask for corresponding parts answer What what output In shown"
).split()


def write_tiny_llava(folder: Path, seed: int = 0, layers: int = 2, hidden: int = 32, grid: int = 6) -> Path:
    """A random-weight LLaVA in the llava-hf layout (CLIP vision with 8 px patches, `grid`² image tokens —
    6×6 at 48 px by default, 24×24 like LLaVA-1.5 with grid=24 — a Llama text model, a word-level tokenizer
    with `<image>`, LlavaProcessor), for tests and benchmarks.

    Default config as in the methods notes §3.1 (verified with transformers 5.x); ~60k parameters."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = Path(folder)
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {word: index for index, word in enumerate(dict.fromkeys(specials + list(TINY_WORDS)))}
    vocab["<image>"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    side = 8 * grid
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", image_token="<image>",
                               num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=side, patch_size=8),
        text_config=LlamaConfig(vocab_size=max(128, len(vocab)), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                                bos_token_id=1, eos_token_id=2, pad_token_id=0),
        image_token_index=vocab["<image>"], image_seq_length=grid * grid)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
