"""What every VLM family of the `aas` backend provides: its checkpoint files, its chat prompt with the image
tokens spelled out, the model inputs of one image and the `TokenLayout` of those tokens.

A family is picked by the checkpoint's `config.json` `model_type` (`FAMILY_MODULES`). Loading reads the files a
transformers processor would read, without instantiating the processor class (several processors also build a
video processor, which needs torchvision): the tokenizer (`AutoTokenizer`), the image processor
(`AutoImageProcessor`, PIL backend so that pixels do not depend on torchvision being installed), the chat template
(`chat_template.jinja`, `chat_template.json`, `processor_config.json` or the tokenizer's) and
`processor_config.json` (image token counts). Each family then replaces the one image placeholder the chat
template writes by the image's tokens exactly as its transformers processor does (`replace_image_token` /
`_get_number_of_features` in `transformers/models/<family>/processing_*.py`), and says where they lie
(`gcgbench.grounding.token_layout`); the model itself checks the number of image tokens at every forward.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Mapping

from gcgbench.api.errors import InputError
from gcgbench.api.lazy import lazy_module
from gcgbench.grounding.token_layout import TokenLayout

torch = lazy_module("torch")   # at first use: `gcgbench models` lists this backend without torch

# model_type → (module under gcgbench.models.aas, family title)
FAMILY_MODULES: dict[str, tuple[str, str]] = {
    "llava_next": ("anyres", "LLaVA-NeXT (llava-hf/llava-v1.6-*-hf, llama3-llava-next)"),
    "llava_onevision": ("anyres", "LLaVA-OneVision (llava-hf/llava-onevision-qwen2-*-ov-hf)"),
    "qwen2_vl": ("qwen2_vl", "Qwen2-VL (Qwen/Qwen2-VL-*-Instruct)"),
    "qwen2_5_vl": ("qwen2_vl", "Qwen2.5-VL (Qwen/Qwen2.5-VL-*-Instruct)"),
    "internvl": ("internvl", "InternVL 2.5/3 in the HF layout (OpenGVLab/InternVL3-*-hf)"),
    "idefics3": ("idefics3", "Idefics3 (HuggingFaceM4/Idefics3-8B-Llama3)"),
    "smolvlm": ("idefics3", "SmolVLM / SmolVLM2 (HuggingFaceTB/SmolVLM-*)"),
}


@dataclass
class Encoded:
    """One prompt with one image: ids (1, L), the model's image inputs, where the image tokens are."""

    input_ids: torch.Tensor
    image_inputs: dict[str, torch.Tensor]
    layout: TokenLayout
    image_columns: torch.Tensor          # (n,) positions of the image tokens in input_ids[0]
    answer_offsets: list[tuple[int, int]]


@dataclass
class CheckpointFiles:
    folder: Path
    config: Any
    tokenizer: Any
    image_processor: Any
    chat_template: str
    processor_config: dict[str, Any]


def read_model_type(folder: Path) -> str:
    """`model_type` of `folder/config.json`; InputError when absent or not a family of FAMILY_MODULES."""
    path = Path(folder) / "config.json"
    try:
        model_type = json.loads(path.read_text()).get("model_type")
    except (OSError, ValueError) as error:
        raise InputError(str(path), None, f"cannot read the model config ({error})") from None
    if model_type not in FAMILY_MODULES:
        raise InputError(str(path), "model_type", f"{model_type!r} is not a family aas reads; known: "
                                                   f"{', '.join(sorted(FAMILY_MODULES))}")
    return model_type


def family_class(model_type: str) -> type["Family"]:
    module, _ = FAMILY_MODULES[model_type]
    return getattr(import_module(f"gcgbench.models.aas.{module}"), "FAMILIES")[model_type]


def _chat_template(folder: Path, tokenizer: Any) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    for name in ("chat_template.json", "processor_config.json"):
        path = folder / name
        if path.is_file():
            template = json.loads(path.read_text()).get("chat_template")
            if template:
                return template
    return getattr(tokenizer, "chat_template", None)


def read_checkpoint(folder: Path) -> CheckpointFiles:
    """The tokenizer, image processor, chat template and processor config of a checkpoint folder."""
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    folder = Path(folder)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        image_processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True, backend="pil")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError("model_path", str(folder), f"cannot load the tokenizer/image processor: "
                                                    f"{str(error).splitlines()[0]}") from None
    template = _chat_template(folder, tokenizer)
    if not template:
        raise InputError("model_path", str(folder), "no chat template (chat_template.jinja, chat_template.json, "
                                                    "processor_config.json or the tokenizer's)")
    path = folder / "processor_config.json"
    processor_config = json.loads(path.read_text()) if path.is_file() else {}
    return CheckpointFiles(folder, config, tokenizer, image_processor, template, processor_config)


class Family:
    """Base class: a family's image placeholder, its expansion and layout (`expand`), its model inputs."""

    name = ""
    placeholder = "<image>"          # what the chat template writes for an image
    options: tuple[str, ...] = ()    # backend options this family reads (image-size knobs)

    def __init__(self, files: CheckpointFiles, options: Mapping[str, str]):
        self.files = files
        self.config = files.config
        self.tokenizer = files.tokenizer
        self.image_processor = files.image_processor
        self.options = dict(options)

    @property
    def image_token_id(self) -> int:
        return int(self.config.image_token_id)

    def prompt(self, question: str) -> str:
        """The chat template's user turn with one image and `question`, plus the generation prompt."""
        from transformers.utils.chat_template_utils import render_jinja_template

        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.files.chat_template,
                                            add_generation_prompt=True, **self._template_specials())
        text = rendered[0]
        if text.count(self.placeholder) != 1:
            raise InputError("model_path", str(self.files.folder), f"the chat template writes {self.placeholder!r} "
                                                                   f"{text.count(self.placeholder)} times for one image")
        return text

    def _template_specials(self) -> dict[str, Any]:
        return {k: v for k, v in self.tokenizer.special_tokens_map.items() if isinstance(v, str)}

    def image_kwargs(self) -> dict[str, Any]:
        return {}

    def sequence_inputs(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs that follow the token sequence (Qwen2-VL's modality types for M-RoPE); none by default."""
        return {}

    def expand(self, image: Any) -> tuple[str, dict[str, torch.Tensor], TokenLayout]:
        """(the placeholder's replacement, the image's model inputs, the layout of its image tokens)."""
        raise NotImplementedError

    def encode(self, image: Any, question: str, answer: str | None = None) -> Encoded:
        text = self.prompt(question)
        replacement, inputs, layout = self.expand(image)
        ids = self.tokenizer(text.replace(self.placeholder, replacement), return_tensors="pt")["input_ids"]
        offsets: list[tuple[int, int]] = []
        if answer is not None:
            tail = self.tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
            ids = torch.cat([ids, torch.tensor([tail["input_ids"]], dtype=torch.long)], dim=1)
            offsets = [tuple(o) for o in tail["offset_mapping"]]
        columns = (ids[0] == self.image_token_id).nonzero().squeeze(-1)
        if len(columns) != layout.n_tokens:
            raise InputError("model_path", str(self.files.folder), f"{len(columns)} image tokens in the prompt, the "
                                                                   f"{self.name} layout has {layout.n_tokens}")
        return Encoded(ids, inputs, layout, columns, offsets)

    def process(self, image: Any, **kwargs: Any) -> Any:
        try:
            return self.image_processor(images=[image], return_tensors="pt", **self.image_kwargs(), **kwargs)
        except (ValueError, TypeError) as error:
            raise InputError("model_path", str(self.files.folder), f"the image processor failed: {error}") from None


def positive_int(options: Mapping[str, str], key: str) -> int | None:
    value = options.get(key, "")
    if value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError("--model-args", key, f"must be a positive integer, got {value!r}")
    return int(value)
