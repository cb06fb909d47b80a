"""The `flmm` backend on LLaVA-NeXT: a tiny random-weight `LlavaNextForConditionalGeneration` written with the
key names and files of `llava-hf/llava-v1.6-vicuna-7b-hf` (safetensors, preprocessor_config.json,
processor_config.json), a segment-anything SAM and an F-LMM `.pth` with the official key names, loaded through
the normal path (`lmm=auto` reads config.json) and run end to end on the bundled sample."""

import json

import pytest
import torch

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.api.types import Request
from gcgbench.data.sample import write_sample
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from gcgbench.models.flmm import loading as fl
from gcgbench.models.flmm import next as fn
from gcgbench.models.flmm.backend import FlmmBackend
from gcgbench.models.flmm.head import FlmmHeads
from gcgbench.models.registry import load_backend
from gcgbench.runner.evaluate import infer_task
from gcgbench.tasks.registry import get_task
from tests.test_flmm_backend import OFFICIAL_KEYS, tiny_tokenizer, write_tiny_llava

LAYERS, HEADS, HIDDEN = 2, 4, 32
TILE, PATCH = 48, 8
PINPOINTS = [[48, 96], [96, 48], [96, 96]]
# key names as llava-hf/llava-v1.6-vicuna-7b-hf's model-0000x-of-00004.safetensors hold them
HUB_KEYS = ["image_newline", "language_model.lm_head.weight", "language_model.model.embed_tokens.weight",
            "language_model.model.layers.0.self_attn.q_proj.weight", "language_model.model.norm.weight",
            "multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_2.bias",
            "vision_tower.vision_model.embeddings.patch_embedding.weight",
            "vision_tower.vision_model.encoder.layers.0.self_attn.k_proj.weight",
            "vision_tower.vision_model.post_layernorm.weight", "vision_tower.vision_model.pre_layrnorm.weight"]


def write_tiny_llava_next(folder, text_model="llama"):
    """A llava-hf `llava-v1.6-*-hf` folder at tiny sizes: 48-px tiles of 8-px patches (6×6 base grid)."""
    from safetensors.torch import load_file, save_file
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration, MistralConfig

    tokenizer = tiny_tokenizer()
    text_class = {"llama": LlamaConfig, "mistral": MistralConfig}[text_model]
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       image_size=TILE, patch_size=PATCH),
        text_config=text_class(vocab_size=128, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=LAYERS,
                               num_attention_heads=HEADS, num_key_value_heads=HEADS, bos_token_id=1, eos_token_id=2,
                               pad_token_id=3),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), image_grid_pinpoints=PINPOINTS,
        image_seq_length=(TILE // PATCH) ** 2)
    torch.manual_seed(0)
    LlavaNextForConditionalGeneration(config).save_pretrained(folder)
    weights = folder / "model.safetensors"
    state = load_file(weights)
    hub = {("vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k): v
           for k, v in state.items()}
    save_file(hub, weights, metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "aspect_ratio_setting": "anyres", "crop_size": {"height": TILE, "width": TILE}, "do_center_crop": True,
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_grid_pinpoints": PINPOINTS, "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "LlavaNextImageProcessor", "image_std": [0.26862954, 0.26130258, 0.27577711],
        "processor_class": "LlavaNextProcessor", "resample": 3, "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": TILE}}))
    (folder / "processor_config.json").write_text(json.dumps({
        "image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": PATCH,
        "processor_class": "LlavaNextProcessor", "vision_feature_select_strategy": "default"}))
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("flmm_next")
    write_tiny_llava_next(root / "llava-next")
    torch.manual_seed(1)
    torch.save(build_tiny_sam().state_dict(), root / "sam.pth")
    heads = FlmmHeads(LAYERS, HEADS, HIDDEN, build_tiny_sam(), attention_grids=2)
    state = heads.checkpoint_state()
    torch.save(state, root / "frozen_llava_next_vicuna_7b_unet_sam_l_refcoco_png.pth")
    return {"root": root, "state": state,
            "args": {"model_path": str(root / "llava-next"), "sam_checkpoint": str(root / "sam.pth"),
                     "checkpoint": str(root / "frozen_llava_next_vicuna_7b_unet_sam_l_refcoco_png.pth"),
                     "sam_type": TINY_TEST_SAM, "max_new_tokens": "12"}}


@pytest.fixture(scope="module")
def backend(files):
    return load_backend("flmm", dict(files["args"]))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return DataPaths(write_sample(tmp_path_factory.mktemp("sample"), n_images=8))   # RES has a 96×128 image


def test_hub_key_names_load_and_the_official_checkpoint_has_two_grids_of_channels(files, backend):
    from safetensors import safe_open

    with safe_open(str(files["root"] / "llava-next" / "model.safetensors"), "pt") as weights:
        assert set(HUB_KEYS) <= set(weights.keys())
    state = files["state"]
    assert set(OFFICIAL_KEYS) <= set(state)
    assert state["mask_head.encoder.0.0.convs.0.conv.weight"].shape == (64, 2 * LAYERS * HEADS, 3, 3)
    loaded = backend.load("cpu")
    assert (loaded.lmm, loaded.instruction, loaded.vision.grids) == ("llava_next", fl.INSTRUCTIONS["vicuna"], 2)
    assert type(loaded.llava).__name__ == "LlavaNextForConditionalGeneration"
    assert type(loaded.vision.processor.image_processor).__name__ == "LlavaNextImageProcessorPil"


@pytest.mark.parametrize("height,width", [(64, 64), (64, 96), (96, 64), (80, 112), (128, 96), (40, 200), (300, 30)])
def test_layout_counts_what_the_processor_and_the_model_pack(backend, height, width):
    from PIL import Image

    loaded = backend.load("cpu")
    view = loaded.vision(Image.new("RGB", (width, height), (120, 30, 200)))   # raises unless the counts agree
    layout = view.layout
    assert layout.base == TILE // PATCH
    assert view.pixel_values.shape[1] == 1 + layout.rows * layout.cols
    scale = min(layout.rows * TILE / height, layout.cols * TILE / width)     # the crops' canvas minus its padding
    assert abs(layout.fine_height - height * scale / PATCH) <= 1 and abs(layout.fine_width - width * scale / PATCH) <= 1
    with torch.no_grad():
        features = loaded.llava.model.get_image_features(pixel_values=view.pixel_values,
                                                         image_sizes=view.image_sizes).pooler_output
    assert features[0].shape[0] == layout.tokens


def test_res_masks_have_the_image_size(backend, sample):
    task = get_task("res_refcoco_val")
    docs = task.docs(sample)
    assert any(doc.height != doc.width for doc in docs)
    predictions = infer_task(backend, task, docs, GenerationSettings())
    for doc, prediction in zip(docs, predictions):
        (phrase,) = prediction.phrases
        assert phrase.text == doc.inputs["expression"] and phrase.masks[0].size == (doc.height, doc.width)


def test_png_answers_one_mask_per_requested_phrase(backend, sample):
    task = get_task("png_val")
    docs = task.docs(sample)[:3]
    assert task.requests(docs[0]).kind == "segment_phrases"
    for doc, prediction in zip(docs, infer_task(backend, task, docs, GenerationSettings())):
        assert [p.text for p in prediction.phrases] == [p["text"] for p in doc.inputs["phrases"]]
        assert all(p.masks[0].size == (doc.height, doc.width) for p in prediction.phrases)


def test_gcg_captions_and_grounds_noun_phrases(backend, sample):
    task = get_task("gcg_val")
    docs = task.docs(sample)
    predictions = infer_task(backend, task, docs, GenerationSettings())
    for doc, prediction in zip(docs, predictions):
        assert prediction.extras["gcg_protocol"] == "gcgbench-flmm-noun-chunks"
        for phrase in prediction.phrases:
            assert prediction.text[phrase.start:phrase.end] == phrase.text
            assert phrase.masks[0].size == (doc.height, doc.width)


def test_mask_head_reads_the_base_grid_resized_then_the_fine_grid_without_newlines(backend, tmp_path):
    """Channel l·H + k: layer l head k on the base grid, bilinear to H_f × W_f; L·H + l·H + k: the fine grid."""
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    request = Request("wide", "segment", "unused", str(tmp_path / "wide.png"), 64, 96, {"expression": "the red circle"})
    loaded = backend.load("cpu")
    seen = {}
    hooks = [loaded.heads.mask_head.register_forward_hook(lambda m, i, o: seen.update(maps=i[0].clone(), out=o.clone())),
             loaded.heads.sam.register_forward_hook(lambda m, i, o: seen.update(coarse=i[1].clone()))]
    try:
        backend.generate([request], GenerationSettings())
    finally:
        for hook in hooks:
            hook.remove()
    view = loaded.vision(Image.open(request.image_path).convert("RGB"))
    g, h, w = view.layout.base, view.layout.fine_height, view.layout.fine_width
    assert (g, h, w) == (6, 8, 12) and view.layout.tokens == 36 + 8 * 13     # 64×96 image on a 96×96 canvas
    prompt = fl.prompt_ids(loaded.tokenizer, fl.FLMM_PROMPT, loaded.image_token_id, view.image_tokens)
    expression = request.inputs["expression"]
    sequence = fl.teacher_forced(prompt, [(expression, True)], loaded.tokenizer,
                                 suffix=loaded.tokenizer.encode(".", add_special_tokens=False)[-1:])
    ids = torch.tensor([sequence.input_ids])
    with torch.no_grad():
        out = loaded.llava(input_ids=ids, **view.model_inputs("cpu", torch.float32), output_attentions=True)
    rows, columns = sequence.phrase_positions[0], (ids[0] == loaded.image_token_id)
    merged = [a[0, k][rows][:, columns].mean(0) for a in out.attentions for k in range(HEADS)]
    base = torch.stack([m[:g * g].view(g, g) for m in merged])
    fine = torch.stack([m[g * g:].view(h, w + 1)[:, :w] for m in merged])
    expected = torch.cat([F.interpolate(base[None], size=(h, w), mode="bilinear", align_corners=False)[0], fine])
    assert seen["maps"].shape == (1, 2 * LAYERS * HEADS, h, w)
    torch.testing.assert_close(seen["maps"][0], expected)
    assert seen["coarse"].shape[-2:] == seen["out"].shape[-2:]          # logits of the unpadded grid, not cropped


def test_mistral_folder_uses_the_mistral_template(files, tmp_path):
    write_tiny_llava_next(tmp_path / "mistral", text_model="mistral")
    backend = FlmmBackend.from_args(dict(files["args"], model_path=str(tmp_path / "mistral")))
    loaded = backend.load("cpu")
    assert loaded.instruction == "[INST] {input} [/INST]"
    prompt = fl.prompt_ids(loaded.tokenizer, fl.FLMM_PROMPT, loaded.image_token_id, 3, loaded.instruction)
    assert loaded.tokenizer.decode(prompt, skip_special_tokens=False).startswith("<s> [INST] <image><image><image>")
    explicit = FlmmBackend.from_args(dict(files["args"], model_path=str(tmp_path / "mistral"), prompt_template="vicuna"))
    assert explicit.load("cpu").instruction == fl.VICUNA_INSTRUCTION


def test_lmm_option_and_a_llava_1_5_checkpoint_are_checked(files, tmp_path):
    with pytest.raises(InputError, match=r"lmm=llava but .* has model_type 'llava_next'"):
        FlmmBackend.from_args(dict(files["args"], lmm="llava")).load()
    with pytest.raises(InputError, match="lmm"):
        FlmmBackend.from_args(dict(files["args"], lmm="llava-next"))
    assert FlmmBackend.from_args(dict(files["args"], lmm="llava_next")).load().lmm == "llava_next"
    one_grid = FlmmHeads(LAYERS, HEADS, HIDDEN, build_tiny_sam()).checkpoint_state()
    torch.save(one_grid, tmp_path / "frozen_llava_1_5_vicuna_7b_unet_sam_l_refcoco_png.pth")
    with pytest.raises(InputError, match=r"wrong shape: mask_head\.encoder\.0\.0\.convs\.0\.conv\.weight \[64, 8, 3, 3\] "
                                         r"vs \[64, 16, 3, 3\]"):
        FlmmBackend.from_args(dict(files["args"], checkpoint=str(tmp_path / "frozen_llava_1_5_vicuna_7b_unet_sam_l_"
                                                                           "refcoco_png.pth"))).load()
    write_tiny_llava(tmp_path / "llava-1.5")
    with pytest.raises(InputError, match=r"lmm=llava_next but .* has model_type 'llava'"):
        FlmmBackend.from_args(dict(files["args"], model_path=str(tmp_path / "llava-1.5"), lmm="llava_next")).load()


def test_anyres_layout_unpads_the_shorter_side_like_transformers():
    from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image

    for height, width in [(480, 640), (640, 480), (336, 1000), (1000, 336), (500, 500), (337, 673)]:
        layout = fn.anyres_layout(height, width, [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]], 336, 14)
        rows, cols = get_anyres_image_grid_shape((height, width), [[336, 672], [672, 336], [672, 672], [1008, 336],
                                                                   [336, 1008]], 336)
        unpadded = unpad_image(torch.zeros(1, rows * 24, cols * 24), (height, width))
        assert (layout.rows, layout.cols, layout.fine_height, layout.fine_width) == (rows, cols, *unpadded.shape[1:])
        assert layout.tokens == 576 + layout.fine_height * (layout.fine_width + 1)
