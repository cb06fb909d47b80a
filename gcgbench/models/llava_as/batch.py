"""`llava-as` model inputs and outputs at the token level: the batch of llava_v1 prompts, pad and EOS ids.

`build_batch` reads each request's image (checked against the annotated size), pads it to a square of the
image processor's mean colour, puts the question in the llava_v1 conversation and, for teacher forcing,
appends the answer's tokens with their character offsets; rows are left-padded with `pad_id`. `until_eos`
cuts a generation after its first EOS. `LlavaAttendSegmentBackend._batch` (llava_as/backend.py, overridden by
difflmm/backend.py) calls `build_batch` with the loaded processor and model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from gcgbench.api.errors import InputError
from gcgbench.api.types import Request
from gcgbench.models.llava import loading as ll


@dataclass
class Batch:
    input_ids: torch.Tensor          # (B, L) left-padded
    attention_mask: torch.Tensor     # (B, L)
    pixel_values: torch.Tensor | None
    images: list[Any]                # PIL RGB originals (None without an image)
    answer_offsets: list[list[tuple[int, int]]] = field(default_factory=list)


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


def build_batch(processor: Any, model: Any, device: str | None, requests: Sequence[Request],
                questions: Sequence[str], answers: Sequence[str] | None = None) -> Batch:
    """One left-padded batch of `questions` about `requests`' images (with `answers` teacher-forced after
    them, their token offsets in `answer_offsets`), on `device`; pixels in the model's dtype."""
    tokenizer = processor.tokenizer
    rows, pixels, images, offsets = [], [], [], []
    background = ll.mean_colour(processor.image_processor)
    for request, question in zip(requests, questions):
        with_image = request.image_path is not None
        text = ll.llava_v1_prompt(question, with_image)
        if with_image:
            image = read_image(request)
            encoded = processor(text=[text], images=[ll.expand_to_square(image, background)], return_tensors="pt")
            pixels.append(encoded["pixel_values"])
        else:
            image, encoded = None, tokenizer([text], return_tensors="pt")
        rows.append(encoded["input_ids"][0])
        images.append(image)
    if answers is not None:
        for index, answer in enumerate(answers):
            encoded = tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
            rows[index] = torch.cat([rows[index], torch.tensor(encoded["input_ids"], dtype=torch.long)])
            offsets.append([tuple(o) for o in encoded["offset_mapping"]])
    length = max(len(r) for r in rows)
    pad = pad_id(tokenizer, model)
    input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, length - len(row):] = row
        attention_mask[index, length - len(row):] = 1
    return Batch(input_ids.to(device), attention_mask.to(device),
                 torch.cat(pixels).to(device, model.dtype) if pixels else None, images, offsets)


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
