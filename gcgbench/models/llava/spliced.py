"""The LLaVA-repo multimodal LM: a `LlamaForCausalLM` whose image placeholders are replaced by image tokens.

LLaVA's `prepare_inputs_labels_for_multimodal` (haotian-liu/LLaVA `llava/model/llava_arch.py`; groundLMM's copy)
splices the n projected image features in place of the one IMAGE_TOKEN_INDEX (-200) of the prompt ids. Our
ids hold n placeholders instead (`tokenizer.tokenizer_image_token`), so the embedding sequence is the same
with a scatter: `embed_with_image_tokens`. `SplicedLM.generate` calls `LlamaForCausalLM.generate(input_ids=…,
inputs_embeds=…)` so the returned sequences are prompt ids + new tokens. Used by DiffLMM and by the
LLaVA-repo layouts of llava-as (`liuhaotian/llava-v1.5-7b`, `-lora`).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from gcgbench.api.lazy import lazy_module

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

IMAGE_TOKEN_INDEX = -200   # llava/constants.py


def embed_with_image_tokens(llm: Any, input_ids: torch.Tensor, image_tokens: torch.Tensor | None) -> torch.Tensor:
    """Token embeddings of `input_ids` with the image tokens (B, n, hidden) scattered, in order, into each row's
    n IMAGE_TOKEN_INDEX positions (upstream `prepare_inputs_labels_for_multimodal`); differentiable."""
    is_image = input_ids == IMAGE_TOKEN_INDEX
    embeds = llm.get_input_embeddings()(input_ids.masked_fill(is_image, 0))
    if image_tokens is None:
        if bool(is_image.any()):
            raise ValueError("image placeholders without image features")
        return embeds
    counts = is_image.sum(dim=1)
    if image_tokens.shape[0] != input_ids.shape[0] or bool((counts != image_tokens.shape[1]).any()):
        raise ValueError(f"{counts.tolist()} image placeholders for image tokens of shape {tuple(image_tokens.shape)}")
    embeds[is_image] = image_tokens.reshape(-1, image_tokens.shape[-1]).to(embeds.dtype)
    return embeds


class SplicedLM:
    """What the a&s backend asks of an LMM (`generate`, a forward, `dtype`, `generation_config`,
    `config.image_token_id`) over a merged `LlamaForCausalLM`; `pixel_values` are the (B, n, hidden) image tokens."""

    def __init__(self, llm: Any):
        self.llm = llm
        self.config = SimpleNamespace(image_token_id=IMAGE_TOKEN_INDEX)

    @property
    def dtype(self) -> torch.dtype:
        return self.llm.dtype

    @property
    def generation_config(self) -> Any:
        return self.llm.generation_config

    def embed(self, input_ids: torch.Tensor, image_tokens: torch.Tensor | None) -> torch.Tensor:
        return embed_with_image_tokens(self.llm, input_ids, image_tokens)

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None, **kwargs: Any) -> Any:
        embeds = self.embed(input_ids, pixel_values)
        return self.llm.generate(input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)

    def __call__(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None, **kwargs: Any) -> Any:
        return self.llm(inputs_embeds=self.embed(input_ids, pixel_values), **kwargs)
