"""A tiny Llama tokenizer for prompt-id tests, and what transformers 4.37.2 made of it.

`data/llama_spm/tokenizer.model`: a sentencepiece BPE model (420 pieces) trained on a few prompt-like
sentences with Llama-2's normaliser settings (identity normalisation, dummy "▁" prefix, whitespace kept,
byte fallback, digits split; <unk>=0, <s>=1, </s>=2). `data/llama_spm/transformers_4_37_ids.json`: the ids
transformers 4.37.2 (tokenizers 0.15.2, the version LLaVA v1.2.2 / groundLMM pin) gave for its `strings`
with the slow `LlamaTokenizer` (`legacy` true and false: `slow_legacy_*`, with and without BOS) and the fast
one converted from it with `<image>` added as a special token (id 420: `fast_legacy_*_image_420`), recorded
at development time in a throwaway environment (never installed in CI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

DATA = Path(__file__).parent / "data" / "llama_spm"
SPM_MODEL = DATA / "tokenizer.model"


def recorded() -> dict:
    return json.loads((DATA / "transformers_4_37_ids.json").read_text())


def recorded_ids(key: str, text: str) -> list[int]:
    data = recorded()
    return data[key][data["strings"].index(text)]


def write_llama_tokenizer(folder: Path, legacy: bool, added: dict[str, int] | None = None) -> Path:
    """A Llama tokenizer folder (tokenizer.model + tokenizer_config.json) with the given `legacy` flag."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SPM_MODEL, folder / "tokenizer.model")
    config = {"tokenizer_class": "LlamaTokenizer", "legacy": legacy, "add_bos_token": True, "add_eos_token": False,
              "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
              "clean_up_tokenization_spaces": False, "model_max_length": 4096}
    if added:
        config["added_tokens_decoder"] = {str(i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                                                   "normalized": False, "single_word": False} for t, i in added.items()}
        config["additional_special_tokens"] = list(added)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    (folder / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                                 "unk_token": "<unk>"}))
    return folder
