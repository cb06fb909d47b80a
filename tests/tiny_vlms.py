"""Tiny random-weight checkpoints of the VLM families the `aas` backend reads, built from their transformers
configs and saved with `save_pretrained` in the real HF layouts (config.json with the family's `model_type`,
safetensors, tokenizer + image processor + processor + chat template), for tests only.

Sizes are chosen so that the bundled sample's 64–112 px images already use each family's multi-tile path:
LLaVA-NeXT / OneVision crops of 32 px (4×4 patches of 8 px) with pinpoints up to 3×1 crops; Qwen2-VL patches
of 4 px merged 2×2 (8 px per token); InternVL tiles of 32 px (4×4 patches → 2×2 tokens after pixel shuffle),
1–6 tiles + thumbnail; Idefics3 / SmolVLM tiles of 32 px (2×2 tokens after the connector's pixel shuffle),
images scaled to a longest edge of 96 px. Text models: 2 layers, hidden 32, 4 heads. The tokenizer is
word-level (`TINY_WORDS` of the tiny LLaVA + each family's special tokens) with a chat template shaped like
the family's own. `make_vision_local` zeroes the vision tower's attention outputs so each image token
depends only on its own pixels (the feature-locality test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.tiny_checkpoints import TINY_WORDS

FAMILIES = ("llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "internvl", "idefics3", "smolvlm")

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
          "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
          "{IMAGE}{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
VICUNA = ("{% for message in messages %}{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
          "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
          "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
          " {% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")
IDEFICS = ("<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}:{% if message['content'] is string %}"
           " {{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
           "<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
           "{% if add_generation_prompt %}Assistant:{% endif %}")
EXTRA_WORDS = "user assistant system User Assistant helpful You".split()


def word_tokenizer(specials: list[str], eos: str, pad: str = "<pad>") -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    base = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(base + list(TINY_WORDS) + EXTRA_WORDS + ["\n"] + specials))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token=eos, pad_token=pad,
                                        unk_token="<unk>", clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    return tokenizer


def _text(vocab: int, eos: int, pad: int, kind: str = "llama", **more: Any) -> Any:
    from transformers import LlamaConfig, Qwen2Config

    cls = Qwen2Config if kind == "qwen2" else LlamaConfig
    return cls(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, bos_token_id=1, eos_token_id=eos, pad_token_id=pad,
               max_position_embeddings=4096, **more)


def _vocab(tokenizer: Any) -> int:
    return max(256, len(tokenizer))


def _save(model: Any, tokenizer: Any, images: Any, template: str, folder: Path, **processor_config: Any) -> Path:
    """The files a transformers processor would save (tokenizer, preprocessor_config.json, chat_template.jinja,
    processor_config.json), written without the processor class (several need torchvision for video)."""
    import json

    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    images.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(template)
    (folder / "processor_config.json").write_text(json.dumps(processor_config))
    return folder


def write_tiny_vlm(family: str, folder: Path, seed: int = 0) -> Path:
    """A tiny random checkpoint of `family` (one of FAMILIES) in `folder`."""
    torch.manual_seed(seed)
    folder = Path(folder)
    return {"llava_next": _llava_next, "llava_onevision": _llava_onevision, "qwen2_vl": _qwen2_vl,
            "qwen2_5_vl": _qwen2_5_vl, "internvl": _internvl, "idefics3": _idefics3,
            "smolvlm": _smolvlm}[family](folder, seed)


PINPOINTS = [[32, 64], [64, 32], [64, 64], [32, 96], [96, 32]]


def _clip(side: int) -> Any:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                            image_size=side, patch_size=8)


def _llava_next(folder: Path, seed: int) -> Path:
    from transformers import (LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil)

    tokenizer = word_tokenizer(["<image>"], eos="</s>")
    images = LlavaNextImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                        image_grid_pinpoints=PINPOINTS)
    config = LlavaNextConfig(vision_config=_clip(32), text_config=_text(_vocab(tokenizer), 2, 0),
                             image_token_index=tokenizer.convert_tokens_to_ids("<image>"), image_grid_pinpoints=PINPOINTS,
                             vision_feature_layer=-1)
    return _save(LlavaNextForConditionalGeneration(config).eval(), tokenizer, images, VICUNA, folder, patch_size=8,
                 vision_feature_select_strategy="default")


def _llava_onevision(folder: Path, seed: int) -> Path:
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessorPil)

    tokenizer = word_tokenizer(["<image>", "<video>", "<|im_start|>", "<|im_end|>"], eos="<|im_end|>")
    images = LlavaOnevisionImageProcessorPil(size={"height": 32, "width": 32}, image_grid_pinpoints=PINPOINTS)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlavaOnevisionConfig(vision_config=_siglip(32), text_config=_text(_vocab(tokenizer), eos, 0, "qwen2"),
                                  image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                                  video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
                                  image_grid_pinpoints=PINPOINTS, vision_feature_select_strategy="full",
                                  vision_feature_layer=-1, vision_aspect_ratio="anyres_max_1")
    return _save(LlavaOnevisionForConditionalGeneration(config).eval(), tokenizer, images,
                 CHATML.replace("{IMAGE}", "<image>\n"), folder, num_image_tokens=16, vision_aspect_ratio="anyres_max_1")


def _siglip(side: int) -> Any:
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                              image_size=side, patch_size=8, vision_use_head=False)


QWEN_SPECIALS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


def _qwen_common(folder: Path, seed: int, v25: bool) -> Path:
    from transformers import Qwen2VLImageProcessorPil

    tokenizer = word_tokenizer(QWEN_SPECIALS, eos="<|im_end|>")
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in QWEN_SPECIALS}
    images = Qwen2VLImageProcessorPil(patch_size=4, merge_size=2, temporal_patch_size=2,
                                      size={"shortest_edge": 16 * 16, "longest_edge": 48 * 48})
    text = dict(vocab_size=_vocab(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=ids["<|im_end|>"],
                pad_token_id=0, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]})
    common = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    if v25:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

        vision = dict(depth=2, hidden_size=16, intermediate_size=32, num_heads=2, patch_size=4, spatial_merge_size=2,
                      temporal_patch_size=2, out_hidden_size=32, window_size=16, fullatt_block_indexes=[1])
        config = Qwen2_5_VLConfig(vision_config=vision, text_config=text, **common)
        model = Qwen2_5_VLForConditionalGeneration(config)
    else:
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

        vision = dict(depth=1, embed_dim=16, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=4,
                      spatial_merge_size=2, temporal_patch_size=2)
        config = Qwen2VLConfig(vision_config=vision, text_config=text, **common)
        model = Qwen2VLForConditionalGeneration(config)
    return _save(model.eval(), tokenizer, images, CHATML.replace("{IMAGE}", QWEN_IMAGE), folder)


def _qwen2_vl(folder: Path, seed: int) -> Path:
    return _qwen_common(folder, seed, v25=False)


def _qwen2_5_vl(folder: Path, seed: int) -> Path:
    return _qwen_common(folder, seed, v25=True)


def _internvl(folder: Path, seed: int) -> Path:
    from transformers import (GotOcr2ImageProcessorPil, InternVLConfig, InternVLForConditionalGeneration)

    tokenizer = word_tokenizer(["<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"], eos="<|im_end|>")
    images = GotOcr2ImageProcessorPil(size={"height": 32, "width": 32}, crop_to_patches=True, min_patches=1,
                                      max_patches=6)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  image_size=[32, 32], patch_size=[8, 8])
    config = InternVLConfig(vision_config=vision, text_config=_text(_vocab(tokenizer), eos, 0, "qwen2").to_dict(),
                            image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=4)
    return _save(InternVLForConditionalGeneration(config).eval(), tokenizer, images,
                 CHATML.replace("{IMAGE}", "<IMG_CONTEXT>\n"), folder, image_seq_length=4)


IDEFICS_SPECIALS = ["<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]


def _idefics_common(folder: Path, seed: int, smol: bool) -> Path:
    tokenizer = word_tokenizer(IDEFICS_SPECIALS, eos="<end_of_utterance>")
    eos = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32,
                  patch_size=8)
    common = dict(vision_config=vision, text_config=_text(_vocab(tokenizer), eos, 0).to_dict(), scale_factor=2,
                  image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    sizes = dict(size={"longest_edge": 96}, max_image_size={"longest_edge": 32}, do_image_splitting=True)
    if smol:
        from transformers import (SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMImageProcessorPil)

        images: Any = SmolVLMImageProcessorPil(**sizes)
        model = SmolVLMForConditionalGeneration(SmolVLMConfig(**common))
    else:
        from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil)

        images = Idefics3ImageProcessorPil(**sizes)
        model = Idefics3ForConditionalGeneration(Idefics3Config(**common))
    return _save(model.eval(), tokenizer, images, IDEFICS, folder, image_seq_len=4)


def _idefics3(folder: Path, seed: int) -> Path:
    return _idefics_common(folder, seed, smol=False)


def _smolvlm(folder: Path, seed: int) -> Path:
    return _idefics_common(folder, seed, smol=True)
