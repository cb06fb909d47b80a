"""The `aas` backend's `--model-args`: defaults, help, the generation protocols, and the checks that run before
any weight loads (`parse_args`).

Defaults follow upstream a&s on other VLM families (`Shengcao-Cao/groundLMM:aas/more_models/*.py`): the question
"Describe the image in detail.", RES `Describe the "<expression>" in the image.` (`--template`), the copula RES
rule, SAM ViT-H. Options are kept as the strings given (`AasArguments.options`), as the fingerprint records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from gcgbench.api.errors import InputError
from gcgbench.api.protocols import GenerationProtocol, ProtocolTable
from gcgbench.grounding import attend_segment as aas
from gcgbench.grounding import phrases as nps, token_layout as tl
from gcgbench.grounding.sam_refine import SAM_TYPES
from gcgbench.models.aas import family as fam
from gcgbench.models.llava import loading as ll
from gcgbench.models.llava_as.options import RES_RULES

AAS_QUESTION = "Describe the image in detail."                   # aas/more_models/*.py --question default
RES_TEMPLATE = 'Describe the "{expression}" in the image.'      # aas/more_models/*_res.py --template default
DEFAULTS = {"sam_type": "vit_h", "spacy_model": nps.DEFAULT_SPACY_MODEL, "max_new_tokens": "512", "dtype": "auto",
            "query": "auto", "normalize": "mean", "aggregation": "max", "res_template": RES_TEMPLATE,
            "res_rule": "copula", "question": AAS_QUESTION, "skip_roots": "", "view": "fine",
            "min_pixels": "", "max_pixels": "", "min_tiles": "", "max_tiles": "", "heatmaps": "on", "protocol": ""}
FAMILY_OPTIONS = ("min_pixels", "max_pixels", "min_tiles", "max_tiles")
KINDS = ("grounded_caption", "segment", "segment_phrases", "segment_categories")
PROTOCOLS = ProtocolTable(
    (GenerationProtocol("aas", KINDS, {
        "grounded_caption": "Shengcao-Cao/groundLMM:aas/more_models/<family>.py",
        "segment": "Shengcao-Cao/groundLMM:aas/more_models/<family>_res.py",
        "segment_phrases": "Shengcao-Cao/groundLMM:aas/more_models/<family>_png.py",
        "segment_categories": "Shengcao-Cao/groundLMM:aas/infer_attn.py + aas/instance_seg.py"},
        'a&s: "Describe the image in detail." (question=), \'Describe the "{expression}" in the image.\' (res_template=)'),
     GenerationProtocol("task-prompt", KINDS, "gcgbench", "the task's own prompt in the family's chat template")),
    {kind: "aas" for kind in KINDS})

OPTION_HELP = {
    "model_path": "HF checkpoint folder; family from config.json model_type: "
                  + "; ".join(f"{k} = {v}" for k, (_, v) in fam.FAMILY_MODULES.items()),
    "sam_checkpoint": "SAM weights, e.g. sam_vit_h_4b8939.pth (GCG; RES/PNG without proposals)",
    "sam_type": f"segment-anything model type of the checkpoint: {', '.join(SAM_TYPES)} (default vit_h)",
    "spacy_model": "spaCy pipeline (package name or folder) for noun chunks; default en_core_web_lg",
    "proposals": "COCO results JSON [{image_id, segmentation RLE, score}] of mask proposals for RES/PNG",
    "max_new_tokens": "generation length limit (default 512)",
    "dtype": "auto (bfloat16 on GPU, float32 on CPU), float16, bfloat16 or float32",
    "query": "attention row of a token: auto (predicting for generated, own for teacher-forced), predicting, own",
    "normalize": "mean (subtract the mean map over the answer, a&s) or none",
    "aggregation": "maps of a phrase's tokens: max (default), mean, first",
    "res_template": 'RES question with {expression} (default: Describe the "{expression}" in the image.); "task" = task prompt',
    "res_rule": "RES point: copula (token after the first is/are/be) or first8 (max over the first 8 maps)",
    "question": 'GCG/PNG question (default "Describe the image in detail."); "task" = the task\'s prompt',
    "skip_roots": "GCG: root words whose noun chunks get no mask, '|'-separated (default none, as a&s)",
    "view": "image tokens read: fine (tiles; default, upstream), global (base/thumbnail/global image), mean (both)",
    "min_pixels": "Qwen2-VL/2.5-VL: smallest resized image area (default: the checkpoint's)",
    "max_pixels": "Qwen2-VL/2.5-VL: largest resized image area (default 1016064 = 1008², upstream a&s)",
    "min_tiles": "InternVL: fewest 448-px tiles (default 3, upstream a&s)",
    "max_tiles": "InternVL: most 448-px tiles (default 9, upstream a&s)",
    "heatmaps": "on (default): each phrase's map over the image, ≤32 px, in extras.heatmaps (the HTML report draws them); off",
    "protocol": "generation protocol: aas (default, a&s's questions) or task-prompt (the task's prompt)",
}


@dataclass(frozen=True)
class AasArguments:
    """`--model-args` of `aas`, checked: the checkpoint folder, its family's `model_type`, the optional SAM weights
    and proposals file, and every option in `DEFAULTS` as a string."""

    model_path: Path
    model_type: str
    sam_checkpoint: Path | None
    proposals_path: Path | None
    options: dict[str, str]


def parse_args(args: Mapping[str, str]) -> AasArguments:
    """Every check of `--model-args` that needs no weights: one `InputError` naming the first bad argument."""
    if "model_path" not in args:
        raise InputError("--model-args", None, "aas needs model_path=FOLDER (a transformers VLM checkpoint)")
    options = {**DEFAULTS, **{k: v for k, v in args.items() if k in DEFAULTS}}
    if options["protocol"] and options["protocol"] not in {p.name for p in PROTOCOLS.protocols}:
        raise InputError("--model-args", "protocol", f"unknown generation protocol {options['protocol']!r}; "
                                                     f"aas has {', '.join(p.name for p in PROTOCOLS.protocols)}")
    try:
        aas.AasOptions(options["query"], options["normalize"], options["aggregation"])
    except ValueError as error:
        raise InputError("--model-args", None, str(error)) from None
    if options["sam_type"] not in SAM_TYPES:
        raise InputError("--model-args", "sam_type", f"must be one of {', '.join(SAM_TYPES)}")
    if options["res_rule"] not in RES_RULES:
        raise InputError("--model-args", "res_rule", f"must be one of {', '.join(RES_RULES)}")
    if options["heatmaps"] not in ("on", "off"):
        raise InputError("--model-args", "heatmaps", "must be on or off")
    if options["view"] not in tl.VIEWS:
        raise InputError("--model-args", "view", f"must be one of {', '.join(tl.VIEWS)}")
    if not options["max_new_tokens"].isdigit() or int(options["max_new_tokens"]) < 1:
        raise InputError("--model-args", "max_new_tokens", "must be a positive integer")
    for key in FAMILY_OPTIONS:
        fam.positive_int(options, key)
    ll.resolve_dtype(options["dtype"], "cpu")
    model_path = Path(args["model_path"]).expanduser()
    if not (model_path / "config.json").is_file():
        raise InputError("model_path", str(model_path), "not a model folder (no config.json)")
    model_type = fam.read_model_type(model_path)
    accepted = fam.family_class(model_type).options
    for key in FAMILY_OPTIONS:
        if options[key] and key not in accepted:
            raise InputError("--model-args", key, f"does not apply to {model_type} (its options: "
                                                  f"{', '.join(accepted) or 'none'})")
    sam = Path(args["sam_checkpoint"]).expanduser() if args.get("sam_checkpoint") else None
    if sam is not None and not sam.is_file():
        raise InputError("sam_checkpoint", str(sam), "no such file")
    proposals = Path(args["proposals"]).expanduser() if args.get("proposals") else None
    return AasArguments(model_path, model_type, sam, proposals, options)
