"""Tiny random-weight checkpoints in the official layouts, for tests and benchmarks (never shipped in the package).

`write_tiny_llava(folder)`: LLaVA-1.5 in the llava-hf layout (see its docstring).

`write_tiny_glamm(folder)` writes `folder/glamm` (as `MBZUAI/GLaMM-GCG`: config.json with GLaMM's keys,
`pytorch_model-0000{1,2}-of-00002.bin` + `pytorch_model.bin.index.json` with the official key names, plus the
`rotary_emb.inv_freq` keys transformers 4.28 saved; `tokenizer.model`, `added_tokens.json`,
`tokenizer_config.json`, `special_tokens_map.json`, `generation_config.json`) and `folder/clip` (as
`openai/clip-vit-large-patch14-336`: a full CLIPModel with text tower, old-style preprocessor_config.json).

Sizes: Llama 64 wide / 2 layers; CLIP 64 wide / 10 layers (enough for the 4 region levels) at 112 px with
14 px patches (8×8 = 64 image tokens; the real one has 336 px, 24×24 = 576); SAM 32 wide / 2 blocks at 64 px, prompts 16 wide; region
encoder 64 → 32 → 64. The tokenizer is a sentencepiece BPE model (byte fallback, identity normalisation,
dummy prefix, like LLaMA's) trained on the prompts' words; GLaMM's 7 tokens follow its vocabulary in the
official order (the official ids 32000–32006 need LLaMA's 32000-piece vocabulary: here they are remapped to
vocab_size + 0…6, which is how added_tokens.json of any base vocabulary lays them out).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from gcgbench.models.glamm.modules import GlammNetwork, GlammSpec
from gcgbench.models.glamm.tokenizer import GLAMM_TOKENS, LLAVA_V1_SYSTEM

CORPUS = (
    LLAVA_V1_SYSTEM,
    "USER: The image provides an overview of the picture. ASSISTANT:",
    ("Could you please give me a detailed description of the image? Please respond with interleaved segmentation "
     "masks for the corresponding parts of the answer."),
    "What is the red circle in this image? Please output segmentation mask. It is a result.",
    "Can you provide me with a detailed description of the region in the picture marked by?",
    "The image shows a red circle, a blue square and a green triangle on a gray background, left right top bottom.",
    "small large yellow white black beige shapes objects scene near with of and two three 0123456789",
)
TEST_SIZES = {
    "sam": {"encoder_embed_dim": 32, "encoder_depth": 2, "encoder_num_heads": 2, "encoder_global_attn_indexes": [1],
            "image_size": 64, "patch_size": 16, "window_size": 2, "mlp_ratio": 2.0, "prompt_embed_dim": 16,
            "mask_in_chans": 4, "decoder_depth": 2, "decoder_mlp_dim": 32, "decoder_num_heads": 2,
            "iou_head_hidden_dim": 16},
    "region_encoder": {"pos_hidden": 16, "hidden": 32},
}
CLIP_SIDE = 112   # 8×8 patch tokens (the real 336 px gives 24×24 = 576; smaller keeps the tests fast)
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def write_tiny_glamm(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """(GLaMM checkpoint folder, CLIP folder) under `folder`; ~1.5M parameters, a few MB."""
    folder = Path(folder)
    model_dir, clip_dir = folder / "glamm", folder / "clip"
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    vocab = _write_tokenizer(model_dir)
    config = {
        "architectures": ["GLaMMForCausalLM"], "model_type": "llava", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": vocab + len(GLAMM_TOKENS),
        "rms_norm_eps": 1e-5, "max_position_embeddings": 4096, "hidden_act": "silu", "bos_token_id": 1,
        "eos_token_id": 2, "pad_token_id": 0, "out_dim": 16, "mm_hidden_size": 64, "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2, "mm_use_im_start_end": True, "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "num_level_reg_features": 4, "with_region": True, "bbox_token_idx": vocab + GLAMM_TOKENS.index("<bbox>"),
        "torch_dtype": "bfloat16", "use_cache": False, "gcgbench_test_sizes": TEST_SIZES,
    }
    (model_dir / "config.json").write_text(json.dumps(config, indent=2))
    (model_dir / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "max_length": 4096, "pad_token_id": 0, "use_cache": False}))
    network = GlammNetwork(GlammSpec.from_folder(model_dir))
    _write_shards(model_dir, network, config["num_hidden_layers"], config["hidden_size"] // config["num_attention_heads"])
    _write_clip(clip_dir)
    return model_dir, clip_dir


def _write_tokenizer(folder: Path) -> int:
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4), model_writer=model, vocab_size=400, hard_vocab_limit=False,
        model_type="bpe", byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        num_threads=1, minloglevel=2)
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = processor.GetPieceSize()
    (folder / "added_tokens.json").write_text(json.dumps({t: vocab + i for i, t in enumerate(GLAMM_TOKENS)}))
    special = {"content": None, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"__type": "AddedToken", **special, "content": "<s>"}, "clean_up_tokenization_spaces": False,
        "eos_token": {"__type": "AddedToken", **special, "content": "</s>"}, "legacy": False, "model_max_length": 1536,
        "pad_token": None, "padding_side": "right", "tokenizer_class": "LlamaTokenizer",
        "unk_token": {"__type": "AddedToken", **special, "content": "<unk>"}}, indent=2))
    (folder / "special_tokens_map.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                                "pad_token": "<unk>", "unk_token": "<unk>"}))
    return vocab


def _write_shards(folder: Path, network: GlammNetwork, layers: int, head_dim: int) -> None:
    """Two shards and their index, as `save_pretrained(max_shard_size=…)` of transformers 4.28 writes them."""
    state = {key: value.detach().to(torch.bfloat16).clone() for key, value in network.state_dict().items()}
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    for layer in range(layers):
        state[f"model.layers.{layer}.self_attn.rotary_emb.inv_freq"] = inv_freq.clone()
    names = ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")
    shards: tuple[dict, dict] = ({}, {})
    for key, value in state.items():
        shards[0 if key.startswith(("model.embed_tokens", "model.layers")) else 1][key] = value
    for name, shard in zip(names, shards):
        torch.save(shard, folder / name)
    size = sum(v.numel() * v.element_size() for v in state.values())
    index = {"metadata": {"total_size": size},
             "weight_map": {key: names[number] for number, shard in enumerate(shards) for key in shard}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2, sort_keys=True))


def _write_clip(folder: Path) -> None:
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "vocab_size": 99, "max_position_embeddings": 16,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 10, "num_attention_heads": 2,
                       "image_size": CLIP_SIDE, "patch_size": 14},
        projection_dim=32)
    CLIPModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": CLIP_SIDE, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "resample": 3, "size": CLIP_SIDE}, indent=2))


# ---------------------------------------------------------------------------------------------- tiny LLaVA

TINY_WORDS = (
    "a an the this that it we you me there in on with of and to near left right top bottom is are be can see "
    "gray grey red green blue yellow beige white black small large two three image picture background circle "
    "circles square squares triangle triangles shape shapes object objects scene region . , : ? \" ' "
    "USER ASSISTANT A chat between curious human artificial intelligence assistant The gives helpful detailed "
    "polite answers human's questions Describe describe detail Could could please Please give description "
    "respond interleaved segmentation masks mask for corresponding parts answer What what output In shown"
).split()


def write_tiny_llava(folder: Path, seed: int = 0, layers: int = 2, hidden: int = 32, grid: int = 6) -> Path:
    """A random-weight LLaVA in the llava-hf layout (CLIP vision with 8 px patches, `grid`² image tokens —
    6×6 at 48 px by default, 24×24 like LLaVA-1.5 with grid=24 — a Llama text model, a word-level tokenizer
    with `<image>`, LlavaProcessor), for tests and benchmarks.

    Default config as in the methods notes §3.1 (verified with transformers 5.x); ~60k parameters."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    folder = Path(folder)
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {word: index for index, word in enumerate(dict.fromkeys(specials + list(TINY_WORDS)))}
    vocab["<image>"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", clean_up_tokenization_spaces=False)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    side = 8 * grid
    image_processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", image_token="<image>",
                               num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=side, patch_size=8),
        text_config=LlamaConfig(vocab_size=max(128, len(vocab)), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                                bos_token_id=1, eos_token_id=2, pad_token_id=0),
        image_token_index=vocab["<image>"], image_seq_length=grid * grid)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
