"""`difflmm`: DiffLMM (Cao et al., `Shengcao-Cao/groundLMM`) + attend-and-segment, exactly as `llava-as` does it.

DiffLMM is LLaVA-1.5-7B with the CLIP tower replaced by SD-1.5 U-Net features + CLIP features
(`vision.py`), released as a LoRA over Vicuna-7B-v1.5 (`loading.py`). Everything after the
LMM (generation settings, per-token attention rows, mean subtraction, spaCy root-word phrases, point → SAM
or proposal, RES/PNG rules) is `LlavaAttendSegmentBackend`'s, inherited unchanged; this subclass swaps
only what differs in the LLaVA-repo code path DiffLMM runs in upstream (`aas/infer_attn.py` with
`load_pretrained_model(model_path, model_base, ...)`):

- inputs (`DiffLmmProcessor`): the llava_v1 prompt is tokenized as `llava/mm_utils.py::tokenizer_image_token`
  does (the text split at `<image>`, each chunk tokenized on its own, BOS kept only on the first), and the
  image placeholder (IMAGE_TOKEN_INDEX = −200) is repeated n = (R/16)² times, where upstream splices the n
  image features in place of one −200 (`prepare_inputs_labels_for_multimodal`); same embedding sequence.
  The image is padded and normalised with DiffLMM's effective CLIP mean/std (see `vision.py`).
- image features: computed when the batch is built, one `torch.Generator` per doc seeded with
  `sample_seed(run_seed, doc_id)` for the VAE sample and the noise, so a doc's answer does not depend on
  its batch, shard or earlier calls. The batch's `pixel_values` then hold the projected image tokens.
- the model (`DiffLmmLM`): embeds the ids, scatters the image tokens into the −200 positions and calls
  `LlamaForCausalLM.generate(input_ids=…, inputs_embeds=…)` (sequences = prompt ids + new tokens), with
  the `gcgbench_capture` attention of `grounding/attention_capture.py` so the a&s rows are captured as for llava-as.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import torch

from gcgbench.api.backend import GenerationSettings, sample_seed
from gcgbench.api import hashing
from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase
from gcgbench.api.types import Prediction, Request
from gcgbench.models.llava import loading as ll
from gcgbench.models import embedded
from gcgbench.models.difflmm.loading import DiffLmm, load_difflmm, read_json, weight_files
from gcgbench.models.difflmm.vision import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, preprocess_image
from gcgbench.models.llava_as.backend import LlavaAttendSegmentBackend

IMAGE_TOKEN_INDEX = -200   # llava/constants.py
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "generation_config.json")


def tokenizer_image_token(prompt: str, tokenizer: Any, n_image_tokens: int) -> list[int]:
    """LLaVA `tokenizer_image_token` with the placeholder repeated `n_image_tokens` times."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    for index, chunk in enumerate(chunks):
        if index > 0:
            ids.extend([IMAGE_TOKEN_INDEX] * n_image_tokens)
        ids.extend(chunk[offset:])
    return ids


class DiffLmmProcessor:
    """What `LlavaAttendSegmentBackend._batch` asks of an HF processor: `(text=[…], images=[…])` → ids + pixels."""

    def __init__(self, tokenizer: Any, resolution: int, n_image_tokens: int):
        self.tokenizer = tokenizer
        self.resolution = resolution
        self.n_image_tokens = n_image_tokens
        self.image_processor = SimpleNamespace(image_mean=list(OPENAI_CLIP_MEAN), image_std=list(OPENAI_CLIP_STD))

    def __call__(self, text: Sequence[str], images: Sequence[Any] | None = None, return_tensors: str = "pt") -> dict:
        if len(text) != 1 or (images is not None and len(images) != 1):
            raise ValueError("DiffLmmProcessor takes one prompt (and one image) at a time")
        ids = tokenizer_image_token(text[0], self.tokenizer, self.n_image_tokens)
        out = {"input_ids": torch.tensor([ids], dtype=torch.long)}
        if images is not None:
            out["pixel_values"] = preprocess_image(images[0], self.resolution)[None]
        return out


def embed_with_image_tokens(llm: Any, input_ids: torch.Tensor, image_tokens: torch.Tensor | None) -> torch.Tensor:
    """Token embeddings of `input_ids` with the image tokens (B, n, hidden) scattered, in order, into each row's
    n IMAGE_TOKEN_INDEX positions (upstream `prepare_inputs_labels_for_multimodal`); differentiable."""
    is_image = input_ids == IMAGE_TOKEN_INDEX
    embeds = llm.get_input_embeddings()(input_ids.masked_fill(is_image, 0))
    if image_tokens is None:
        if bool(is_image.any()):
            raise ValueError("image placeholders without image features")
        return embeds
    counts = is_image.sum(dim=1)
    if image_tokens.shape[0] != input_ids.shape[0] or bool((counts != image_tokens.shape[1]).any()):
        raise ValueError(f"{counts.tolist()} image placeholders for image tokens of shape {tuple(image_tokens.shape)}")
    embeds[is_image] = image_tokens.reshape(-1, image_tokens.shape[-1]).to(embeds.dtype)
    return embeds


class DiffLmmLM:
    """The LLaVA-repo multimodal LM on top of the merged `LlamaForCausalLM`; `pixel_values` are image tokens."""

    def __init__(self, model: DiffLmm):
        self.model = model
        self.llm = model.llm
        self.config = SimpleNamespace(image_token_id=IMAGE_TOKEN_INDEX)

    @property
    def dtype(self) -> torch.dtype:
        return self.llm.dtype

    @property
    def generation_config(self) -> Any:
        return self.llm.generation_config

    def embed(self, input_ids: torch.Tensor, image_tokens: torch.Tensor | None) -> torch.Tensor:
        return embed_with_image_tokens(self.llm, input_ids, image_tokens)

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None, **kwargs: Any) -> Any:
        embeds = self.embed(input_ids, pixel_values)
        return self.llm.generate(input_ids=input_ids, inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)

    def __call__(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None, **kwargs: Any) -> Any:
        return self.llm(inputs_embeds=self.embed(input_ids, pixel_values), **kwargs)


@dataclass
class DiffLmmBackend(LlavaAttendSegmentBackend):
    model_base: Path | None = None
    sd_path: Path | None = None
    clip_path: Path | None = None
    name: str = "difflmm"
    _difflmm: DiffLmm | None = None
    _run_seed: int = 0

    ARGS = {
        "model_path": "DiffLMM LoRA folder, Shengcao1006/difflmm-llava-v1.5-7b-lora layout: config.json, "
                      "adapter_config.json, adapter_model.{safetensors,bin}, non_lora_trainables.bin",
        "model_base": "base LLM folder, lmsys/vicuna-7b-v1.5 layout (weights + tokenizer)",
        "sd_path": "Stable Diffusion v1.5 folder, diffusers layout: unet/, vae/, scheduler/",
        "clip_path": "CLIP folder, openai/clip-vit-large-patch14-336 layout (all four folders are required "
                     "together; none given: the shipped tiny DiffLMM)",
        **{k: v for k, v in LlavaAttendSegmentBackend.ARGS.items() if k != "model_path"},
    }
    PATH_ARGS = ("model_path", "model_base", "sd_path", "clip_path")

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "DiffLmmBackend":
        args = embedded.with_tiny_difflmm_defaults(dict(args))  # no folders given: the shipped tiny DiffLMM
        missing = [key for key in cls.PATH_ARGS if not args.get(key)]
        if missing:
            raise InputError("--model-args", None, f"difflmm needs {', '.join(f'{k}=FOLDER' for k in missing)}")
        paths = {key: Path(args[key]).expanduser() for key in cls.PATH_ARGS}
        for key, path in paths.items():
            if not path.is_dir():
                raise InputError(key, str(path), "no such folder")
        parent_args = {k: v for k, v in args.items() if k in LlavaAttendSegmentBackend.ARGS}
        backend = super().from_args(parent_args)
        backend.model_base, backend.sd_path, backend.clip_path = paths["model_base"], paths["sd_path"], paths["clip_path"]
        return backend

    # ------------------------------------------------------------------------------------------ protocol

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        self._run_seed = settings.seed
        return super().generate(requests, settings)

    def fingerprint(self) -> Mapping[str, Any]:
        base = dict(super().fingerprint())
        base["name"] = self.name
        base["args"] = {**base["args"], "model_base": str(self.model_base), "sd_path": str(self.sd_path),
                        "clip_path": str(self.clip_path)}
        base["lora_files_sha256"] = base.pop("model_files_sha256")
        base["base_files_sha256"] = _hashes(self.model_base, weight_files(self.model_base) +
                                            [self.model_base / n for n in TOKENIZER_FILES])
        base["sd_files_sha256"] = _hashes(self.sd_path, _diffusers_files(self.sd_path))
        base["clip_files_sha256"] = _hashes(self.clip_path, weight_files(self.clip_path) + [self.clip_path / "config.json"])
        base["vision_noise"] = "VAE sample then U-Net noise from torch.Generator(cpu).manual_seed(sample_seed(seed, doc_id))"
        return base

    # ------------------------------------------------------------------------------------------ hooks

    def _load(self, device: str) -> None:
        if self._model is not None and device == self._device:
            return
        dtype = ll.resolve_dtype(self.options["dtype"], device)
        with phase(f"loading {self.name}"):
            self._difflmm = load_difflmm(self.model_path, self.model_base, self.sd_path, self.clip_path, dtype, device)
        vision = self._difflmm.vision
        self._model = DiffLmmLM(self._difflmm)
        self._processor = DiffLmmProcessor(self._difflmm.tokenizer, vision.resolution, vision.num_patches)
        self._device = device
        self._sam = None

    def _batch(self, requests: Sequence[Request], questions: Sequence[str], answers: Sequence[str] | None = None) -> Any:
        batch = super()._batch(requests, questions, answers)
        if batch.pixel_values is not None:
            batch.pixel_values = self.image_tokens(batch.pixel_values, [r.doc_id for r in requests if r.image_path])
        return batch

    def image_tokens(self, pixel_values: torch.Tensor, doc_ids: Sequence[str]) -> torch.Tensor:
        """Pre-processed images of `doc_ids` → (B, n, hidden) image tokens, noise seeded per doc."""
        generators = [torch.Generator().manual_seed(sample_seed(self._run_seed, doc_id)) for doc_id in doc_ids]
        return self._difflmm.image_tokens(pixel_values, generators)


def _hashes(root: Path, files: Sequence[Path]) -> dict[str, str]:
    return {str(path.relative_to(root)): hashing.cached_sha256(path) for path in files if path.is_file()}


def _diffusers_files(sd: Path) -> list[Path]:
    """The files `from_pretrained` reads: configs, and per model safetensors (or sharded index) before .bin."""
    files = [sd / "scheduler" / "scheduler_config.json"]
    for sub in ("unet", "vae"):
        folder = sd / sub
        files.append(folder / "config.json")
        for stem in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
            index = folder / f"{stem}.index.json"
            if index.is_file():
                files += [index] + [folder / name for name in sorted(set(read_json(index).get("weight_map", {}).values()))]
                break
            if (folder / stem).is_file():
                files.append(folder / stem)
                break
    return files

