"""Every backend's prompt ids equal upstream's construction over the tokenizer upstream ran, with a legacy and a
non-legacy Llama tokenizer (`tests/llama_tokenizers.py`: ids recorded with transformers 4.37.2).

- `SlowLlamaTokenizer` = transformers 4.37's slow LlamaTokenizer (and, with `<image>` added, its fast one);
- llava-as (llava-hf layout), difflmm: LLaVA `tokenizer_image_token` over the slow tokenizer (the LLaVA-repo
  layouts are in test_llava_repo_layouts.py);
- flmm: one-pass `tokenizer.encode(INSTRUCTION.format(input="<image>\\n…"))` over the 4.39 fast tokenizer;
- glamm: transformers 4.28's slow tokenizer, which knows no `legacy` flag.
"""

from __future__ import annotations

import json
import shutil

import pytest

from gcgbench.models.llava.tokenizer import SlowLlamaTokenizer, tokenizer_image_token
from tests.llama_tokenizers import SPM_MODEL, recorded, recorded_ids, write_llama_tokenizer

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
FLMM_PROMPT = "USER: <image>\nPlease give me a description of the image. ASSISTANT:"


def upstream_tokenizer_image_token(prompt, tokenizer_ids, bos, image_index=-200):
    """llava/mm_utils.py tokenizer_image_token, restated literally."""
    prompt_chunks = [tokenizer_ids(chunk) for chunk in prompt.split("<image>")]

    def insert_separator(x, sep):
        return [ele for sublist in zip(x, [sep] * len(x)) for ele in sublist][:-1]

    input_ids, offset = [], 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == bos:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in insert_separator(prompt_chunks, [image_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


@pytest.mark.parametrize("legacy", [True, False])
def test_slow_tokenizer_gives_transformers_437_ids(tmp_path, legacy):
    data = recorded()
    ours = SlowLlamaTokenizer.from_folder(write_llama_tokenizer(tmp_path, legacy))
    key = f"slow_legacy_{str(legacy).lower()}"
    assert [ours.encode(s) for s in data["strings"]] == data[key]
    assert [ours.encode(s, add_special_tokens=False) for s in data["strings"]] == data[f"{key}_no_special"]
    fast = SlowLlamaTokenizer(SPM_MODEL, True, {"<image>": 420})      # 4.37's fast tokenizer, either flag
    assert [fast.encode(s) for s in data["strings"]] == data[f"fast_legacy_{str(legacy).lower()}_image_420"]


def test_the_flag_matters_where_upstream_says():
    data = recorded()
    differs = [s for s, a, b in zip(data["strings"], data["slow_legacy_true"], data["slow_legacy_false"]) if a != b]
    assert set(differs) == {"a red circle </s> and more", "<s>start", "x<s>y"}   # text next to a special token
    assert SYSTEM + " USER: " not in differs                          # LLaVA's prompt chunks: same either way


@pytest.mark.parametrize("prompt", ["no image here", "<image>\nfirst", "a <image> b <image> c", "<image>", "x<image>"])
@pytest.mark.parametrize("legacy", [True, False])
def test_tokenizer_image_token_restates_llava(tmp_path, prompt, legacy):
    tokenizer = SlowLlamaTokenizer.from_folder(write_llama_tokenizer(tmp_path, legacy))
    expected = upstream_tokenizer_image_token(prompt, tokenizer.encode, tokenizer.bos_token_id)
    assert tokenizer_image_token(prompt, tokenizer.encode, tokenizer.bos_token_id, -200) == expected
    expanded = tokenizer_image_token(prompt, tokenizer.encode, tokenizer.bos_token_id, 7, 3)
    assert expanded == [t for i in expected for t in ([7, 7, 7] if i == -200 else [i])]


@pytest.mark.parametrize("legacy", [True, False])
def test_llava_as_on_the_llava_hf_layout(tmp_path, legacy):
    """A llava-hf folder with a sentencepiece tokenizer: upstream's slow tokenizer, chunk by chunk."""
    from gcgbench.data.sample import write_sample
    from gcgbench.api.task import DataPaths
    from gcgbench.models.registry import load_backend
    from gcgbench.tasks.registry import get_task
    from tests.tiny_checkpoints import write_tiny_llava

    folder = write_tiny_llava(tmp_path / "llava")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    write_llama_tokenizer(folder, legacy, {"<image>": 420})
    backend = load_backend("llava-as", {"model_path": str(folder), "max_new_tokens": "2"})
    backend._load("cpu")
    request = get_task("gcg_val").requests(get_task("gcg_val").docs(DataPaths(write_sample(tmp_path / "d", 2)))[0])
    key = f"slow_legacy_{str(legacy).lower()}"
    chunks = {SYSTEM + " USER: ": recorded_ids(key, SYSTEM + " USER: "),
              "\nDescribe the image in detail. ASSISTANT:": recorded_ids(key, "\nDescribe the image in detail. ASSISTANT:")}
    single = upstream_tokenizer_image_token(f"{SYSTEM} USER: <image>\nDescribe the image in detail. ASSISTANT:",
                                            chunks.__getitem__, 1)
    image_id = backend._model.config.image_token_id
    expected = [t for i in single for t in ([image_id] * 36 if i == -200 else [i])]
    assert backend._batch([request], [backend._question(request)]).input_ids[0].tolist() == expected


@pytest.mark.parametrize("legacy", [True, False])
def test_difflmm_prompt_uses_the_bases_slow_tokenizer(tmp_path, legacy):
    from gcgbench.models import embedded
    from gcgbench.models.registry import load_backend

    root = tmp_path / "tiny"
    shutil.copytree(embedded.tiny_difflmm_path(), root)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (root / "base" / name).unlink(missing_ok=True)
    write_llama_tokenizer(root / "base", legacy)
    backend = load_backend("difflmm", {key: str(root / sub) for key, sub in embedded.DIFFLMM_PARTS.items()})
    backend._load("cpu")
    key = f"slow_legacy_{str(legacy).lower()}"
    chunks = {SYSTEM + " USER: ": recorded_ids(key, SYSTEM + " USER: "),
              "\nDescribe the image . ASSISTANT:": recorded_ids(key, "\nDescribe the image . ASSISTANT:")}
    single = upstream_tokenizer_image_token(f"{SYSTEM} USER: <image>\nDescribe the image . ASSISTANT:",
                                            chunks.__getitem__, 1)
    n = backend._prompting.n_image_tokens
    assert backend._prompting.prompt_ids("Describe the image .") == [   # the question whose 4.37 ids are recorded
        t for i in single for t in ([-200] * n if i == -200 else [i])]


@pytest.mark.parametrize("legacy", [True, False])
def test_flmm_prompt_is_one_pass_over_the_439_fast_tokenizer(tmp_path, legacy):
    """F-LMM: `tokenizer.encode(PROMPT_TEMPLATE.vicuna['INSTRUCTION'].format(input=prompt))` with llava-hf's
    legacy-style tokenizer.json (its legacy flag changes nothing in 4.39), `<image>` expanded."""
    from gcgbench.models.flmm import loading as fl
    from gcgbench.models.flmm.backend import flmm_encoder

    folder = write_llama_tokenizer(tmp_path, legacy, {"<image>": 420})
    (folder / "tokenizer.json").write_text(json.dumps({"normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None}))
    encoder = flmm_encoder(folder, tokenizer=None)
    ids = fl.prompt_ids(encoder, fl.FLMM_PROMPT, 420, 5)
    single = recorded_ids(f"fast_legacy_{str(legacy).lower()}_image_420", FLMM_PROMPT)
    assert ids == [t for i in single for t in ([420] * 5 if i == 420 else [i])]
    assert single[single.index(420) + 1] == 358                          # the "▁" transformers 5 drops (legacy false)


def test_glamm_prompt_ids_ignore_the_legacy_flag(tmp_path):
    """GLaMM's transformers 4.28 tokenizer predates `legacy`: both flags give the same, chunk-by-chunk ids."""
    from gcgbench.models.glamm import tokenizer as gt
    from tests.tiny_checkpoints import write_tiny_glamm

    model_dir, _ = write_tiny_glamm(tmp_path / "glamm")
    prompt = gt.llava_v1_prompt([(gt.with_image("Please describe."), None)])
    ids = []
    for legacy in (True, False):
        config = json.loads((model_dir / "tokenizer_config.json").read_text())
        (model_dir / "tokenizer_config.json").write_text(json.dumps({**config, "legacy": legacy}))
        tokenizer = gt.GlammTokenizer.from_folder(model_dir)
        ids.append(gt.tokenizer_image_token(prompt, tokenizer))
        assert ids[-1] == upstream_tokenizer_image_token(prompt, tokenizer.encode, tokenizer.bos_id)
    assert ids[0] == ids[1]
