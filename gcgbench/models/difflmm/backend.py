"""`difflmm`: DiffLMM (Cao et al., `Shengcao-Cao/groundLMM`) + attend-and-segment, exactly as `llava-as` does it.

DiffLMM is LLaVA-1.5-7B with the CLIP tower replaced by SD-1.5 U-Net features + CLIP features
(`vision.py`), released as a LoRA over Vicuna-7B-v1.5 (`loading.py`). Everything after the
LMM (generation settings, per-token attention rows, mean subtraction, spaCy root-word phrases, point → SAM
or proposal, RES/PNG rules) is `LlavaAttendSegmentBackend`'s, inherited unchanged; this subclass swaps
only what differs in the LLaVA-repo code path DiffLMM runs in upstream (`aas/infer_attn.py` with
`load_pretrained_model(model_path, model_base, ...)`):

- inputs (`llava_as/batch.py::Prompting`): the llava_v1 prompt is tokenized as `llava/mm_utils.py::tokenizer_image_token`
  does (the text split at `<image>`, each chunk tokenized on its own by the base's slow Llama tokenizer
  upstream loads with `use_fast=False`, BOS kept only on the first), and the image placeholder
  (IMAGE_TOKEN_INDEX = −200) is repeated n = (R/16)² times, where upstream splices the n image features in
  place of one −200 (`prepare_inputs_labels_for_multimodal`); same embedding sequence. The image is padded
  and normalised with DiffLMM's effective CLIP mean/std (see `vision.py`). `DiffLmmProcessor` is the same
  construction over a transformers tokenizer, for the tiny model's training script.
- image features: computed when the batch is built, one `torch.Generator` per doc seeded with
  `sample_seed(run_seed, doc_id)` for the VAE sample and the noise, so a doc's answer does not depend on
  its batch, shard or earlier calls. The batch's `pixel_values` then hold the projected image tokens.
- the model (`DiffLmmLM` = `models/llava/spliced.SplicedLM`): embeds the ids, scatters the image tokens into the −200 positions and calls
  `LlamaForCausalLM.generate(input_ids=…, inputs_embeds=…)` (sequences = prompt ids + new tokens), with
  the `gcgbench_capture` attention of `grounding/attention_capture.py` so the a&s rows are captured as for llava-as.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from gcgbench.api.lazy import lazy_module
from gcgbench.api.backend import GenerationSettings, sample_seed
from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase
from gcgbench.api.types import Prediction, Request
from gcgbench.models.llava import loading as ll
from gcgbench.models import embedded
from gcgbench.models.llava.checkpoint import read_json, weight_files
from gcgbench.models.llava.spliced import IMAGE_TOKEN_INDEX, SplicedLM
from gcgbench.models.llava.tokenizer import SlowLlamaTokenizer
from gcgbench.models.llava_as.backend import LlavaAttendSegmentBackend
from gcgbench.models.llava_as.batch import HfChunkEncoder, Prompting
from gcgbench.models.llava_as.options import LlavaAsOptions
from gcgbench.api.options import option

torch = lazy_module("torch")   # imported at first use: a fully cached run never pays for it
if TYPE_CHECKING:   # loading.py and vision.py define torch modules: imported where a model is built
    from gcgbench.models.difflmm.loading import DiffLmm


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
        from gcgbench.models.difflmm.vision import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        self.image_processor = SimpleNamespace(image_mean=list(OPENAI_CLIP_MEAN), image_std=list(OPENAI_CLIP_STD))

    def __call__(self, text: Sequence[str], images: Sequence[Any] | None = None, return_tensors: str = "pt") -> dict:
        if len(text) != 1 or (images is not None and len(images) != 1):
            raise ValueError("DiffLmmProcessor takes one prompt (and one image) at a time")
        ids = tokenizer_image_token(text[0], self.tokenizer, self.n_image_tokens)
        out = {"input_ids": torch.tensor([ids], dtype=torch.long)}
        if images is not None:
            from gcgbench.models.difflmm.vision import preprocess_image

            out["pixel_values"] = preprocess_image(images[0], self.resolution)[None]
        return out


def DiffLmmLM(model: DiffLmm) -> SplicedLM:
    """The LLaVA-repo multimodal LM over DiffLMM's merged LLM; `pixel_values` are image tokens."""
    return SplicedLM(model.llm)


@dataclass(frozen=True)
class DiffLmmOptions(LlavaAsOptions):
    """llava-as's options (protocols included) plus the DiffLMM release's four folders."""

    model_path: Path | None = option("DiffLMM LoRA folder, Shengcao1006/difflmm-llava-v1.5-7b-lora layout: config.json, "
                                     "adapter_config.json, adapter_model.{safetensors,bin}, non_lora_trainables.bin "
                                     "(the four folders together; none given: the shipped tiny DiffLMM)", None, path=True)
    model_base: Path | None = option("base LLM folder, lmsys/vicuna-7b-v1.5 layout (weights + tokenizer)", None,
                                     path=True)
    clip_path: Path | None = option("CLIP folder, openai/clip-vit-large-patch14-336 layout", None, path=True)
    sd_path: Path | None = option("Stable Diffusion v1.5 folder, diffusers layout: unet/, vae/, scheduler/", None,
                                  path=True)


@dataclass
class DiffLmmBackend(LlavaAttendSegmentBackend):
    options: DiffLmmOptions
    name: str = "difflmm"
    _difflmm: DiffLmm | None = None
    _run_seed: int = 0

    Options = DiffLmmOptions
    ARGS = {info.name: info.help for info in DiffLmmOptions.describe()}
    PATH_ARGS = ("model_path", "model_base", "sd_path", "clip_path")

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "DiffLmmBackend":
        args = embedded.with_tiny_difflmm_defaults(dict(args))  # no folders given: the shipped tiny DiffLMM
        missing = [key for key in cls.PATH_ARGS if not args.get(key)]
        if missing:
            raise InputError("--model-args", None, f"difflmm needs {', '.join(f'{k}=FOLDER' for k in missing)}")
        options = DiffLmmOptions.parse(args, "difflmm")
        for key in cls.PATH_ARGS:
            if not getattr(options, key).is_dir():
                raise InputError(key, str(getattr(options, key)), "no such folder")
        cls.check_paths(options)
        return cls(options)

    @property
    def model_base(self) -> Path:
        return self.options.model_base

    @property
    def sd_path(self) -> Path:
        return self.options.sd_path

    @property
    def clip_path(self) -> Path:
        return self.options.clip_path

    # ------------------------------------------------------------------------------------------ protocol

    def generate(self, requests: Sequence[Request], settings: GenerationSettings) -> list[Prediction]:
        self._run_seed = settings.seed
        return super().generate(requests, settings)

    def fingerprint(self) -> Mapping[str, Any]:
        base = dict(super().fingerprint())
        base["vision_noise"] = "VAE sample then U-Net noise from torch.Generator(cpu).manual_seed(sample_seed(seed, doc_id))"
        return base

    def checkpoint_files(self) -> dict[str, Any]:
        files = super().checkpoint_files()
        files["clip"] = (self.clip_path, weight_files(self.clip_path) + [self.clip_path / "config.json"])
        files["sd"] = (self.sd_path, _diffusers_files(self.sd_path))
        return files

    # ------------------------------------------------------------------------------------------ hooks

    def _load(self, device: str) -> None:
        if self._model is not None and device == self._device:
            return
        from gcgbench.models.difflmm.loading import load_difflmm
        from gcgbench.models.difflmm.vision import OPENAI_CLIP_MEAN, preprocess_image

        dtype = ll.resolve_dtype(self.options.dtype, device)
        with phase(f"loading {self.name}"):
            self._difflmm = load_difflmm(self.model_path, self.model_base, self.sd_path, self.clip_path, dtype, device)
        vision = self._difflmm.vision
        self._model, self._tokenizer = DiffLmmLM(self._difflmm), self._difflmm.tokenizer
        encoder = (SlowLlamaTokenizer.from_folder(self.model_base) if (self.model_base / "tokenizer.model").is_file()
                   else HfChunkEncoder(self._tokenizer))
        self._prompting = Prompting(encoder, IMAGE_TOKEN_INDEX, vision.num_patches,
                                    lambda image: preprocess_image(image, vision.resolution),
                                    tuple(int(v * 255) for v in OPENAI_CLIP_MEAN))
        self._device = device
        self._sam = None

    def _batch(self, requests: Sequence[Request], questions: Sequence[str],
               answers: Sequence[Sequence[str]] | None = None) -> Any:
        batch = super()._batch(requests, questions, answers)
        if batch.pixel_values is not None:
            batch.pixel_values = self.image_tokens(batch.pixel_values, [r.doc_id for r in requests if r.image_path])
        return batch

    def image_tokens(self, pixel_values: torch.Tensor, doc_ids: Sequence[str]) -> torch.Tensor:
        """Pre-processed images of `doc_ids` → (B, n, hidden) image tokens, noise seeded per doc."""
        generators = [torch.Generator().manual_seed(sample_seed(self._run_seed, doc_id)) for doc_id in doc_ids]
        return self._difflmm.image_tokens(pixel_values, generators)


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

