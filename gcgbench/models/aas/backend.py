"""`aas`: attend-and-segment on any VLM family transformers ships (Cao et al., `Shengcao-Cao/groundLMM`).

`--model aas --model-args model_path=FOLDER` reads `FOLDER/config.json`'s `model_type` and picks the family
(`family.FAMILY_MODULES`: LLaVA-NeXT, LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL, InternVL (HF layout), Idefics3,
SmolVLM). What is shared by every family, following upstream `aas/more_models/{llava_next,qwen2_5vl,
internvl2_5}{,_res,_png}.py` + `aas/gcg.py`, `res.py`, `png.py`:

- the prompt: the family's own chat template with one image and the question (default the a&s question
  "Describe the image in detail."; RES: `Describe the "<expression>" in the image.`, the more_models
  `--template`), greedy decoding; one request per forward (image-token counts differ per image);
- per generated token the attention row predicting it (`query=auto`; teacher-forced PNG text: its own row),
  mean over all layers and heads of the text model (`AttentionCapture`, the same attention-function hook as
  llava-as), restricted to the image tokens;
- the a&s readout (`grounding/attend_segment.py`): minus the mean map over the answer, per phrase the max
  over its root-word tokens; then the family's `TokenLayout` places each token's value over the region of
  the original image it covers and the argmax is the point (`grounding/token_layout.py`, option `view`);
- point → SAM (GCG; last multimask output) or the best proposal containing the point (RES/PNG with
  `proposals=`, else SAM), exactly as llava-as;
- instances (`segment_categories`, `aas/instance_seg.py`): the GCG flow, then each noun chunk gets the image's
  ground-truth category whose name's spaCy vector is most cosine-similar to its root word's (articles
  stripped, `utils.get_spacy_embedding`), SAM's mask and predicted IoU as the score; empty masks are dropped.
Every option is validated before any weight loads and recorded in the fingerprint; predictions carry the
points, the family and the view in `extras`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api import hashing
from gcgbench.api.backend import GenerationSettings, sample_seed
from gcgbench.api.errors import InputError
from gcgbench.api.lazy import lazy_module
from gcgbench.api.types import RLE, Phrase, Prediction, Request
from gcgbench.grounding import attend_segment as aas, attention_capture as ac, heatmaps
from gcgbench.grounding import phrases as nps, token_layout as tl
from gcgbench.grounding.sam_refine import Proposals, SamRefiner, build_sam
from gcgbench.models.aas import family as fam
from gcgbench.models.aas.options import AAS_QUESTION, KINDS, OPTION_HELP, PROTOCOLS, parse_args
from gcgbench.models.llava import loading as ll
from gcgbench.models.llava.narrative import phrase_span as _span
from gcgbench.models.llava_as.backend import COPULAS
from gcgbench.models.llava_as.batch import eos_ids, read_image, until_eos

torch = lazy_module("torch")   # imported at first use: listing models or a fully cached run never pays for it


@dataclass
class AasBackend:
    model_path: Path
    model_type: str
    sam_checkpoint: Path | None = None
    proposals_path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)
    name: str = "aas"
    supported_kinds: frozenset[str] = frozenset(KINDS)
    _model: Any = None
    _family: Any = None
    _device: str | None = None
    _sam: SamRefiner | None = None
    _proposals: Proposals | None = None
    _image_ids: dict[str, str] = field(default_factory=dict)

    ARGS = OPTION_HELP
    PROTOCOLS = PROTOCOLS

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "AasBackend":
        parsed = parse_args(args)
        return cls(parsed.model_path, parsed.model_type, parsed.sam_checkpoint, parsed.proposals_path, parsed.options)

    @property
    def aas_options(self) -> aas.AasOptions:
        return aas.AasOptions(self.options["query"], self.options["normalize"], self.options["aggregation"])

    @property
    def skip_roots(self) -> frozenset[str]:
        return frozenset(w.strip().lower() for w in self.options["skip_roots"].split("|") if w.strip())

    # ------------------------------------------------------------------------------------------ protocol

    def prepare(self, task: Any, docs: Sequence[Any]) -> None:
        self._image_ids.update({doc.doc_id: str(doc.truth.get("image_id", doc.doc_id)) for doc in docs})
        if self.proposals_path is not None and self._proposals is None:
            self._proposals = Proposals.from_file(self.proposals_path)

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        self._load(settings.device)
        handlers = {"grounded_caption": self._gcg, "segment": self._res, "segment_phrases": self._png,
                    "segment_categories": self._instances}
        out = []
        for request in requests:
            torch.manual_seed(sample_seed(settings.seed, request.doc_id))
            out.append(handlers[request.kind](request))
        return out

    def fingerprint(self) -> Mapping[str, Any]:
        return {
            "name": self.name,
            "family": self.model_type,
            "args": {k: v for k, v in self.options.items() if k != "protocol"},
            "protocols": PROTOCOLS.resolved(self.options["protocol"] or None),
            "model_files_sha256": hashing.folder_sha256(self.model_path),
            "sam_checkpoint_sha256": hashing.cached_sha256(self.sam_checkpoint) if self.sam_checkpoint else None,
            "proposals_sha256": hashing.cached_sha256(self.proposals_path) if self.proposals_path and self.proposals_path.is_file() else None,
            "spacy_model": nps.spacy_pipeline_id(self.options["spacy_model"]),
            "image_processor_backend": "pil",
            "chat_template": "checkpoint",
        }

    # ------------------------------------------------------------------------------------------ loading

    def _load(self, device: str) -> None:
        if self._model is not None and device == self._device:
            return
        from transformers import AutoModelForImageTextToText

        dtype = ll.resolve_dtype(self.options["dtype"], device, cuda_default="bfloat16")
        files = fam.read_checkpoint(self.model_path)
        ac.register_capture_attention()
        try:
            model, info = AutoModelForImageTextToText.from_pretrained(
                self.model_path, dtype=dtype, output_loading_info=True, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as error:
            raise InputError("model_path", str(self.model_path), f"cannot load the weights: {str(error).splitlines()[0]}") from None
        problem = ll._loading_problem(info)
        if problem:
            raise InputError("model_path", str(self.model_path), problem)
        model.set_attn_implementation({"text_config": ac.CAPTURE_ATTENTION, "vision_config": "sdpa"})
        self._model = model.to(device).eval()
        self._family = fam.family_class(self.model_type)(files, self.options)
        self._device = device
        self._sam = None

    def _refiner(self) -> SamRefiner:
        if self._sam is None:
            if self.sam_checkpoint is None:
                raise InputError("--model-args", "sam_checkpoint",
                                 "aas needs sam_checkpoint=PATH (e.g. sam_vit_h_4b8939.pth) to turn points into masks")
            self._sam = SamRefiner(build_sam(self.options["sam_type"], self.sam_checkpoint), self._device or "cpu")
        return self._sam

    @property
    def _tokenizer(self) -> Any:
        return self._family.tokenizer

    # ------------------------------------------------------------------------------------------ model runs

    def _image_inputs(self, encoded: fam.Encoded, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {k: v.to(self._device) for k, v in self._family.sequence_inputs(input_ids).items()}
        for key, value in encoded.image_inputs.items():
            value = value.to(self._device)
            out[key] = value.to(self._model.dtype) if key == "pixel_values" else value
        return out

    def _generate(self, encoded: fam.Encoded) -> tuple[list[int], torch.Tensor]:
        """Greedy generation: the new tokens up to and including EOS and their (T, n) maps."""
        ids = encoded.input_ids.to(self._device)
        tokenizer = self._tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), **self._image_inputs(encoded, ids),
                      max_new_tokens=int(self.options["max_new_tokens"]), do_sample=False, num_beams=1,
                      return_dict_in_generate=True, pad_token_id=pad)
        predicting = self.aas_options.query_for(teacher_forced=False) == "predicting"
        capture = ac.AttentionCapture(encoded.image_columns[None])
        with torch.inference_mode():
            if predicting:
                with ac.capturing(capture):
                    output = self._model.generate(**kwargs)
            else:
                output = self._model.generate(**kwargs)
        new = output.sequences[0, ids.shape[1]:].cpu()
        tokens = until_eos(new.tolist(), eos_ids(tokenizer, self._model))
        if predicting:
            maps = capture.maps()[:, 0, 0]
            if maps.shape[0] != len(new):
                raise RuntimeError(f"captured {maps.shape[0]} attention steps for {len(new)} new tokens")
            return tokens, maps[:len(tokens)]
        full = torch.cat([encoded.input_ids, torch.tensor([tokens], dtype=torch.long)], dim=1)
        rows = torch.arange(encoded.input_ids.shape[1], full.shape[1])
        return tokens, self._forward_rows(full, encoded, rows)

    def _forward_rows(self, input_ids: torch.Tensor, encoded: fam.Encoded, rows: torch.Tensor) -> torch.Tensor:
        """One teacher-forced forward; (R, n) maps of the query positions `rows`."""
        capture = ac.AttentionCapture(encoded.image_columns[None], rows[None].to(self._device))
        ids = input_ids.to(self._device)
        with torch.inference_mode(), ac.capturing(capture):
            self._model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False, logits_to_keep=1,
                        **self._image_inputs(encoded, ids))
        return capture.maps()[0, 0]

    def _points(self, encoded: fam.Encoded, maps: torch.Tensor) -> list[tuple[int, int]]:
        return self._read(encoded, maps)[0]

    def _read(self, encoded: fam.Encoded, maps: torch.Tensor, reduce_max: bool = False
              ) -> tuple[list[tuple[int, int]], list[dict[str, Any]]]:
        """Per (n,) map of `maps`: its image map's argmax point, and its heatmap (`heatmaps=on`); with
        `reduce_max`, one point and heatmap of the pixel-wise max over all maps (RES `first8`)."""
        view = self.options["view"]
        images = [tl.image_map(encoded.layout, maps, view).amax(dim=0, keepdim=True)] if reduce_max else \
            [tl.image_map(encoded.layout, single[None], view) for single in maps]
        points = [tl.argmax_points(image)[0] for image in images]
        heats = [heatmaps.encode(image[0].numpy()) for image in images] if self.options["heatmaps"] == "on" else []
        return points, heats

    def _masks(self, request: Request, image: Any, points: Sequence[tuple[int, int]],
               use_proposals: bool) -> list[tuple[RLE, ...]]:
        if not points:
            return []
        if use_proposals and self._proposals is not None:
            image_id = self._image_ids.get(request.doc_id, request.doc_id)
            picked = [self._proposals.pick(image_id, x, y, request.height, request.width) for x, y in points]
            return [(rle,) if rle is not None else () for rle in picked]
        masks = self._refiner().masks(np.asarray(image), list(points))
        return [(RLE.from_mask(mask),) for mask in masks]

    def _extras(self, encoded: fam.Encoded, teacher_forced: bool, points: Sequence[tuple[int, int] | None],
                heats: Sequence[dict[str, Any] | None] = (), **more: Any) -> dict[str, Any]:
        query = self.aas_options.query_for(teacher_forced=teacher_forced)
        extras = {"aas": {"query": query, "normalize": self.options["normalize"],
                          "aggregation": self.options["aggregation"], "view": self.options["view"]},
                  "family": self.model_type, "image_tokens": encoded.layout.n_tokens,
                  "points": [list(p) if p is not None else None for p in points], **more}
        if self.options["heatmaps"] == "on":
            extras["heatmaps"] = list(heats) if heats else [None] * len(points)
        return extras

    # ------------------------------------------------------------------------------------------ kinds

    def _task_prompt(self, request: Request) -> bool:
        return PROTOCOLS.resolve(request.kind, self.options["protocol"] or None) == "task-prompt"

    def _question(self, request: Request) -> str:
        question = self.options["question"]
        if question == "task" or (self._task_prompt(request) and question == AAS_QUESTION):
            return request.prompt
        return question

    def _caption_points(self, request: Request) -> tuple[Any, fam.Encoded, str, list, list, Any]:
        """Generate the a&s caption and read one attention point per noun phrase (GCG and instances)."""
        nlp = nps.load_spacy(self.options["spacy_model"])
        image = read_image(request)
        encoded = self._family.encode(image, self._question(request))
        ids, maps = self._generate(encoded)
        text, spans = nps.strip_text(*nps.decoded_token_spans(self._tokenizer, ids))
        found = nps.noun_phrases(nlp, text, spans, self.skip_roots)
        maps = aas.normalize_maps(maps, self.options["normalize"])
        points, heats = self._read(encoded, aas.phrase_maps(maps, [p.tokens for p in found], self.options["aggregation"]))
        return image, encoded, text, found, points, heats

    def _gcg(self, request: Request) -> Prediction:
        image, encoded, text, found, points, heats = self._caption_points(request)
        masks = self._masks(request, image, points, use_proposals=False)
        phrases = tuple(Phrase(p.text, m, p.start, p.end) for p, m in zip(found, masks))
        return Prediction(request.doc_id, text, phrases,
                          extras=self._extras(encoded, False, points, heats, roots=[p.root for p in found]))

    def _res(self, request: Request) -> Prediction:
        template = "task" if self._task_prompt(request) else self.options["res_template"]
        question = request.prompt if template == "task" else template.format(expression=request.inputs["expression"])
        image = read_image(request)
        encoded = self._family.encode(image, question)
        ids, maps = self._generate(encoded)
        maps = aas.normalize_maps(maps, self.options["normalize"])
        point, chosen, heats = None, None, []
        if self.options["res_rule"] == "first8":
            if len(ids):
                (point,), heats = self._read(encoded, maps[:8], reduce_max=True)
        else:
            words = [self._tokenizer.decode([t]).lower().strip() for t in ids]
            chosen = next((i for i in range(1, len(words)) if words[i - 1] in COPULAS), None)
            if chosen is not None:
                (point,), heats = self._read(encoded, maps[chosen:chosen + 1])
        masks = self._masks(request, image, [point], use_proposals=True)[0] if point is not None else ()
        text = self._tokenizer.decode(ids, skip_special_tokens=True).strip()
        return Prediction(request.doc_id, text, (Phrase(request.inputs["expression"], masks),),
                          extras=self._extras(encoded, False, [point], heats or [None], res_rule=self.options["res_rule"],
                                              res_token=chosen))

    def _png(self, request: Request) -> Prediction:
        caption = request.inputs["caption"]
        image = read_image(request)
        encoded = self._family.encode(image, self._question(request), answer=caption)
        n = len(encoded.answer_offsets)
        total = encoded.input_ids.shape[1]
        shift = 0 if self.aas_options.query_for(teacher_forced=True) == "own" else -1
        maps = self._forward_rows(encoded.input_ids, encoded, torch.arange(total - n, total) + shift) if n else None
        wanted = request.inputs["phrases"]
        groups = [nps.offsets_tokens(encoded.answer_offsets, *_span(caption, p)) for p in wanted]
        covered = [i for i, g in enumerate(groups) if g]
        found: list[tuple[int, int]] = []
        found_heats: list[dict[str, Any]] = []
        if covered and maps is not None:
            maps = aas.normalize_maps(maps, self.options["normalize"])
            found, found_heats = self._read(encoded, aas.phrase_maps(maps, [groups[i] for i in covered],
                                                                     self.options["aggregation"]))
        points: list[tuple[int, int] | None] = [None] * len(wanted)
        heats: list[dict[str, Any] | None] = [None] * len(wanted)
        for rank, (i, point) in enumerate(zip(covered, found)):
            points[i] = point
            heats[i] = found_heats[rank] if found_heats else None
        by_phrase = dict(zip(covered, self._masks(request, image, found, use_proposals=True)))
        phrases = tuple(Phrase(p["text"], by_phrase.get(i, ()), p.get("start"), p.get("end"))
                        for i, p in enumerate(wanted))
        return Prediction(request.doc_id, caption, phrases, extras=self._extras(encoded, True, points, heats))

    def _instances(self, request: Request) -> Prediction:
        image, encoded, text, found, points, heats = self._caption_points(request)
        masks, scores = self._refiner().masks_with_scores(np.asarray(image), points) if points else ([], [])
        categories = list(request.inputs["categories"])
        nlp = nps.load_spacy(self.options["spacy_model"])   # cached: the pipeline the caption was parsed with
        chosen = [nps.closest_category(nlp, p.root, [c["name"] for c in categories]) for p in found]
        keep = [i for i, mask in enumerate(masks) if mask.any()]
        phrases = tuple(Phrase(found[i].text, (RLE.from_mask(masks[i]),), found[i].start, found[i].end) for i in keep)
        extras = self._extras(encoded, False, [points[i] for i in keep], [heats[i] for i in keep] if heats else [],
                              roots=[found[i].root for i in keep],
                              category_ids=[int(categories[chosen[i]]["id"]) for i in keep],
                              scores=[scores[i] for i in keep])
        return Prediction(request.doc_id, text, phrases, extras=extras)
