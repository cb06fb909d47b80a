"""`glamm`: GLaMM (`mbzuai-oryx/groundingLMM`) re-written for transformers 5: the Vicuna LLM answers, each
[SEG] token's hidden state is projected by `text_hidden_fcs` into a SAM prompt, SAM's decoder gives the mask.

Checkpoints: `MBZUAI/GLaMM-GCG`, `-RefSeg`, `-FullScope`, `-GranD-Pretrained`, `-RegCap-*` (HF folders, see
modules.py for the key layout) plus `openai/clip-vit-large-patch14-336` (the global image encoder, which
upstream always loads separately). Per request kind (upstream script followed):

- grounded_caption (GCG, eval/gcg/infer.py): the task prompt (the 5-space instruction) after GLaMM's begin
  string in the llava_v1 template; greedy decoding (num_beams 1, no sampling, stop at </s> or
  `max_new_tokens`, default 512). Upstream generates without a KV cache and takes the last step's hidden
  states of the whole sequence; here decoding is KV-cached by default and the last-layer state of every
  position is collected as it is computed (prefill, then one per step), which is the same tensor up to
  floating-point order (`kv_cache=false` recomputes the whole sequence every step, as upstream does). The
  state used for the j-th generated [SEG] is the one at the position before it (the state that predicted
  it). The decoded text is parsed as upstream (parse.py) and phrase i gets mask i.
- segment, `inputs["expression"]` (RES, eval/referring_seg/infer_and_evaluate.py): teacher-forced, one
  forward pass over the conversation; the [SEG] states come from the input ids. Protocol `glamm-multiturn`
  (default, upstream's): the image's sentences, ≤ 3 per conversation with random templates and answers drawn
  from `--seed` (`options.py`); `per-sentence`: "<task prompt> ASSISTANT: <res_answer></s>" per sentence.
- caption (region captioning, eval/region_captioning/infer.py): greedy generation; the task prompt's `<bbox>`
  token embedding is replaced by the region encoder's feature of `inputs["region"]` ([x, y, w, h] pixels →
  xyxy → ×336/W, ×336/H → /336, float64 → half → model dtype, as upstream). Without a region the prompt is
  asked about the whole image. The caption is cleaned as upstream; no masks.
PNG (`segment_phrases` requests) has no GLaMM protocol: it is not in `supported_kinds`, so the runner refuses
a PNG task before the model loads.

Masks: `text_hidden_fcs` → SAM prompt embeddings (sparse = the projected states, dense = no_mask_embed), the
mask decoder with multimask_output=False, `postprocess_masks` (float32: bilinear to the SAM input size, crop
to the resized image, bilinear to the original size), logit > 0, COCO RLE at the image size.
Requests run one at a time (upstream's batch size 1); images are read with PIL (upstream: cv2, BGR → RGB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.api.lazy import lazy_module
from gcgbench.api.hashing import backend_fingerprint
from gcgbench.api.protocols import ProtocolTable
from gcgbench.data.refer import glamm_conversations, glamm_image_seed
from gcgbench.api.types import Doc, Phrase, Prediction, RLE, Request
from gcgbench.models.glamm import tokenizer as gt
from gcgbench.models.glamm.parse import clean_caption, pair_phrases, parse_glamm_output
from gcgbench.models.glamm.options import PROTOCOLS, GlammOptions, conversation_turns
from gcgbench.models.llava.loading import resolve_dtype

if TYPE_CHECKING:
    from gcgbench.models.glamm.modules import ClipPreprocess, GlammNetwork

torch = lazy_module("torch")   # at first use: `gcgbench models` lists this backend without torch

IMPLEMENTATION = "2"   # bump when a change alters what the backend answers (invalidates cached generations)
CLIP_SIDE = 336   # eval/region_captioning/infer.py rescales boxes to 336×336, whatever the CLIP crop
ENTITY = re.compile(r"&(?!(#\d+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)")


@dataclass
class _Glamm:
    network: GlammNetwork
    clip: Any
    preprocess: ClipPreprocess
    tokenizer: gt.GlammTokenizer
    dtype: torch.dtype
    device: str
    cache: dict[str, Any] = field(default_factory=dict)   # the last image's CLIP states and SAM embedding

    def cached(self, image: "GlammImage", part: str, compute: Any) -> Any:
        """`compute()` once per image and part: RES asks about one image many times in a row."""
        if self.cache.get("image") != image.path:
            self.cache = {"image": image.path}
        if part not in self.cache:
            self.cache[part] = compute()
        return self.cache[part]

    @property
    def seg_id(self) -> int:
        return self.tokenizer.token_id(gt.SEG_TOKEN)

    @property
    def bbox_id(self) -> int:
        return self.tokenizer.token_id(gt.BBOX_TOKEN)


@dataclass
class GlammBackend:
    options: GlammOptions
    name: str = "glamm"
    supported_kinds: frozenset[str] = frozenset({"grounded_caption", "segment", "caption"})
    _loaded: _Glamm | None = None
    _res_docs: list[Doc] = field(default_factory=list)
    _turns: dict[tuple[int, str], tuple[list[Doc], int]] = field(default_factory=dict)   # (seed, doc id) → conversation
    _turn_masks: dict[tuple[int, str], RLE] = field(default_factory=dict)

    Options = GlammOptions
    PROTOCOLS: ProtocolTable = PROTOCOLS
    ARGS = {info.name: info.help for info in GlammOptions.describe()}

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "GlammBackend":
        for required in ("model_path", "clip_path"):
            if required not in args:
                raise InputError("--model-args", None, f"glamm needs {required}=FOLDER ({cls.ARGS[required]})")
        options = GlammOptions.parse(args, "glamm")
        for label in ("model_path", "clip_path"):
            if not (getattr(options, label) / "config.json").is_file():
                raise InputError(label, str(getattr(options, label)), "not a model folder (no config.json)")
        return cls(options)

    @property
    def model_path(self) -> Path:
        return self.options.model_path

    @property
    def clip_path(self) -> Path:
        return self.options.clip_path

    def protocol_for(self, kind: str) -> str:
        return PROTOCOLS.resolve(kind, self.options.protocol or None)

    # ------------------------------------------------------------------------------------------ protocol

    def prepare(self, task: Any, docs: Sequence[Doc]) -> None:
        """`glamm-multiturn` asks an image's sentences together: keep the task's docs to group them."""
        self._res_docs, self._turns, self._turn_masks = [], {}, {}
        family = getattr(getattr(task, "spec", None), "family", None)
        if family == "res" and self.protocol_for("segment") == "glamm-multiturn":   # GLaMM's RefCOCO evaluation
            self._res_docs = list(docs)

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        glamm = self._load(settings.device)
        answers = []
        with torch.inference_mode():
            for request in requests:
                if request.kind == "grounded_caption":
                    answers.append(self._gcg(glamm, request))
                elif request.kind == "segment":
                    answers.append(self._res(glamm, request, settings.seed))
                elif request.kind == "caption":
                    answers.append(self._caption(glamm, request))
                else:
                    raise GcgbenchError(f"glamm cannot answer {request.kind!r} requests")
        return answers

    def fingerprint(self) -> Mapping[str, Any]:
        return backend_fingerprint(self.name, self.options, {"model": self.model_path, "clip": self.clip_path}, PROTOCOLS,
                                   implementation=IMPLEMENTATION, conversation="llava_v1",
                                   tokenizer="transformers 4.28 slow LlamaTokenizer semantics (sentencepiece)",
                                   image_aspect="clip center crop; sam longest side, bottom/right pad")

    # ------------------------------------------------------------------------------------------ loading

    def _load(self, device: str) -> _Glamm:
        if self._loaded is not None and self._loaded.device == device:
            return self._loaded
        from gcgbench.models.glamm.modules import ClipPreprocess, load_clip, load_network  # torch modules: here

        dtype = self._dtype(device)
        tokenizer = gt.GlammTokenizer.from_folder(self.model_path)
        network = load_network(self.model_path, dtype, device, self.options.attn)
        spec = network.spec
        if tokenizer.vocab_size != int(spec.llama["vocab_size"]):
            raise InputError(self.model_path, "config.json", f"vocab_size {spec.llama['vocab_size']} differs from the "
                                                             f"tokenizer's {tokenizer.vocab_size} ids")
        if spec.bbox_token_idx is not None and int(spec.bbox_token_idx) != tokenizer.token_id(gt.BBOX_TOKEN):
            raise InputError(self.model_path, "config.json", f"bbox_token_idx {spec.bbox_token_idx} is not the "
                                                             f"<bbox> id {tokenizer.token_id(gt.BBOX_TOKEN)} of added_tokens.json")
        clip = load_clip(self.clip_path, dtype, device, self.options.attn)
        if clip.config.hidden_size != spec.region.embed_dims:
            raise InputError("clip_path", str(self.clip_path), f"CLIP width {clip.config.hidden_size} differs from the "
                                                               f"checkpoint's mm_hidden_size {spec.region.embed_dims}")
        self._loaded = _Glamm(network, clip, ClipPreprocess.from_folder(self.clip_path), tokenizer, dtype, device)
        return self._loaded

    def _dtype(self, device: str) -> torch.dtype:
        return resolve_dtype(self.options.dtype, device, cuda_default="bfloat16")  # GLaMM runs in bf16

    # ------------------------------------------------------------------------------------------ kinds

    def _gcg(self, glamm: _Glamm, request: Request) -> Prediction:
        image = read_image(request)
        # bleach.clean (escapes a bare "&"; "<", ">" become &lt;/&gt;), then &lt;/&gt; turned back
        question = ENTITY.sub("&amp;", request.prompt).replace("&lt;", "<").replace("&gt;", ">")
        ids = gt.tokenizer_image_token(gt.llava_v1_prompt([(gt.with_image(question), None)]), glamm.tokenizer)
        features, _ = encode_image(glamm, image, None)
        embeds, _ = embed_sequence(glamm, ids, features, None)
        tokens, states = greedy(glamm, embeds, self.options.max_new_tokens, self.options.kv_cache)
        rows = [embeds.shape[1] + j - 1 for j, token in enumerate(tokens) if token == glamm.seg_id]
        masks = decode_masks(glamm, states[rows], image) if rows else []
        parsed = parse_glamm_output(glamm.tokenizer.decode(ids_without_image(ids) + tokens))
        phrases, extra = pair_phrases(parsed, masks)
        return Prediction(request.doc_id, parsed.caption, phrases, extra,
                          extras={"answer": parsed.answer, "seg_offsets": list(parsed.seg_offsets),
                                  "generated_tokens": len(tokens)})

    def _res(self, glamm: _Glamm, request: Request, seed: int) -> Prediction:
        expression = str(request.inputs["expression"])
        conversation = self._conversation(request.doc_id, seed)
        if conversation is None:
            answer = self.options.res_answer
            masks = self._teacher_forced(glamm, request, [(request.prompt, answer)])
            return Prediction(request.doc_id, expression, (Phrase(expression, tuple(masks[:1])),), tuple(masks[1:]),
                              extras={"answer": answer, "glamm_protocol": "per-sentence" if self.protocol_for(
                                  "segment") == "per-sentence" else "per-sentence (not a RefCOCO task)"})
        docs, turn = conversation
        key = (seed, request.doc_id)
        turns = conversation_turns([str(d.inputs["expression"]) for d in docs],
                                   glamm_image_seed(seed, docs[0].truth["image_id"]))
        if key not in self._turn_masks:
            masks = self._teacher_forced(glamm, request, turns)
            if len(masks) != len(docs):
                raise GcgbenchError(f"doc {request.doc_id!r}: {len(masks)} [SEG] masks for {len(docs)} turns")
            self._turn_masks.update({(seed, d.doc_id): mask for d, mask in zip(docs, masks)})
        return Prediction(request.doc_id, expression, (Phrase(expression, (self._turn_masks[key],)),),
                          extras={"glamm_protocol": "glamm-multiturn", "turn": turn, "turns": len(docs),
                                  "question": turns[turn][0], "answer": turns[turn][1]})

    def _conversation(self, doc_id: str, seed: int) -> tuple[list[Doc], int] | None:
        """The (docs, turn index) of `doc_id`'s conversation under `glamm-multiturn` (None: per-sentence)."""
        if self.protocol_for("segment") != "glamm-multiturn":
            return None
        if not self._res_docs:
            return None                      # not a RefCOCO task: each sentence on its own
        if (seed, doc_id) not in self._turns:
            for docs in glamm_conversations(self._res_docs, seed):
                self._turns.update({(seed, d.doc_id): (docs, turn) for turn, d in enumerate(docs)})
        return self._turns.get((seed, doc_id))

    def _teacher_forced(self, glamm: _Glamm, request: Request, turns: Sequence[tuple[str, str]]) -> list[RLE]:
        """One forward over the conversation `turns` (the first question after the begin string and image);
        the mask of every [SEG] of the input, in order (`_inference_path`, `_create_seg_token_mask`)."""
        image = read_image(request)
        first, *rest = turns
        prompt = gt.llava_v1_prompt([(gt.with_image(first[0]), first[1]), *rest])
        ids = gt.tokenizer_image_token(prompt, glamm.tokenizer)
        features, _ = encode_image(glamm, image, None)
        embeds, positions = embed_sequence(glamm, ids, features, None)
        states = glamm.network.model(inputs_embeds=embeds, use_cache=False).last_hidden_state[0]
        rows = [positions[i] - 1 for i, token in enumerate(ids) if token == glamm.seg_id and i > 0]
        return decode_masks(glamm, states[rows], image)

    def _caption(self, glamm: _Glamm, request: Request) -> Prediction:
        image = read_image(request)
        region = request.inputs.get("region")
        if gt.BBOX_TOKEN in request.prompt and region is None:
            raise GcgbenchError(f"doc {request.doc_id!r}: the prompt has {gt.BBOX_TOKEN} but the request no inputs['region']")
        boxes = region_boxes(region, request.height, request.width, glamm.dtype, glamm.device) if region is not None else None
        prompt = request.prompt.replace("&lt;", "<").replace("&gt;", ">")
        ids = gt.tokenizer_image_token(gt.llava_v1_prompt([(gt.with_image(prompt), None)]), glamm.tokenizer)
        features, region_features = encode_image(glamm, image, boxes)
        embeds, _ = embed_sequence(glamm, ids, features, region_features)
        tokens, _ = greedy(glamm, embeds, self.options.max_new_tokens, self.options.kv_cache)
        decoded = glamm.tokenizer.decode(ids_without_image(ids) + tokens)
        return Prediction(request.doc_id, clean_caption(decoded), extras={"generated_tokens": len(tokens)})


# ---------------------------------------------------------------------------------------------- inference

@dataclass
class GlammImage:
    path: str
    pixels: np.ndarray          # (H, W, 3) uint8 RGB
    size: tuple[int, int]       # (H, W)


def read_image(request: Request) -> GlammImage:
    from PIL import Image

    if request.image_path is None:
        raise GcgbenchError(f"glamm needs an image; doc {request.doc_id!r} has none")
    try:
        with Image.open(request.image_path) as opened:
            pixels = np.array(opened.convert("RGB"))
    except OSError as error:
        raise InputError(request.image_path, None, f"cannot read the image ({error})") from None
    if pixels.shape[:2] != (request.height, request.width):
        raise InputError(request.image_path, None, f"image is {pixels.shape[1]}x{pixels.shape[0]}, the annotation says "
                                                   f"{request.width}x{request.height}")
    return GlammImage(str(request.image_path), pixels, (request.height, request.width))


def encode_image(glamm: _Glamm, image: GlammImage, boxes: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(projected patch features (1, N, D), region features (n, D) or None): CLIP hidden state
    `mm_vision_select_layer` without CLS → mm_projector; region levels = hidden_states[select::-3] reversed,
    the last `num_level_reg_features`, without CLS (llava_with_region_arch.py)."""
    spec = glamm.network.spec
    pixels = lambda: glamm.preprocess(image.pixels).to(glamm.device, glamm.dtype)
    hidden = glamm.cached(image, "clip", lambda: glamm.clip(pixel_values=pixels(), output_hidden_states=True).hidden_states)
    features = glamm.network.model.mm_projector(hidden[spec.select_layer][:, 1:].to(glamm.dtype))
    if boxes is None or not spec.with_region:
        return features, None
    levels = [level[:, 1:].to(glamm.dtype) for level in hidden[spec.select_layer::-3][::-1][-spec.num_region_levels:]]
    return features, glamm.network.model.region_encoder(levels, [boxes], glamm.dtype)[0]


def embed_sequence(glamm: _Glamm, ids: list[int], features: torch.Tensor,
                   region_features: torch.Tensor | None) -> tuple[torch.Tensor, list[int]]:
    """Input embeddings with the image features in place of -200 (and the region features in place of the
    first <bbox> tokens), and the embedding position of every id (the image id: its first feature)."""
    image_at = ids.index(gt.IMAGE_TOKEN_INDEX)
    embed = glamm.network.model.embed_tokens
    as_tensor = lambda part: torch.tensor(part, dtype=torch.long, device=glamm.device)
    embeds = torch.cat([embed(as_tensor(ids[:image_at])), features[0], embed(as_tensor(ids[image_at + 1:]))])
    shift = features.shape[1] - 1
    positions = [i if i <= image_at else i + shift for i in range(len(ids))]
    if region_features is not None:
        slots = [positions[i] for i, token in enumerate(ids) if token == glamm.bbox_id][:len(region_features)]
        if slots:
            embeds = embeds.clone()
            embeds[slots] = region_features[:len(slots)].to(embeds.dtype)
    return embeds[None], positions


def greedy(glamm: _Glamm, embeds: torch.Tensor, max_new_tokens: int, kv_cache: bool) -> tuple[list[int], torch.Tensor]:
    """Greedy tokens (argmax of the last position's logits, stop after </s> or `max_new_tokens`) and the
    last-layer states of every position fed to the model (the prompt and all tokens but the last)."""
    llm, head = glamm.network.model, glamm.network.lm_head
    eos = glamm.tokenizer.eos_id
    as_embed = lambda token: llm.embed_tokens(torch.tensor([[token]], device=glamm.device))
    tokens: list[int] = []
    if not kv_cache:
        sequence = embeds
        while True:
            states = llm(inputs_embeds=sequence, use_cache=False).last_hidden_state
            tokens.append(int(head(states[:, -1]).argmax(-1)))
            if tokens[-1] == eos or len(tokens) >= max_new_tokens:
                return tokens, states[0]
            sequence = torch.cat([sequence, as_embed(tokens[-1])], dim=1)
    output = llm(inputs_embeds=embeds, use_cache=True)
    collected = [output.last_hidden_state[0]]
    while True:
        tokens.append(int(head(output.last_hidden_state[:, -1]).argmax(-1)))
        if tokens[-1] == eos or len(tokens) >= max_new_tokens:
            return tokens, torch.cat(collected)
        output = llm(inputs_embeds=as_embed(tokens[-1]), use_cache=True, **_cache_argument(llm, output))
        collected.append(output.last_hidden_state[0])


def _cache_argument(llm: Any, output: Any) -> dict[str, Any]:
    """The KV cache of `output` as the next call's argument (`cache` in transformers ≥ 5.2x, else `past_key_values`)."""
    import inspect

    if "cache" in inspect.signature(llm.forward).parameters:
        return {"cache": output.cache}
    return {"past_key_values": output.past_key_values}


def decode_masks(glamm: _Glamm, states: torch.Tensor, image: GlammImage) -> list[RLE]:
    """[SEG] states (n, D) → n masks at the image size (GLaMM `_generate_and_postprocess_masks`)."""
    from gcgbench.models.glamm.modules import sam_pixels

    sam = glamm.network.model.grounding_encoder
    side = sam.image_encoder.img_size
    pixels, resized = sam_pixels(image.pixels, side)
    image_embedding = glamm.cached(image, "sam", lambda: sam.image_encoder(pixels.to(glamm.device, glamm.dtype)))
    prompts = glamm.network.model.text_hidden_fcs[0](states)[:, None, :]
    dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
        len(prompts), -1, *sam.prompt_encoder.image_embedding_size)
    low_res, _ = sam.mask_decoder(image_embeddings=image_embedding, image_pe=sam.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=prompts, dense_prompt_embeddings=dense, multimask_output=False)
    resize = torch.nn.functional.interpolate
    logits = resize(low_res.float(), (side, side), mode="bilinear", align_corners=False)[..., :resized[0], :resized[1]]
    logits = resize(logits, image.size, mode="bilinear", align_corners=False)[:, 0]
    return [RLE.from_mask(mask) for mask in (logits > 0).cpu().numpy()]


def region_boxes(region: Sequence[float], height: int, width: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """[x, y, w, h] pixels → eval/region_captioning/infer.py's normalised xyxy (float64 → half → dtype)."""
    x, y, w, h = (float(v) for v in region)
    x_scale, y_scale = CLIP_SIDE / width, CLIP_SIDE / height
    scaled = np.array([[x * x_scale, y * y_scale, (x + w) * x_scale, (y + h) * y_scale]], dtype=np.float64)
    normalised = scaled / np.array([CLIP_SIDE, CLIP_SIDE, CLIP_SIDE, CLIP_SIDE])
    return torch.tensor(normalised).half().to(device=device, dtype=dtype)


def ids_without_image(ids: list[int]) -> list[int]:
    """`output_ids[output_ids != IMAGE_TOKEN_INDEX]` before decoding."""
    return [token for token in ids if token != gt.IMAGE_TOKEN_INDEX]
