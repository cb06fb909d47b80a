"""`llava-as`: LLaVA-1.5 + attend-and-segment grounding (Cao et al., `Shengcao-Cao/groundLMM`).

Checkpoints: the llava-hf layout (`llava-hf/llava-1.5-7b-hf`, `models/llava/loading.py`) or the LLaVA-repo
layouts a&s itself runs (`liuhaotian/llava-v1.5-7b`, `liuhaotian/llava-v1.5-7b-lora` + `model_base`, with
`clip_path`: `models/llava/repo.py`). Options and generation protocols (`aas`, the default, and
`task-prompt`): `options.py`. Prompt ids, pixels and teacher-forced pieces: `batch.py`.

Per request kind (what upstream script each follows):
- grounded_caption (GCG, `aas/infer_attn.py` + `aas/gcg.py`): greedy generation with the protocol's question
  (`aas`: "Describe the image in detail.") in the llava_v1 conversation, the image padded to a square; per generated token the attention
  row predicting it, averaged over layers and heads, minus the mean over the answer; per spaCy noun chunk the
  max over its root word's tokens; argmax → one positive point → SAM, last multimask output.
- segment, `inputs["expression"]` (RES, `aas/infer_attn_res.py` + `aas/res.py` b77f8895): greedy generation
  for `Describe the "<expression>".`; the point is the peak of the map of the token after the first
  "is"/"are"/"be" (`res_rule=copula`; `first8` = 651d68d0's max over the first 8 maps); the mask is the best
  proposal containing the point (`proposals=`), or SAM's mask for the point without proposals.
- segment_phrases, `inputs["phrases"]` (PNG, `aas/infer_attn_png.py` + `aas/png.py`): the narrative is teacher-forced
  after the prompt in one forward pass, each utterance tokenized on its own (`models/llava/narrative.py`); maps of the narrative tokens (their own rows), minus their mean; per
  requested phrase the max over its tokens; point → proposal or SAM; one phrase per requested phrase, in order.
- caption, answer: plain greedy generation (no capture).
Greedy decoding is deterministic; each batch still seeds torch with `sample_seed` of its first doc.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.lazy import lazy_module
from gcgbench.api.backend import GenerationSettings, sample_seed
from gcgbench.api import hashing
from gcgbench.api.protocols import ProtocolTable
from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase
from gcgbench.api.types import RLE, Doc, Phrase, Prediction, Request
from gcgbench.grounding import attend_segment as aas
from gcgbench.grounding import phrases as nps
from gcgbench.grounding.sam_refine import Proposals, SamRefiner, build_sam
from gcgbench.grounding import attention_capture as ac
from gcgbench.models import embedded
from gcgbench.models.llava import loading as ll
from gcgbench.models.llava.checkpoint import read_json, weight_files
from gcgbench.models.llava.narrative import narrative_pieces
from gcgbench.models.llava.repo import is_repo_layout, load_llava_repo
from gcgbench.models.llava.spliced import IMAGE_TOKEN_INDEX, SplicedLM
from gcgbench.models.llava.tokenizer import SlowLlamaTokenizer
from gcgbench.models.llava_as.batch import Batch, HfChunkEncoder, Prompting, build_batch, eos_ids, pad_id, until_eos
from gcgbench.models.llava_as.options import PROTOCOLS, LlavaAsOptions

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it

COPULAS = ("is", "are", "be")
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "generation_config.json")
CLIP_FILES = ("config.json", "preprocessor_config.json")
IMPLEMENTATION = "2"   # 2: named protocols, chunk-by-chunk prompt ids, PIL image processor, PNG per utterance


@dataclass
class LlavaAttendSegmentBackend:
    options: LlavaAsOptions
    name: str = "llava-as"
    supported_kinds: frozenset[str] = frozenset({"grounded_caption", "segment", "segment_phrases", "caption", "answer"})
    _model: Any = None
    _tokenizer: Any = None
    _prompting: Prompting | None = None
    _image_encoder: Any = None
    _device: str | None = None
    _sam: SamRefiner | None = None
    _proposals: Proposals | None = None
    _image_ids: dict[str, str] = field(default_factory=dict)

    Options = LlavaAsOptions
    PROTOCOLS: ProtocolTable = PROTOCOLS
    ARGS = {info.name: info.help for info in LlavaAsOptions.describe()}

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "LlavaAttendSegmentBackend":
        args = embedded.with_tiny_defaults(dict(args))  # no model_path: the shipped tiny checkpoints (models/embedded.py)
        options = LlavaAsOptions.parse(args, "llava-as")
        cls.check_paths(options)
        return cls(options)

    @staticmethod
    def check_paths(options: LlavaAsOptions) -> None:
        """The files the options name exist (before any model loads)."""
        if options.model_path is None:
            raise InputError("--model-args", None, "llava-as needs model_path=FOLDER")
        if not (options.model_path / "config.json").is_file():
            raise InputError("model_path", str(options.model_path), "not a model folder (no config.json)")
        for label in ("model_base", "clip_path"):
            folder = getattr(options, label)
            if folder is not None and not folder.is_dir():
                raise InputError(label, str(folder), "no such folder")
        if options.sam_checkpoint is not None and not options.sam_checkpoint.is_file():
            raise InputError("sam_checkpoint", str(options.sam_checkpoint), "no such file")

    @property
    def model_path(self) -> Path:
        return self.options.model_path

    @property
    def sam_checkpoint(self) -> Path | None:
        return self.options.sam_checkpoint

    @property
    def proposals_path(self) -> Path | None:
        return self.options.proposals

    def protocol_for(self, kind: str) -> str:
        return PROTOCOLS.resolve(kind, self.options.protocol or None)

    @property
    def skip_roots(self) -> frozenset[str]:
        return frozenset(w.strip().lower() for w in self.options.skip_roots.split("|") if w.strip())

    @property
    def aas_options(self) -> aas.AasOptions:
        return aas.AasOptions(self.options.query, self.options.normalize, self.options.aggregation)

    # ------------------------------------------------------------------------------------------ protocol

    def prepare(self, task: Any, docs: Sequence[Doc]) -> None:
        self._image_ids.update({doc.doc_id: str(doc.truth.get("image_id", doc.doc_id)) for doc in docs})
        if self.proposals_path is not None and self._proposals is None:
            self._proposals = Proposals.from_file(self.proposals_path)

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        self._load(settings.device)
        answers: dict[int, Prediction] = {}
        groups: dict[tuple[str, bool], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault((request.kind, request.image_path is not None), []).append(index)
        for (kind, _), indices in groups.items():
            batch = [requests[i] for i in indices]
            torch.manual_seed(sample_seed(settings.seed, batch[0].doc_id))
            handlers = {"grounded_caption": self._gcg, "segment": self._res, "segment_phrases": self._png}
            handler = handlers.get(kind, self._plain)
            for i, prediction in zip(indices, handler(batch)):
                answers[i] = prediction
        return [answers[i] for i in range(len(requests))]

    def fingerprint(self) -> Mapping[str, Any]:
        return hashing.backend_fingerprint(
            self.name, self.options, self.checkpoint_files(), PROTOCOLS,
            spacy_model=nps.spacy_pipeline_id(self.options.spacy_model),
            conversation="llava_v1", image_aspect="pad", implementation=IMPLEMENTATION)

    def checkpoint_files(self) -> dict[str, Any]:
        """{role: folder, file or (root, files)} of every file the backend reads (hashed, never by path)."""
        base, clip = self.options.model_base, self.options.clip_path
        return {
            "model": self.model_path,
            "model_base": (base, weight_files(base) + [base / n for n in TOKENIZER_FILES]) if base else None,
            "clip": (clip, weight_files(clip) + [clip / n for n in CLIP_FILES]) if clip else None,
            "sam_checkpoint": self.sam_checkpoint,
            "proposals": self.proposals_path if self.proposals_path and self.proposals_path.is_file() else None,
        }

    # ------------------------------------------------------------------------------------------ loading

    def _load(self, device: str) -> None:
        if self._model is not None and device == self._device:
            return
        dtype = ll.resolve_dtype(self.options.dtype, device)
        with phase(f"loading {self.name}"):
            if is_repo_layout(read_json(self.model_path / "config.json")):
                repo = load_llava_repo(self.model_path, self.options.model_base, self.options.clip_path, dtype, device)
                self._model, self._tokenizer, self._image_encoder = SplicedLM(repo.llm), repo.tokenizer, repo.image_tokens
                encoder: Any = SlowLlamaTokenizer.from_folder(repo.tokenizer_folder)
                processor = ll.pil_image_processor(self.options.clip_path, "clip_path")
                image_id, n_image = IMAGE_TOKEN_INDEX, repo.n_image_tokens
            else:
                self._model, hf_processor = ll.load_llava(self.model_path, dtype, device)
                self._tokenizer, self._image_encoder = hf_processor.tokenizer, None
                encoder = (SlowLlamaTokenizer.from_folder(self.model_path) if (self.model_path / "tokenizer.model").is_file()
                           else HfChunkEncoder(self._tokenizer))
                processor = ll.pil_image_processor(self.model_path)
                image_id, n_image = self._model.config.image_token_id, ll.hf_image_tokens(self._model.config)
            self._prompting = Prompting(encoder, image_id, n_image, ll.pixel_function(processor), ll.mean_colour(processor))
        self._device = device
        self._sam = None

    def _refiner(self) -> SamRefiner:
        if self._sam is None:
            if self.sam_checkpoint is None:
                raise InputError("--model-args", "sam_checkpoint",
                                 "llava-as needs sam_checkpoint=PATH (e.g. sam_vit_h_4b8939.pth) to turn points into masks")
            with phase("loading SAM"):
                self._sam = SamRefiner(build_sam(self.options.sam_type, self.sam_checkpoint), self._device or "cpu")
        return self._sam

    # ------------------------------------------------------------------------------------------ inputs

    def _batch(self, requests: Sequence[Request], questions: Sequence[str],
               answers: Sequence[Sequence[str]] | None = None) -> Batch:
        """The model inputs of `questions` (and each request's teacher-forced answer pieces); pixels become image
        tokens for a LLaVA-repo checkpoint (difflmm overrides this hook with its own vision tower)."""
        batch = build_batch(self._prompting, pad_id(self._tokenizer, self._model), self._model.dtype, self._device,
                            requests, questions, answers)
        if self._image_encoder is not None and batch.pixel_values is not None:
            with torch.inference_mode():
                batch.pixel_values = self._image_encoder(batch.pixel_values)
        return batch

    def _image_columns(self, input_ids: torch.Tensor) -> torch.Tensor:
        image_id = self._model.config.image_token_id
        columns = [(row == image_id).nonzero().squeeze(-1) for row in input_ids]
        if len({len(c) for c in columns}) != 1 or len(columns[0]) == 0:
            raise InputError("model_path", str(self.model_path), "every prompt must hold the same number of image tokens")
        return torch.stack(columns)

    # ------------------------------------------------------------------------------------------ model runs

    def _generate(self, batch: Batch, capture_rows: bool) -> tuple[list[list[int]], torch.Tensor | None]:
        """Greedy generation; per sample the new tokens up to and including EOS, and (if asked) the maps
        (B, T_max, n_img) of the query position the options select."""
        kwargs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      max_new_tokens=self.options.max_new_tokens, do_sample=False, num_beams=1,
                      return_dict_in_generate=True, pad_token_id=pad_id(self._tokenizer, self._model))
        if batch.pixel_values is not None:
            kwargs["pixel_values"] = batch.pixel_values
        query = self.aas_options.query_for(teacher_forced=False)
        capture = ac.AttentionCapture(self._image_columns(batch.input_ids)) if capture_rows and query == "predicting" else None
        with torch.inference_mode():
            if capture is not None:
                with ac.capturing(capture):
                    output = self._model.generate(**kwargs)
            else:
                output = self._model.generate(**kwargs)
        new = output.sequences[:, batch.input_ids.shape[1]:].cpu()
        tokens = [until_eos(row.tolist(), eos_ids(self._tokenizer, self._model)) for row in new]
        if not capture_rows:
            return tokens, None
        if capture is not None:
            maps = capture.maps()[:, :, 0].transpose(0, 1)                     # (B, steps, n)
            if maps.shape[1] != new.shape[1]:
                raise RuntimeError(f"captured {maps.shape[1]} attention steps for {new.shape[1]} new tokens")
            return tokens, maps
        start = batch.input_ids.shape[1]
        full = output.sequences
        mask = torch.cat([batch.attention_mask, torch.ones_like(full[:, start:])], dim=1)
        rows = torch.arange(start, full.shape[1], device=full.device)[None].expand(full.shape[0], -1)
        return tokens, self._forward_rows(full, mask, batch.pixel_values, rows)

    def _forward_rows(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor | None,
                      rows: torch.Tensor) -> torch.Tensor:
        """One teacher-forced forward; (B, R, n_img) maps of the query positions `rows` (B, R)."""
        capture = ac.AttentionCapture(self._image_columns(input_ids), rows)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False,
                      logits_to_keep=1)
        if pixel_values is not None:
            kwargs["pixel_values"] = pixel_values
        with torch.inference_mode(), ac.capturing(capture):
            self._model(**kwargs)
        return capture.maps()[0]

    def _grid(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.reshape(maps.shape[0], *aas.grid_shape(maps.shape[-1]))

    def _masks(self, request: Request, image: Any, points: Sequence[tuple[int, int]],
               use_proposals: bool) -> list[tuple[RLE, ...]]:
        if use_proposals and self._proposals is not None:
            image_id = self._image_ids.get(request.doc_id, request.doc_id)
            picked = [self._proposals.pick(image_id, x, y, request.height, request.width) for x, y in points]
            return [(rle,) if rle is not None else () for rle in picked]
        masks = self._refiner().masks(np.asarray(image), list(points))
        return [(RLE.from_mask(mask),) for mask in masks]

    def _extras(self, kind: str, points: Sequence[tuple[int, int] | None], **more: Any) -> dict[str, Any]:
        query = self.aas_options.query_for(teacher_forced=kind == "png")
        return {"aas": {"query": query, "normalize": self.options.normalize, "aggregation": self.options.aggregation},
                "points": [list(p) if p is not None else None for p in points], **more}

    # ------------------------------------------------------------------------------------------ kinds

    def _question(self, request: Request) -> str:
        return self.options.question_for(self.protocol_for(request.kind), request.prompt)

    def _gcg(self, requests: Sequence[Request]) -> list[Prediction]:
        nlp = nps.load_spacy(self.options.spacy_model)
        batch = self._batch(requests, [self._question(r) for r in requests])
        tokens, maps = self._generate(batch, capture_rows=True)
        out = []
        for index, request in enumerate(requests):
            ids = tokens[index]
            text, spans = nps.strip_text(*nps.decoded_token_spans(self._tokenizer, ids))
            found = nps.noun_phrases(nlp, text, spans, self.skip_roots)
            grid = aas.normalize_maps(self._grid(maps[index, :len(ids)]), self.options.normalize)
            points = aas.peak_points(aas.phrase_maps(grid, [p.tokens for p in found], self.options.aggregation),
                                     request.height, request.width)
            masks = self._masks(request, batch.images[index], points, use_proposals=False)
            phrases = tuple(Phrase(p.text, m, p.start, p.end) for p, m in zip(found, masks))
            out.append(Prediction(request.doc_id, text, phrases,
                                  extras=self._extras("gcg", points, roots=[p.root for p in found])))
        return out

    def _res(self, requests: Sequence[Request]) -> list[Prediction]:
        questions = [self.options.res_question(self.protocol_for(r.kind), r.inputs["expression"], r.prompt)
                     for r in requests]
        batch = self._batch(requests, questions)
        tokens, maps = self._generate(batch, capture_rows=True)
        out = []
        for index, request in enumerate(requests):
            ids = tokens[index]
            grid = aas.normalize_maps(self._grid(maps[index, :len(ids)]), self.options.normalize)
            point, chosen = None, None
            if self.options.res_rule == "first8":
                point = aas.peak_point_of_max(grid[:8], request.height, request.width)
            else:
                words = [self._tokenizer.decode([t]).lower().strip() for t in ids]
                chosen = next((i for i in range(1, len(words)) if words[i - 1] in COPULAS), None)
                if chosen is not None:
                    point = aas.peak_points(grid[chosen:chosen + 1], request.height, request.width)[0]
            masks = self._masks(request, batch.images[index], [point], use_proposals=True)[0] if point is not None else ()
            text = self._tokenizer.decode(ids, skip_special_tokens=True).strip()
            out.append(Prediction(request.doc_id, text, (Phrase(request.inputs["expression"], masks),),
                                  extras=self._extras("res", [point], res_rule=self.options.res_rule, res_token=chosen)))
        return out

    def _png(self, requests: Sequence[Request]) -> list[Prediction]:
        narratives = [narrative_pieces(r.inputs) for r in requests]
        batch = self._batch(requests, [self._question(r) for r in requests], answers=[n[0] for n in narratives])
        query = self.aas_options.query_for(teacher_forced=True)
        lengths = [ranges[-1][1] if ranges else 0 for ranges in batch.answer_ranges]
        total = batch.input_ids.shape[1]
        shift = 0 if query == "own" else -1
        rows = torch.zeros((len(requests), max(lengths + [1])), dtype=torch.long)
        for index, n in enumerate(lengths):
            rows[index, :n] = torch.arange(total - n, total) + shift
            rows[index, n:] = total - 1
        maps = self._forward_rows(batch.input_ids, batch.attention_mask, batch.pixel_values, rows.to(self._device))
        out = []
        for index, request in enumerate(requests):
            grid = aas.normalize_maps(self._grid(maps[index, :lengths[index]]), self.options.normalize)
            wanted = request.inputs["phrases"]
            ranges = batch.answer_ranges[index]
            groups = [list(range(*ranges[owner])) if owner is not None else [] for owner in narratives[index][1]]
            covered = [i for i, g in enumerate(groups) if g]
            found = aas.peak_points(aas.phrase_maps(grid, [groups[i] for i in covered], self.options.aggregation),
                                    request.height, request.width)
            points: list[tuple[int, int] | None] = [None] * len(wanted)
            for i, point in zip(covered, found):
                points[i] = point
            masks = self._masks(request, batch.images[index], found, use_proposals=True)
            by_phrase = dict(zip(covered, masks))
            phrases = tuple(Phrase(p["text"], by_phrase.get(i, ()), p.get("start"), p.get("end"))
                            for i, p in enumerate(wanted))
            out.append(Prediction(request.doc_id, request.inputs["caption"], phrases, extras=self._extras("png", points)))
        return out

    def _plain(self, requests: Sequence[Request]) -> list[Prediction]:
        questions = []
        for request in requests:
            question = request.prompt
            region = request.inputs.get("region")
            if region is not None and "<bbox>" in question:
                question = question.replace("<bbox>", ll.region_text(region, request.height, request.width))
            questions.append(question)
        batch = self._batch(requests, questions)
        tokens, _ = self._generate(batch, capture_rows=False)
        return [Prediction(r.doc_id, self._tokenizer.decode(ids, skip_special_tokens=True).strip())
                for r, ids in zip(requests, tokens)]

