"""Prompt ids as the upstream code builds them: LLaVA's `tokenizer_image_token` over the tokenizer upstream ran.

`tokenizer_image_token(prompt, encode, bos_id, image_id, n)` restates LLaVA `llava/mm_utils.py`
(haotian-liu/LLaVA; groundLMM and GLaMM carry the same function): the prompt is split at "<image>", every
chunk is tokenized on its own WITH the BOS token (`tokenizer(chunk).input_ids`), the first chunk's BOS is
kept once (when the first chunk starts with it, every chunk loses its first id), and the chunks are joined
by the image placeholder. Upstream joins with ONE placeholder (IMAGE_TOKEN_INDEX = -200) that the model
replaces by the n image features; we put n copies of `image_id` there, which gives the same embedding
sequence (HF LLaVA ≥ 4.4x expects the expanded ids).

`SlowLlamaTokenizer` is transformers 4.37's slow `LlamaTokenizer` (sentencepiece), the tokenizer
LLaVA's `load_pretrained_model` asks for (`AutoTokenizer.from_pretrained(..., use_fast=False)`,
`llava/model/builder.py`; LLaVA v1.2.2 pins transformers 4.37.2). transformers 5 has no slow Llama
tokenizer any more, and its `LlamaTokenizer` (tokenizers `Metaspace`, prepend scheme "always"/"first")
differs from 4.37 on text that starts with a space (4.37: "▁" + "▁is…", 5.x: "▁is…") and, for
`legacy=false`, after special tokens. Restated from `transformers/models/llama/tokenization_llama.py`
(4.37.2) and `tokenization_utils.py::PreTrainedTokenizer.tokenize`:

- the text is split at the added/special tokens (`<s>`, `</s>`, `<unk>` and the folder's added tokens;
  none strips whitespace);
- legacy (`"legacy": true` in tokenizer_config.json, or no flag — 4.37's default): every non-special
  piece is `sp.encode(piece)` with sentencepiece's dummy prefix, so each piece gets a leading "▁";
- non-legacy: the model is loaded with `add_dummy_prefix = False`; the whole text becomes
  "▁" + text (with "▁" in the text replaced by " ") before the split; a piece that starts with "▁" or " "
  is encoded as `sp.encode("<unk>" + piece)` minus the `<unk>` pieces; if the first two tokens are "▁" and a
  special token, the "▁" is dropped;
- `encode(text)` = [BOS] + ids (add_bos_token), `add_special_tokens=False` leaves BOS out.

A legacy-style `tokenizer.json` (normaliser `Prepend("▁")` + `Replace(" ", "▁")`, as llava-hf's, which
F-LMM's transformers 4.39 loads as a fast tokenizer) tokenizes each non-special piece exactly as the
legacy slow tokenizer does, so the same class stands for it (`legacy=True`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gcgbench.api.errors import InputError

SPIECE_UNDERLINE = "\u2581"
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ("<s>", "</s>", "<unk>")


def tokenizer_image_token(prompt: str, encode: Callable[[str], list[int]], bos_id: int | None, image_id: int,
                          n_image_tokens: int = 1) -> list[int]:
    """LLaVA `tokenizer_image_token` with the placeholder repeated `n_image_tokens` times (module docstring)."""
    chunks = [list(encode(chunk)) for chunk in prompt.split(IMAGE_TOKEN)]
    ids: list[int] = []
    offset = 0
    if chunks and chunks[0] and bos_id is not None and chunks[0][0] == bos_id:
        offset = 1
        ids.append(chunks[0][0])
    for index, chunk in enumerate(chunks):
        if index:
            ids.extend([image_id] * n_image_tokens)
        ids.extend(chunk[offset:])
    return ids


@dataclass
class SlowLlamaTokenizer:
    """transformers 4.37's slow LlamaTokenizer encoding (module docstring), from a folder's tokenizer.model."""

    model_file: Path
    legacy: bool = True
    added: dict[str, int] = field(default_factory=dict)     # added tokens (beyond <s>, </s>, <unk>) → id
    add_bos_token: bool = True
    _sp: Any = None
    _splitter: Any = None

    def __post_init__(self) -> None:
        import sentencepiece as spm

        self._sp = spm.SentencePieceProcessor()
        if self.legacy:
            self._sp.Load(str(self.model_file))
        else:
            from sentencepiece import sentencepiece_model_pb2 as model_pb2

            proto = model_pb2.ModelProto.FromString(Path(self.model_file).read_bytes())
            proto.normalizer_spec.add_dummy_prefix = False
            self._sp.LoadFromSerializedProto(proto.SerializeToString())
        self._specials = {token: self._sp.piece_to_id(token) for token in SPECIAL_TOKENS}
        self._specials.update(self.added)
        tokens = sorted(self._specials, key=len, reverse=True)
        self._splitter = re.compile("(" + "|".join(re.escape(t) for t in tokens) + ")")
        self._unk_length = len(self._sp.encode("<unk>", out_type=str))

    @classmethod
    def from_folder(cls, folder: Path, legacy: bool | None = None) -> "SlowLlamaTokenizer":
        """`tokenizer.model` + `tokenizer_config.json` (`legacy`, default true as in 4.37; `add_bos_token`) +
        the added tokens of `added_tokens.json` / `tokenizer_config.json` `added_tokens_decoder`."""
        folder = Path(folder)
        model = folder / "tokenizer.model"
        if not model.is_file():
            raise InputError(folder, None, "no tokenizer.model (the sentencepiece model upstream's slow tokenizer reads)")
        config = _read_json(folder / "tokenizer_config.json")
        added = {str(k): int(v) for k, v in _read_json(folder / "added_tokens.json").items()}
        for index, token in (config.get("added_tokens_decoder") or {}).items():
            content = token.get("content") if isinstance(token, dict) else None
            if content and content not in SPECIAL_TOKENS:
                added.setdefault(content, int(index))
        chosen = legacy if legacy is not None else config.get("legacy")
        return cls(model, True if chosen is None else bool(chosen), added, bool(config.get("add_bos_token", True)))

    @property
    def bos_token_id(self) -> int:
        return self._specials["<s>"]

    @property
    def eos_token_id(self) -> int:
        return self._specials["</s>"]

    def tokenize(self, text: str) -> list[str]:
        """Pieces (sentencepiece pieces and special tokens) of `text`."""
        if not text:
            return []
        if not self.legacy:
            text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
        pieces: list[str] = []
        for part in self._splitter.split(text):
            if not part:
                continue
            if part in self._specials:
                pieces.append(part)
            else:
                pieces.extend(self._encode_piece(part))
        if not self.legacy and len(pieces) > 1 and pieces[0] == SPIECE_UNDERLINE and pieces[1] in self._specials:
            pieces = pieces[1:]
        return pieces

    def _encode_piece(self, text: str) -> list[str]:
        tokens = self._sp.encode(text, out_type=str)
        if self.legacy or not text.startswith((SPIECE_UNDERLINE, " ")):
            return tokens
        tokens = self._sp.encode("<unk>" + text, out_type=str)
        return tokens[self._unk_length:] if len(tokens) >= self._unk_length else tokens

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [self._specials[p] if p in self._specials else self._sp.piece_to_id(p) for p in self.tokenize(text)]
        return ([self.bos_token_id] if add_special_tokens and self.add_bos_token else []) + ids

    def __call__(self, text: str) -> Any:
        """`tokenizer(text).input_ids`, the call `tokenizer_image_token` makes."""
        from types import SimpleNamespace

        return SimpleNamespace(input_ids=self.encode(text))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(path, None, f"not JSON ({error})") from None
    return data if isinstance(data, dict) else {}
