"""`llava-as` model inputs and outputs at the token level: prompt ids, pixels, the left-padded batch, pad/EOS.

`Prompting` is the code path upstream runs for the checkpoint (a&s `aas/infer_attn*.py` in the LLaVA repo):
- prompt ids: the llava_v1 conversation through `tokenizer_image_token` (`models/llava/tokenizer.py`): the
  text chunks around `<image>` tokenized one by one (BOS kept once), joined by `n_image_tokens` copies of
  the model's image id. The chunk tokenizer is the slow Llama tokenizer upstream uses (`SlowLlamaTokenizer`,
  from the folder's `tokenizer.model` and its `legacy` flag) or, for a folder without a sentencepiece model
  (the embedded tiny model's word-level tokenizer), the folder's own tokenizer called the same way;
- pixels: the image padded to a square of the processor's mean colour (`expand2square`), then the image
  processor on the PIL path (bicubic resize, centre crop, rescale, normalise: `llava/loading.pil_image_processor`);
- teacher-forced answers (PNG): a list of pieces, each `encode(piece, add_special_tokens=False)` on its own and
  concatenated (a&s `aas/infer_attn_png.py`: one piece per utterance); `Batch.answer_ranges` gives each
  piece's token range within the answer.
Rows are left-padded with `pad_id`. `until_eos` cuts a generation after its first EOS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from gcgbench.api.lazy import lazy_module
from gcgbench.api.errors import InputError
from gcgbench.api.types import Request
from gcgbench.models.llava import loading as ll
from gcgbench.models.llava.tokenizer import tokenizer_image_token

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it


@dataclass
class Batch:
    input_ids: torch.Tensor          # (B, L) left-padded
    attention_mask: torch.Tensor     # (B, L)
    pixel_values: torch.Tensor | None
    images: list[Any]                # PIL RGB originals (None without an image)
    answer_ranges: list[list[tuple[int, int]]] = field(default_factory=list)   # per row: [start, end) per piece


class HfChunkEncoder:
    """A transformers tokenizer called as `tokenizer_image_token` calls it (`tokenizer(chunk).input_ids`)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    @property
    def bos_token_id(self) -> int | None:
        return self.tokenizer.bos_token_id

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])


@dataclass
class Prompting:
    """How a question (and an answer) about an image become ids and pixels for one checkpoint."""

    encoder: Any                                   # .encode(text, add_special_tokens) and .bos_token_id
    image_id: int                                  # the id the model replaces by image features
    n_image_tokens: int
    preprocess: Callable[[Any], torch.Tensor]      # square PIL image → (3, H, W)
    background: tuple[int, int, int]

    def prompt_ids(self, question: str, with_image: bool = True) -> list[int]:
        text = ll.llava_v1_prompt(question, with_image)
        if not with_image:
            return self.encoder.encode(text)
        return tokenizer_image_token(text, self.encoder.encode, self.encoder.bos_token_id, self.image_id,
                                     self.n_image_tokens)

    def answer_ids(self, pieces: Sequence[str]) -> tuple[list[int], list[tuple[int, int]]]:
        ids: list[int] = []
        ranges = []
        for piece in pieces:
            encoded = self.encoder.encode(piece, add_special_tokens=False) if piece else []
            ranges.append((len(ids), len(ids) + len(encoded)))
            ids.extend(encoded)
        return ids, ranges


def read_image(request: Request) -> Any:
    """The request's image as PIL RGB; InputError when unreadable or not of the annotated size."""
    from PIL import Image

    try:
        with Image.open(request.image_path) as opened:
            image = opened.convert("RGB")
    except OSError as error:
        raise InputError(request.image_path, None, f"cannot read the image ({error})") from None
    if image.size != (request.width, request.height):
        raise InputError(request.image_path, None, f"image is {image.size[0]}x{image.size[1]} (w x h), the "
                                                   f"annotation says {request.width}x{request.height}")
    return image


def build_batch(prompting: Prompting, pad: int, dtype: torch.dtype, device: str | None, requests: Sequence[Request],
                questions: Sequence[str], answers: Sequence[Sequence[str]] | None = None) -> Batch:
    """One left-padded batch of `questions` about `requests`' images (with each request's answer pieces
    teacher-forced after its prompt), on `device`; pixels in `dtype`."""
    rows, pixels, images, ranges = [], [], [], []
    for index, (request, question) in enumerate(zip(requests, questions)):
        with_image = request.image_path is not None
        ids = prompting.prompt_ids(question, with_image)
        image = None
        if with_image:
            image = read_image(request)
            pixels.append(prompting.preprocess(ll.expand_to_square(image, prompting.background)))
        if answers is not None:
            answer, spans = prompting.answer_ids(answers[index])
            ids = ids + answer
            ranges.append(spans)
        rows.append(torch.tensor(ids, dtype=torch.long))
        images.append(image)
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, length - len(row):] = row
        attention_mask[index, length - len(row):] = 1
    return Batch(input_ids.to(device), attention_mask.to(device),
                 torch.stack(pixels).to(device, dtype) if pixels else None, images, ranges)


def pad_id(tokenizer: Any, model: Any) -> int:
    """The tokenizer's pad id, else the generation config's, else EOS, else 0."""
    for candidate in (tokenizer.pad_token_id, model.generation_config.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate[0] if isinstance(candidate, list) else candidate)
    return 0


def eos_ids(tokenizer: Any, model: Any) -> set[int]:
    """The generation config's EOS ids (else the tokenizer's)."""
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


def until_eos(ids: list[int], eos: set[int]) -> list[int]:
    """The generated tokens up to and including the first EOS (a&s keeps the EOS step's map in the mean)."""
    for index, token in enumerate(ids):
        if token in eos:
            return ids[:index + 1]
    return ids
