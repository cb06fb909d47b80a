"""A BERT encoder's last hidden state in numpy: the phrase embeddings of GCG mask recall without torch.

Mask recall (GLaMM `eval/gcg/evaluate.py::text_similarity_bert`) embeds phrases with `bert-base-uncased`; the
bundled sample uses all-MiniLM-L6-v2, also a BERT. Both are small enough that loading torch and transformers
(~3–4 s) costs more than the forward pass, and scoring must not need the model stack. This module computes
`transformers.BertModel` (eval mode, absolute positions, token type 0) from the folder's `model.safetensors`:

    h⁰ = LayerNorm(E_word[ids] + E_pos[0..L) + E_type[0])
    per layer: a = LayerNorm(h + Attn(h) W_o + b_o),  Attn = softmax(Q Kᵀ / √d_head + m) V per head,
               m = finfo(float32).min where the attention mask is 0 (transformers' additive mask);
               h' = LayerNorm(a + GELU(a W_i + b_i) W_out + b_out),  GELU(x) = x/2 · (1 + erf(x / √2))

all in float32, as transformers computes it on a CPU; the outputs agree with `BertModel` to float32 rounding
(tests/test_text_similarity.py: < 1e-5 on every phrase of the test set). Tokenization is the folder's fast
tokenizer (`tokenizer.json`) through the `tokenizers` library that transformers itself wraps, or, with only a
`vocab.txt`, the same normaliser / pre-tokeniser / WordPiece / `[CLS] … [SEP]` pipeline transformers' BERT
converter builds from it (lower-casing and accent stripping from `tokenizer_config.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from safetensors.numpy import load_file
from scipy.special import erf
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from gcgbench.api.errors import InputError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HIDDEN_ACTIVATIONS = ("gelu",)


@dataclass(frozen=True)
class BertLayer:
    query: tuple[np.ndarray, np.ndarray]
    key: tuple[np.ndarray, np.ndarray]
    value: tuple[np.ndarray, np.ndarray]
    attention_out: tuple[np.ndarray, np.ndarray]
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate: tuple[np.ndarray, np.ndarray]
    output: tuple[np.ndarray, np.ndarray]
    output_norm: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class BertWeights:
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    embedding_norm: tuple[np.ndarray, np.ndarray]
    layers: tuple[BertLayer, ...]
    heads: int
    eps: float

    @property
    def hidden_size(self) -> int:
        return int(self.word.shape[1])


def is_bert_folder(folder: Path) -> bool:
    """Whether the folder's `config.json` describes a BERT this module computes (else transformers must)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(config, dict) and config.get("model_type") == "bert"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and config.get("hidden_act", "gelu") in HIDDEN_ACTIVATIONS)


def _tensors(folder: Path) -> Mapping[str, np.ndarray]:
    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"))
    try:
        import torch
    except ImportError:
        raise InputError(folder, None, "only pytorch_model.bin here, which needs torch to read: add "
                                       "model.safetensors or pip install torch") from None
    state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    return {name: tensor.float().numpy() for name, tensor in state.items()}


def _key_reader(tensors: Mapping[str, np.ndarray], folder: Path):
    """name → float32 array, whatever the checkpoint's prefix (`bert.` in BertForPreTraining files) and
    LayerNorm naming (`gamma`/`beta` in the original Google conversions)."""
    prefix = "bert." if any(name.startswith("bert.embeddings.") for name in tensors) else ""

    def read(name: str) -> np.ndarray:
        for candidate in (name, name.replace(".weight", ".gamma"), name.replace(".bias", ".beta")):
            if prefix + candidate in tensors:
                return np.ascontiguousarray(tensors[prefix + candidate], dtype=np.float32)
        raise InputError(folder, None, f"not a BERT checkpoint: no tensor {prefix + name}")

    return read


def load_bert_weights(folder: Path) -> BertWeights:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    read = _key_reader(_tensors(folder), folder)

    def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
        # transposed once here, so the forward pass is x @ W + b
        return np.ascontiguousarray(read(f"{name}.weight").T), read(f"{name}.bias")

    def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
        return read(f"{name}.weight"), read(f"{name}.bias")

    layers = []
    for index in range(int(config["num_hidden_layers"])):
        base = f"encoder.layer.{index}"
        layers.append(BertLayer(
            linear(f"{base}.attention.self.query"), linear(f"{base}.attention.self.key"),
            linear(f"{base}.attention.self.value"), linear(f"{base}.attention.output.dense"),
            norm(f"{base}.attention.output.LayerNorm"), linear(f"{base}.intermediate.dense"),
            linear(f"{base}.output.dense"), norm(f"{base}.output.LayerNorm"),
        ))
    return BertWeights(
        read("embeddings.word_embeddings.weight"), read("embeddings.position_embeddings.weight"),
        read("embeddings.token_type_embeddings.weight"), norm("embeddings.LayerNorm"), tuple(layers),
        int(config["num_attention_heads"]), float(config.get("layer_norm_eps", 1e-12)),
    )


def _layer_norm(x: np.ndarray, weight_bias: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * weight_bias[0] + weight_bias[1]


def _gelu(x: np.ndarray) -> np.ndarray:
    return (x * np.float32(0.5) * (np.float32(1.0) + erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def _affine(x: np.ndarray, weight_bias: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    # one 2-D GEMM: numpy's stacked (batch, length, k) @ (k, n) does not reach BLAS and is ~50x slower
    rows = np.ascontiguousarray(x).reshape(-1, x.shape[-1]) @ weight_bias[0]
    return rows.reshape(*x.shape[:-1], -1) + weight_bias[1]


def last_hidden_state(weights: BertWeights, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(batch, length, hidden) float32 last hidden state of `ids` (batch, length) with 0/1 `mask`."""
    batch, length = ids.shape
    heads = weights.heads
    width = weights.hidden_size // heads
    hidden = weights.word[ids] + weights.position[:length][None] + weights.token_type[0][None, None]
    hidden = _layer_norm(hidden, weights.embedding_norm, weights.eps)
    additive = np.where(mask[:, None, None, :] > 0, np.float32(0.0), np.finfo(np.float32).min).astype(np.float32)
    scale = np.float32(1.0 / np.sqrt(width))

    def split(x: np.ndarray) -> np.ndarray:
        return x.reshape(batch, length, heads, width).transpose(0, 2, 1, 3)

    for layer in weights.layers:
        query, key, value = (split(_affine(hidden, part)) for part in (layer.query, layer.key, layer.value))
        scores = (query @ key.transpose(0, 1, 3, 2)) * scale + additive
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probabilities = scores / scores.sum(axis=-1, keepdims=True)
        context = (probabilities @ value).transpose(0, 2, 1, 3).reshape(batch, length, heads * width)
        attended = _layer_norm(_affine(context, layer.attention_out) + hidden, layer.attention_norm, weights.eps)
        inner = _gelu(_affine(attended, layer.intermediate))
        hidden = _layer_norm(_affine(inner, layer.output) + attended, layer.output_norm, weights.eps)
    return hidden.astype(np.float32, copy=False)


def load_wordpiece(folder: Path, max_length: int):
    """The folder's BERT tokenizer as a `tokenizers.Tokenizer`, truncating at `max_length` tokens with
    [CLS] and [SEP] counted (transformers' `truncation=True, max_length=…`)."""
    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    else:
        settings = {}
        if (folder / "tokenizer_config.json").is_file():
            settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        tokenizer = BertWordPieceTokenizer(
            str(folder / "vocab.txt"), clean_text=True,
            handle_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
            strip_accents=settings.get("strip_accents"), lowercase=bool(settings.get("do_lower_case", True)),
        )
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


class NumpyBertEncoder:
    """Mean of a BERT's last hidden state over the non-pad tokens ([CLS] and [SEP] included), in numpy.

    Texts are batched longest first and padded; the masked mean equals the one-text-at-a-time mean of the
    official `get_bert_embedding` to float32 rounding. `normalize` scales each embedding to unit length
    (sentence-transformers' `Normalize`).
    """

    def __init__(self, folder: Path, name: str, max_length: int, normalize: bool = False, batch_size: int = 64):
        self._weights = load_bert_weights(folder)
        self._tokenizer = load_wordpiece(folder, max_length)
        self.max_length = max_length
        self.normalize = normalize
        self.batch_size = batch_size
        self.name = name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden states, float32, shape (len(texts), hidden_size)."""
        texts = list(texts)
        embeddings = np.zeros((len(texts), self._weights.hidden_size), dtype=np.float32)
        encoded = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda index: -len(encoded[index]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            length = max(len(encoded[index]) for index in chunk)
            ids = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, index in enumerate(chunk):
                ids[row, :len(encoded[index])] = encoded[index]
                mask[row, :len(encoded[index])] = 1.0
            hidden = last_hidden_state(self._weights, ids, mask)
            pooled = (hidden * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
            if self.normalize:
                pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
            embeddings[chunk] = pooled
        return embeddings
