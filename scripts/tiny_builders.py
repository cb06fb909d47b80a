"""Builders of the embedded tiny models' random-init architectures, for `make train-tiny` (scripts/train_tiny.py).

The shipped checkpoints' paths and run-time defaults live in `gcgbench.models.embedded`; what only training
needs — the architectures, the word-level vocabulary, the training scene range — lives here.
"""

from __future__ import annotations

from typing import Any, Sequence

from gcgbench.models.embedded import TINY_SAM_TYPE

TRAIN_SCENE_START = 100_000
# Words of the tiny vocabulary: the scene captions' words plus the question's; the whole llava_v1 system
# sentence is ONE added token (the text is identical for every prompt, so one position carries it).
CAPTION_WORDS = ("a two three red green blue yellow circle circles square squares triangle triangles to the left of "
                 "and on gray beige white background .").split()
PROMPT_WORDS = ("USER ASSISTANT : Describe image").split()
# The words the fine-tune on GCG + RES + PNG adds (appended after the pre-training vocabulary, so every old id
# keeps its meaning): the a&s GCG question's "in detail", the RES template's quotes (the Whitespace
# pre-tokenizer splits `"the red circle".` into `"` … `".`), the RES answer "it is", the referring
# expressions' words and the PNG narratives' (scripts/tiny_tasks.py). Training refuses any `<unk>`.
PRETRAIN_QUESTION = "Describe the image ."
FINETUNE_WORDS = ('in detail " ". it is shape leftmost middle rightmost right one picture '
                  'In this we can see with').split()
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
IMAGE_TOKEN = "<image>"
TINY_DIFFLMM_RESOLUTION = 128      # R: U-Net up_blocks[1] at R/16 = 8 → 64 image tokens, as the tiny LLaVA
TINY_CLIP_SIDE, TINY_CLIP_PATCH = 112, 14   # DiffLMM's CLIP sees 7R/8 px; (112/14)² = 64 patch tokens
TINY_CROSS_DIM = 64                # U-Net cross_attention_dim = mm_vision_sd_clip_proj_out
TINY_UNET_CHANNELS = (32, 64, 64, 64)
TINY_LORA_RANK, TINY_LORA_ALPHA = 16, 32.0
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

def build_tiny_llava(seed: int = 0, vision_hidden: int = 128, vision_layers: int = 4, text_hidden: int = 192,
                     text_layers: int = 4, heads: int = 4, side: int = 64, patch: int = 8) -> tuple[Any, Any]:
    """(random-init `LlavaForConditionalGeneration`, `LlavaProcessor`) in the llava-hf layout.

    Same tokenizer/processor construction as the tests' `write_tiny_llava` (tests/tiny_checkpoints.py) (word-level tokenizer with
    `<image>`, CLIPImageProcessor at `side` px, `num_additional_image_tokens=1` + `default` feature selection →
    (side/patch)² image tokens), with the scene vocabulary and the llava_v1 system sentence as one added token."""
    import torch
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    from gcgbench.models.llava.loading import LLAVA_V1_SYSTEM

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


def extend_vocabulary(tokenizer: Any, words: Sequence[str]) -> Any:
    """The word-level `tokenizer` with `words` appended to its vocabulary (ids after the highest one; words it
    already has are skipped); special and added tokens keep their ids."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = state["model"]["vocab"]
    for word in dict.fromkeys(words):
        if word not in vocab:
            vocab[word] = max(vocab.values()) + 1
    extended = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(state)), bos_token="<s>",
                                       eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                       clean_up_tokenization_spaces=False)
    extended.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return extended


def build_tiny_sam(sam_type: str = TINY_SAM_TYPE) -> Any:
    """Random-init SAM of a registered small type (segment-anything modules and key names)."""
    from gcgbench.grounding.sam_refine import sam_builders

    return sam_builders()[sam_type](checkpoint=None)


def build_tiny_sd(seed: int = 0) -> tuple[Any, Any, Any]:
    """(UNet2DConditionModel, AutoencoderKL, DDIMScheduler) in SD-1.5's block layout, scaled down.

    VAE: 4 blocks (8× down) → a 16×16×4 latent at R = 128; U-Net: 4 down blocks (3 cross-attention + 1 plain,
    as SD), so `up_blocks[1]` (DiffLMM's `mm_vision_select_layer`) outputs 8×8 = R/16; cross-attention
    width `TINY_CROSS_DIM`; scheduler: SD-1.5's scaled-linear betas (0.00085 … 0.012, 1000 steps)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=TINY_DIFFLMM_RESOLUTION // 8, in_channels=4, out_channels=4,
                                layers_per_block=1, block_out_channels=TINY_UNET_CHANNELS,
                                down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                                up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                                cross_attention_dim=TINY_CROSS_DIM, attention_head_dim=8, norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 32, 32, 32),
                        latent_channels=4, norm_num_groups=8, sample_size=TINY_DIFFLMM_RESOLUTION, layers_per_block=1)
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return unet, vae, scheduler


def build_tiny_clip(seed: int = 0, hidden: int = 128, layers: int = 4, heads: int = 4) -> Any:
    """`CLIPVisionModel` at 112 px, patch 14 (8×8 patches): the CLIP ViT-L/336 of DiffLMM, scaled down."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    return CLIPVisionModel(CLIPVisionConfig(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                                            num_attention_heads=heads, image_size=TINY_CLIP_SIDE,
                                            patch_size=TINY_CLIP_PATCH))


def tiny_difflmm_mm_config(clip_hidden: int, llm_hidden: int) -> dict[str, Any]:
    """The `mm_*` fields of the tiny DiffLMM's `config.json` (the real release's names and meanings)."""
    side = TINY_DIFFLMM_RESOLUTION // 16
    up = tuple(reversed(TINY_UNET_CHANNELS))
    return {
        "mm_vision_tower": "tiny-sd", "mm_projector_type": "SDCLIPBlock",
        "mm_hidden_size": [*up, clip_hidden], "mm_vision_select_layer": 1, "mm_vision_select_feature": "patch",
        "mm_vision_sd_timestep": 100, "mm_vision_sd_ensemble_size": 1, "mm_vision_sd_clip": "tiny-clip",
        "mm_vision_sd_clip_proj_in": clip_hidden, "mm_vision_sd_clip_proj_out": TINY_CROSS_DIM,
        "mm_vision_sd_concat_clip": True, "mm_vision_sd_implicit_caption": True, "mm_vision_sd_pe": side * side,
        "mm_vision_resolution": TINY_DIFFLMM_RESOLUTION, "image_aspect_ratio": "pad", "mm_patch_merge_type": "flat",
        "mm_use_im_start_end": False, "mm_use_im_patch_token": False, "tune_mm_mlp_adapter": False,
        "use_mm_proj": True, "model_type": "llava_llama", "architectures": ["LlavaLlamaForCausalLM"],
        "hidden_size": llm_hidden,
    }


def scene_indices(count: int, start: int = TRAIN_SCENE_START) -> Sequence[int]:
    """Training scene indices; must not meet the bundled sample's 0 … 23."""
    if start < 1000:
        raise ValueError("training scenes must start at 1000 or later (the bundled sample uses scenes 0 … 23)")
    return range(start, start + count)
