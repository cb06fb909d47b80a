"""`glamm` options, generation protocols, and the RES conversation of GLaMM's official evaluation.

Protocols (`protocol=` in --model-args; default per kind = GLaMM's evaluation scripts):
- grounded_caption `glamm`: `eval/gcg/infer.py` (the task's instruction, greedy decoding).
- segment `glamm-multiturn` (default): `eval/referring_seg/infer_and_evaluate.py` reads
  `dataset/segm_datasets/RefCOCO_Segm_ds.py::ReferSegmDataset(validation=True, inference=True)`: per image
  ≤ 3 of its sentences (`np.random.choice(n, 3, replace=False)`, lines 148-157), each asked with a random
  question template `SEG_QUESTIONS` (class_name = the sentence, lower case) and answered with a random
  `ANSWER_LIST` answer (`create_conversations`, lines 106-125), all in ONE llava_v1 conversation teacher-forced
  in one forward (`model/GLaMM.py::_inference_path`, no KV cache, `config.use_cache = False` at GLaMM.py:88);
  the i-th [SEG] gives the i-th sentence's mask. Upstream draws unseeded; here the draws come from the run
  `--seed` (`gcgbench.data.refer.glamm_conversations`); the image's remaining sentences are asked the same
  way, three per conversation, and `--protocol glamm` scores only upstream's first draw.
- segment `per-sentence` (ours): one single-turn conversation per sentence, the task's prompt as question and
  `res_answer` as the teacher-forced answer.
- caption `glamm`: `eval/region_captioning/infer.py`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from gcgbench.api.options import REQUIRED, BackendOptions, option
from gcgbench.api.protocols import GenerationProtocol, ProtocolTable

# dataset/utils/utils.py
SEG_QUESTIONS = (
    "Can you segment the {class_name} in this image?",
    "Please segment {class_name} in this image.",
    "What is {class_name} in this image? Please respond with segmentation mask.",
    "What is {class_name} in this image? Please output segmentation mask.",
    "Can you segment the {class_name} in this image",
    "Please segment {class_name} in this image",
    "What is {class_name} in this image? Please respond with segmentation mask",
    "What is {class_name} in this image? Please output segmentation mask",
    "Could you provide a segmentation mask for the {class_name} in this image?",
    "Please identify and segment the {class_name} in this image.",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask.",
    "Can you highlight the {class_name} in this image with a segmentation mask?",
    "Could you provide a segmentation mask for the {class_name} in this image",
    "Please identify and segment the {class_name} in this image",
    "Where is the {class_name} in this picture? Please respond with a segmentation mask",
    "Can you highlight the {class_name} in this image with a segmentation mask",
)
ANSWER_LIST = ("It is [SEG].", "Sure, [SEG].", "Sure, it is [SEG].", "Sure, the segmentation result is [SEG].", "[SEG].")

PROTOCOLS = ProtocolTable(
    (
        GenerationProtocol("glamm", ("grounded_caption",), "mbzuai-oryx/groundingLMM:eval/gcg/infer.py",
                           "the instruction after GLaMM's begin string, greedy"),
        GenerationProtocol("glamm-multiturn", ("segment",),
                           "mbzuai-oryx/groundingLMM:eval/referring_seg/infer_and_evaluate.py + "
                           "dataset/segm_datasets/RefCOCO_Segm_ds.py:106-125,148-157",
                           "<= 3 sentences per image in one conversation, random templates and answers (--seed)"),
        GenerationProtocol("per-sentence", ("segment",), "gcgbench",
                           "one single-turn conversation per sentence: task prompt + res_answer"),
        GenerationProtocol("glamm", ("caption",), "mbzuai-oryx/groundingLMM:eval/region_captioning/infer.py",
                           "region captioning, greedy"),
    ),
    {"grounded_caption": "glamm", "segment": "glamm-multiturn", "caption": "glamm"},
)


@dataclass(frozen=True)
class GlammOptions(BackendOptions):
    model_path: Path = option("GLaMM checkpoint folder (MBZUAI/GLaMM-GCG, -RefSeg, -FullScope, … HF layout)",
                              REQUIRED, path=True)
    clip_path: Path = option("openai/clip-vit-large-patch14-336 folder: GLaMM's global image encoder", REQUIRED,
                             path=True)
    max_new_tokens: int = option("generation length limit (eval/gcg/infer.py)", 512, minimum=1)
    dtype: str = option("auto (bfloat16 on GPU as upstream, float32 on CPU), bfloat16, float16 or float32", "auto",
                        choices=("auto", "float16", "bfloat16", "float32"))
    kv_cache: bool = option("KV-cached greedy decoding (false: upstream's full recompute per step)", True)
    attn: str = option("eager (transformers 4.28's attention arithmetic) or sdpa", "eager", choices=("eager", "sdpa"))
    res_answer: str = option("teacher-forced RES answer of protocol per-sentence (holds [SEG])", "It is [SEG].")
    protocol: str = option("generation protocol (see `gcgbench models`); default per request kind", "")

    def __post_init__(self) -> None:
        if "[SEG]" not in self.res_answer:
            raise ValueError("res_answer must contain [SEG]")


def conversation_turns(expressions: list[str], image_seed: int) -> list[tuple[str, str]]:
    """(question, answer) per expression as `create_conversations` draws them: for each label in turn a
    template (`random.choice(SEG_QUESTIONS)`, class_name = label.lower()) then an answer
    (`random.choice(ANSWER_LIST)`), from one `random.Random(image_seed)`."""
    rng = random.Random(image_seed)
    turns = []
    for label in expressions:
        question = rng.choice(SEG_QUESTIONS).format(class_name=label.strip().lower())
        turns.append((question, rng.choice(ANSWER_LIST)))
    return turns
