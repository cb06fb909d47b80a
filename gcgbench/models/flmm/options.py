"""`flmm` options and generation protocols.

Protocols (`protocol=` in --model-args; the default per kind is F-LMM's official evaluation):
- segment `flmm-concat` (default): the README's RES command (`README.md:129-131`, `--concat`):
  `scripts/multiprocess_eval_refcoco.py:131-148` feeds ONE teacher-forced sequence per image,
  `flmm/datasets/transforms.py:109-123` (`RefCOCO2PNG.transform_concat`): prompt + for every object of the
  image (mmdet `RefCocoDataset(text_mode='select_first')`, objects in order of first appearance) its first
  sentence as `raw.lower()`, each followed by a "." token; object i's mask from its sentence's tokens.
  Sentences outside that selection (scored only by `--protocol lisa`) are answered as `flmm-single` does.
- segment `flmm-single` (ours): one sequence per expression (the task's `sent`), followed by "." — the
  script without `--concat` (`transform_split`), on every sentence.
- segment_phrases `flmm` (default): `flmm/datasets/png.py:123-141`, each utterance encoded on its own.
- grounded_caption `gcgbench` (ours): F-LMM has no GCG evaluation; modelled on its demo (backend docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gcgbench.api.options import REQUIRED, BackendOptions, option
from gcgbench.api.protocols import GenerationProtocol, ProtocolTable
from gcgbench.grounding.sam_refine import SAM_TYPES

DEFAULT_SPACY_MODEL = "en_core_web_sm"

PROTOCOLS = ProtocolTable(
    (
        GenerationProtocol("flmm-concat", ("segment",),
                           "wusize/F-LMM:scripts/multiprocess_eval_refcoco.py:131-148 --concat + "
                           "flmm/datasets/transforms.py:109-123",
                           "one sequence per image: every object's first sentence (raw.lower()) + '.'"),
        GenerationProtocol("flmm-single", ("segment",), "gcgbench",
                           "one sequence per expression (sent) + '.', every sentence"),
        GenerationProtocol("flmm", ("segment_phrases",), "wusize/F-LMM:flmm/datasets/png.py:123-141",
                           "the narrative teacher-forced utterance by utterance"),
        GenerationProtocol("gcgbench", ("grounded_caption",), "gcgbench",
                           "greedy caption, the demo's noun-chunk filter, teacher-forced grounding"),
    ),
    {"segment": "flmm-concat", "segment_phrases": "flmm", "grounded_caption": "gcgbench"},
)


@dataclass(frozen=True)
class FlmmOptions(BackendOptions):
    model_path: Path = option("local llava-hf/llava-1.5-7b-hf or llava-v1.6-{vicuna,mistral}-7b-hf folder",
                              REQUIRED, path=True)
    checkpoint: Path = option("F-LMM checkpoint, e.g. frozen_llava_1_5_vicuna_7b_unet_sam_l_refcoco_png.pth",
                              REQUIRED, path=True)
    sam_checkpoint: Path = option("segment-anything sam_vit_l_0b3195.pth", REQUIRED, path=True)
    sam_type: str = option("segment-anything model type of sam_checkpoint", "vit_l", choices=SAM_TYPES)
    lmm: str = option("auto (model_path's config.json model_type), llava (LLaVA-1.5) or llava_next", "auto",
                      choices=("auto", "llava", "llava_next"))
    prompt_template: str = option("auto (vicuna, or mistral for a Mistral LLaVA-NeXT), vicuna or mistral", "auto",
                                  choices=("auto", "vicuna", "mistral"))
    dtype: str = option("LLaVA dtype: auto (bfloat16 on CUDA as F-LMM, float32 on CPU)", "auto",
                        choices=("auto", "float16", "bfloat16", "float32"))
    spacy_model: str = option("GCG noun-chunk pipeline, package name or folder", DEFAULT_SPACY_MODEL)
    max_new_tokens: int = option("GCG caption length limit", 512, minimum=1)
    gcg_prompt: str = option("GCG caption prompt: flmm (F-LMM's description prompt) or task", "flmm",
                             choices=("flmm", "task"))
    merge: str = option("how a phrase's token maps are merged (F-LMM default: mean)", "mean", choices=("mean", "max"))
    protocol: str = option("generation protocol (see `gcgbench models`); default per request kind", "")
