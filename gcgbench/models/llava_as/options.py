"""`llava-as` (and `difflmm`) options and generation protocols.

Protocols (`protocol=` in --model-args; default per request kind = the official a&s script):
- `aas` (grounded_caption, segment, segment_phrases): Shengcao-Cao/groundLMM's own runs. GCG
  `aas/infer_attn.py` (argparse default `--question "Describe the image in detail."`, kept by `aas/gcg.sh`);
  RES `aas/infer_attn_res.py` with `aas/infer_attn_res.sh`'s template `Describe the "{}".` over the eight
  splits; PNG `aas/infer_attn_png.py` with `aas/infer_attn_png.sh`'s `--question "Describe the image in
  detail."`, each utterance tokenized on its own. Prompt ids: `tokenizer_image_token` over the slow
  tokenizer (`llava/model/builder.py`, `use_fast=False`).
- `task-prompt` (every kind): ours — the task's prompt (GLaMM's GCG instruction, the RES/PNG task prompt,
  the caption/VQA prompt) in the same llava_v1 conversation; what llava-as asked before the protocols were
  named. The only protocol for caption and answer requests.
`question=` replaces the GCG/PNG question of either protocol (the embedded tiny model sets the question it
was trained with); `res_template=` the RES template of `aas`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gcgbench.api.options import BackendOptions, option
from gcgbench.api.protocols import GenerationProtocol, ProtocolTable
from gcgbench.grounding.phrases import DEFAULT_SPACY_MODEL
from gcgbench.grounding.sam_refine import SAM_TYPES

AAS_QUESTION = "Describe the image in detail."    # aas/infer_attn.py, aas/infer_attn_png.py (+ .sh)
RES_TEMPLATE = 'Describe the "{expression}".'     # aas/infer_attn_res.sh, the runs over all eight RES splits
RES_RULES = ("copula", "first8")
DTYPE_CHOICES = ("auto", "float16", "bfloat16", "float32")

PROTOCOLS = ProtocolTable(
    (
        GenerationProtocol("aas", ("grounded_caption", "segment", "segment_phrases"),
                           {"grounded_caption": "Shengcao-Cao/groundLMM:aas/infer_attn.py + aas/gcg.sh",
                            "segment": "Shengcao-Cao/groundLMM:aas/infer_attn_res.py + aas/infer_attn_res.sh",
                            "segment_phrases": "Shengcao-Cao/groundLMM:aas/infer_attn_png.py + aas/infer_attn_png.sh"},
                           'a&s: "Describe the image in detail." (GCG, PNG), \'Describe the "{expression}".\' (RES); '
                           "prompt ids chunk by chunk (tokenizer_image_token), PNG utterance by utterance"),
        GenerationProtocol("task-prompt", ("grounded_caption", "segment", "segment_phrases", "caption", "answer"),
                           "gcgbench", "the task's own prompt in the llava_v1 conversation"),
    ),
    {"grounded_caption": "aas", "segment": "aas", "segment_phrases": "aas", "caption": "task-prompt",
     "answer": "task-prompt"},
)


@dataclass(frozen=True)
class LlavaAsOptions(BackendOptions):
    model_path: Path | None = option("LLaVA-1.5 folder: llava-hf/llava-1.5-7b-hf layout, or the LLaVA-repo "
                                     "liuhaotian/llava-v1.5-7b (full) or llava-v1.5-7b-lora (with model_base) layout "
                                     "(default: the shipped tiny model)", None, path=True)
    model_base: Path | None = option("base LLM folder for a LLaVA-repo LoRA folder (lmsys/vicuna-7b-v1.5)", None,
                                     path=True)
    clip_path: Path | None = option("CLIP folder (openai/clip-vit-large-patch14-336) for LLaVA-repo layouts: the "
                                    "vision tower and image processor LLaVA's builder loads", None, path=True)
    sam_checkpoint: Path | None = option("SAM weights, e.g. sam_vit_h_4b8939.pth (GCG; RES/PNG without proposals)",
                                         None, path=True)
    sam_type: str = option("segment-anything model type of the checkpoint", "vit_h", choices=SAM_TYPES)
    spacy_model: str = option("spaCy pipeline (package name or folder) for noun chunks", DEFAULT_SPACY_MODEL)
    proposals: Path | None = option("COCO results JSON [{image_id, segmentation RLE, score}] of mask proposals "
                                    "for RES/PNG", None, path=True)
    max_new_tokens: int = option("generation length limit (aas/gcg.sh)", 512, minimum=1)
    dtype: str = option("auto = float16 on GPU (upstream), float32 on CPU", "auto", choices=DTYPE_CHOICES)
    query: str = option("attention row of a token: auto (predicting for generated, own for teacher-forced)", "auto",
                        choices=("auto", "predicting", "own"))
    normalize: str = option("mean (subtract the mean map over the answer, a&s) or none", "mean",
                            choices=("mean", "none"))
    aggregation: str = option("maps of a phrase's tokens", "max", choices=("max", "mean", "first"))
    res_template: str = option('RES question of protocol aas, with {expression}; "task" = the task prompt',
                               RES_TEMPLATE)
    res_rule: str = option("RES point: copula (token after the first is/are/be, b77f8895) or first8 (651d68d0)",
                           "copula", choices=RES_RULES)
    question: str = option('GCG/PNG question instead of the protocol\'s ("task" = the task prompt)', "")
    skip_roots: str = option("GCG: root words whose noun chunks get no mask, '|'-separated (a&s: none)", "")
    protocol: str = option("generation protocol (see `gcgbench models`); default per request kind", "")

    def __post_init__(self) -> None:
        if self.res_template != "task" and "{expression}" not in self.res_template:
            raise ValueError("res_template must contain {expression} (or be task)")

    def question_for(self, protocol: str, task_prompt: str) -> str:
        """The GCG/PNG question under `protocol`: `question=` if given, else a&s's or the task's prompt."""
        if self.question == "task":
            return task_prompt
        if self.question:
            return self.question
        return AAS_QUESTION if protocol == "aas" else task_prompt

    def res_question(self, protocol: str, expression: str, task_prompt: str) -> str:
        if protocol != "aas" or self.res_template == "task":
            return task_prompt
        return self.res_template.format(expression=expression)
