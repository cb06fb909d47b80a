"""The `flmm` backend on tiny random-weight checkpoints written in the real layouts: a llava-hf LLaVA
folder, a segment-anything SAM state dict and an F-LMM `.pth` with the official key names."""

import string

import numpy as np
import pytest
import torch

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.data.sample import write_sample
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from gcgbench.models.flmm import loading as fl
from gcgbench.models.flmm.backend import FlmmBackend, noun_phrase_spans
from gcgbench.models.flmm.loading import unpad
from gcgbench.models.flmm.head import FlmmHeads, UNetHead
from gcgbench.models.registry import load_backend
from gcgbench.runner.evaluate import infer_task
from gcgbench.tasks.registry import get_task

LAYERS, HEADS, HIDDEN = 2, 4, 32
BACKEND = "gcgbench.models.flmm.backend:FlmmBackend"
# verbatim key names of an official F-LMM checkpoint (mmseg UNet under `mask_head`, SAMWrapper under `sam`)
OFFICIAL_KEYS = [
    "mask_head.encoder.0.0.convs.0.conv.weight",
    "mask_head.encoder.0.0.convs.0.gn.weight",
    "mask_head.encoder.0.0.convs.1.gn.bias",
    "mask_head.encoder.1.1.convs.0.conv.weight",
    "mask_head.encoder.3.1.convs.1.gn.weight",
    "mask_head.decoder.0.conv_block.convs.0.conv.weight",
    "mask_head.decoder.0.upsample.interp_upsample.1.conv.weight",
    "mask_head.decoder.2.upsample.interp_upsample.1.gn.bias",
    "mask_head.conv_seg.weight",
    "mask_head.conv_seg.bias",
    "sam.model.prompt_encoder.mask_downscaling.0.weight",
    "sam.model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
    "sam.model.mask_decoder.iou_token.weight",
    "sam.model.mask_decoder.output_hypernetworks_mlps.0.layers.0.weight",
    "text_proj.weight",
    "text_proj.bias",
    "text_layer_weights",
]


def mmseg_unet_keys(stages=4, convs=2):
    """mmseg UNet + ConvModule(GroupNorm) naming, enumerated from the mmseg structure (not from our module)."""
    keys = []

    def conv_module(prefix):
        keys.extend([f"{prefix}.conv.weight", f"{prefix}.gn.weight", f"{prefix}.gn.bias"])

    for i in range(stages):
        for c in range(convs):
            conv_module(f"encoder.{i}.{0 if i == 0 else 1}.convs.{c}")
    for i in range(stages - 1):
        for c in range(convs):
            conv_module(f"decoder.{i}.conv_block.convs.{c}")
        conv_module(f"decoder.{i}.upsample.interp_upsample.1")
    return sorted(keys + ["conv_seg.weight", "conv_seg.bias"])


def tiny_tokenizer():
    """A character-level Llama-style fast tokenizer (BOS prepended, Metaspace) with `<image>` added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - {" "})
    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>", "▁"] + chars)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return tokenizer


def write_tiny_llava(folder):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    tokenizer = tiny_tokenizer()
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                       image_size=48, patch_size=8),
        text_config=LlamaConfig(vocab_size=128, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=LAYERS,
                                num_attention_heads=HEADS, num_key_value_heads=HEADS, bos_token_id=1, eos_token_id=2,
                                pad_token_id=3),
        image_token_index=image_token, image_seq_length=36)
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        '{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 48}, "crop_size": {"height": 48, '
        '"width": 48}, "image_mean": [0.48145466, 0.4578275, 0.40821073], '
        '"image_std": [0.26862954, 0.26130258, 0.27577711], "rescale_factor": 0.00392156862745098, "resample": 3}')
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("flmm")
    write_tiny_llava(root / "llava")
    torch.manual_seed(1)
    sam = build_tiny_sam()
    torch.save(sam.state_dict(), root / "sam.pth")
    heads = FlmmHeads(LAYERS, HEADS, HIDDEN, build_tiny_sam())
    with torch.no_grad():
        heads.text_layer_weights.copy_(torch.tensor([0.3, -0.2]))
    state = heads.checkpoint_state()
    torch.save(state, root / "flmm.pth")
    return {"root": root, "state": state, "args": {"model_path": str(root / "llava"), "checkpoint": str(root / "flmm.pth"),
                                                    "sam_checkpoint": str(root / "sam.pth"), "sam_type": TINY_TEST_SAM,
                                                    "max_new_tokens": "12"}}


@pytest.fixture(scope="module")
def backend(files):
    return load_backend(BACKEND, dict(files["args"]))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return DataPaths(write_sample(tmp_path_factory.mktemp("sample"), n_images=4))


def test_unet_head_keys_are_mmseg_names_and_official_keys_load(files):
    head = UNetHead(in_channels=LAYERS * HEADS)
    assert sorted(head.state_dict()) == mmseg_unet_keys()
    state = files["state"]
    assert set(OFFICIAL_KEYS) <= set(state)
    assert state["mask_head.encoder.0.0.convs.0.conv.weight"].shape == (64, LAYERS * HEADS, 3, 3)
    assert state["mask_head.decoder.0.upsample.interp_upsample.1.conv.weight"].shape == (64, 128, 1, 1)
    assert state["mask_head.decoder.2.conv_block.convs.0.conv.weight"].shape == (256, 512, 3, 3)
    assert state["text_layer_weights"].shape == (LAYERS,)
    assert not any(k.startswith("sam.model.image_encoder.") for k in state)


def test_unet_head_upsamples_a_24_grid_to_64_and_normalises_each_channel():
    head = UNetHead(in_channels=3).eval()
    maps = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        out = head(maps)
        scaled = head(maps * 7.0)          # normalize_input divides each channel by its spatial sum
    assert out.shape == (2, 1, 64, 64)
    torch.testing.assert_close(out, scaled, rtol=1e-4, atol=1e-4)


def test_pad_to_square_and_unpad_follow_custom_llava_image_processor():
    from PIL import Image

    pixels, meta = fl.PadToSquare(size=48)(Image.new("RGB", (64, 96), (255, 0, 0)))   # w=64, h=96
    assert pixels.shape == (3, 48, 48)
    assert (meta.height, meta.width, meta.padded) == (48, 32, 48)
    assert (meta.before_width, meta.after_width, meta.before_height, meta.after_height) == (8, 8, 0, 0)
    pad = (np.array([122, 116, 104]) / 255 - np.array(fl.CLIP_MEAN)) / np.array(fl.CLIP_STD)
    np.testing.assert_allclose(pixels[:, 0, 0].numpy(), pad, atol=1e-5)
    assert unpad(torch.zeros(1, 64, 64), meta).shape == (1, 64, 43)   # int(32·64/48 + 0.5)


def test_narrative_pieces_are_the_utterances_or_the_caption_cut_at_phrase_spans():
    from gcgbench.models.llava.narrative import narrative_pieces

    caption = "In this image we can see a man , a dog and the sky."
    phrases = [{"text": "a man", "start": 25, "end": 30}, {"text": "a dog", "start": 33, "end": 38},
               {"text": "the sky", "start": None, "end": None}]
    assert narrative_pieces({"caption": caption, "phrases": phrases}) == (
        ["In this image we can see", "a man", ",", "a dog", "and", "the sky", "."], [1, 3, 5])
    utterances = ["In this image we can see", "a man", " , ", "a dog", "and", "the sky."]
    with_utterances = [dict(p, utterance=u) for p, u in zip(phrases, (1, 3, 5))]
    assert narrative_pieces({"caption": caption, "phrases": with_utterances, "utterances": utterances}) == (
        utterances, [1, 3, 5])


def transform_concat(prompt, texts, encode, dot):
    """F-LMM flmm/datasets/transforms.py:109-123 (RefCOCO2PNG.transform_concat), restated: ids and mask_ids."""
    caption_input_ids, mask_ids = [], [-1] * len(prompt)
    for inst_id, instant_text in enumerate(texts):
        segment_input_ids = encode(instant_text)
        caption_input_ids += segment_input_ids
        mask_ids += [inst_id] * len(segment_input_ids)
        caption_input_ids.append(dot)
        mask_ids.append(-1)
    return prompt + caption_input_ids, mask_ids


def test_res_concat_is_one_sequence_per_image_of_every_objects_first_raw_sentence(backend, sample):
    from gcgbench.data.refer import flmm_selection
    from gcgbench.models.flmm import loading as fl
    from gcgbench.models.flmm.backend import concat_text

    task = get_task("res_refcoco_val")
    docs = task.docs(sample)
    backend.prepare(task, docs)
    assert backend.protocol_for("segment") == "flmm-concat"
    selected = flmm_selection(docs, "val")
    group = backend._concat[selected[0].doc_id]
    assert [d.doc_id for d in group] == [d.doc_id for d in selected if d.truth["image_id"] == selected[0].truth["image_id"]]
    loaded = backend.load("cpu")
    encode = lambda text: loaded.encoder.encode(text, add_special_tokens=False)
    dot = encode(".")[-1]
    prompt = [1, 5, 7]
    texts = [concat_text(d) for d in group]
    assert all(t == (d.truth["raw"] or d.inputs["expression"]).lower() for t, d in zip(texts, group))
    ids, mask_ids = transform_concat(prompt, texts, encode, dot)
    ours = fl.teacher_forced_pieces(prompt, texts, list(range(len(texts))), loaded.encoder, after_each=[dot])
    assert ours.input_ids == ids
    assert ours.phrase_positions == [[i for i, m in enumerate(mask_ids) if m == k] for k in range(len(texts))]
    predictions = infer_task(backend, task, docs, GenerationSettings())
    chosen = {d.doc_id for d in selected}
    for doc, prediction in zip(docs, predictions):
        assert prediction.extras["flmm_protocol"] == ("flmm-concat" if doc.doc_id in chosen else "flmm-single (not selected)")


def test_gcg_noun_phrases_follow_the_demo_filter(backend):
    text = "A man in a red shirt holds a dog. It is the image of a man and a woman."
    spans = noun_phrase_spans(backend.nlp(), text)
    found = [text[s:e] for s, e in spans]
    assert found[:3] == ["A man", "a red shirt", "a dog"]
    assert "It" not in found and not any("image" in f for f in found)
    assert found == sorted(found, key=text.find) and len(set(found)) == len(found)


def test_res_masks_have_the_image_size(backend, sample):
    task = get_task("res_refcoco_val")
    docs = task.docs(sample)
    predictions = infer_task(backend, task, docs, GenerationSettings())
    for doc, prediction in zip(docs, predictions):
        assert prediction.text == doc.inputs["expression"]
        (phrase,) = prediction.phrases
        assert phrase.text == doc.inputs["expression"] and len(phrase.masks) == 1
        assert phrase.masks[0].size == (doc.height, doc.width)


def test_png_answers_one_mask_per_requested_phrase(backend, sample):
    task = get_task("png_val")
    docs = task.docs(sample)[:2]
    for doc, prediction in zip(docs, infer_task(backend, task, docs, GenerationSettings())):
        assert [p.text for p in prediction.phrases] == [p["text"] for p in doc.inputs["phrases"]]
        assert all(p.masks[0].size == (doc.height, doc.width) for p in prediction.phrases)


def test_gcg_captions_and_grounds_noun_phrases(backend, sample):
    task = get_task("gcg_val")
    docs = task.docs(sample)
    predictions = infer_task(backend, task, docs, GenerationSettings())
    assert any(prediction.phrases for prediction in predictions)
    for doc, prediction in zip(docs, predictions):
        assert prediction.extras["spacy_model"].startswith("en_core_web_sm")
        for phrase in prediction.phrases:
            assert prediction.text[phrase.start:phrase.end] == phrase.text
            assert phrase.masks[0].size == (doc.height, doc.width)


def test_mask_head_input_is_every_layer_and_head_of_the_phrase_rows(backend, sample):
    """Channel l·H + k = mean over the phrase's tokens of layer l, head k's attention on the image columns."""
    task = get_task("res_refcoco_val")
    request = task.requests(task.docs(sample)[0])
    loaded = backend.load("cpu")
    backend._concat = {}          # no prepared concat groups: the request is its own sequence (flmm-single)
    seen = {}
    hook = loaded.heads.mask_head.register_forward_hook(lambda m, i, o: seen.setdefault("maps", i[0].clone()))
    try:
        backend.generate([request], GenerationSettings())
    finally:
        hook.remove()
    from PIL import Image

    pixels, _ = loaded.vision.processor(Image.open(request.image_path).convert("RGB"))
    prompt = fl.prompt_ids(loaded.tokenizer, fl.FLMM_PROMPT, loaded.image_token_id, 36)
    expression = request.inputs["expression"]
    sequence = fl.teacher_forced(prompt, [(expression, True)], loaded.tokenizer,
                                 suffix=loaded.tokenizer.encode(".", add_special_tokens=False)[-1:])
    ids = torch.tensor([sequence.input_ids])
    with torch.no_grad():
        out = loaded.llava(input_ids=ids, pixel_values=pixels[None], output_attentions=True)
    rows, columns = sequence.phrase_positions[0], (ids[0] == loaded.image_token_id)
    expected = torch.stack([a[0, k][rows][:, columns].mean(0).view(6, 6) for a in out.attentions for k in range(HEADS)])
    assert seen["maps"].shape == (1, LAYERS * HEADS, 6, 6)
    torch.testing.assert_close(seen["maps"][0], expected)
    assert len(rows) == len(loaded.tokenizer.encode(expression, add_special_tokens=False))


def test_checkpoint_problems_name_the_keys(files, tmp_path):
    state = dict(files["state"])
    missing = dict(state)
    del missing["mask_head.conv_seg.bias"]
    torch.save(missing, tmp_path / "missing.pth")
    args = dict(files["args"], checkpoint=str(tmp_path / "missing.pth"))
    with pytest.raises(InputError, match=r"missing keys: mask_head\.conv_seg\.bias"):
        FlmmBackend.from_args(args).load()
    torch.save({**state, "mask_head.extra.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(InputError, match=r"unexpected keys: mask_head\.extra\.weight"):
        FlmmBackend.from_args(dict(args, checkpoint=str(tmp_path / "extra.pth"))).load()
    torch.save({**state, "text_layer_weights": torch.ones(5)}, tmp_path / "shape.pth")
    with pytest.raises(InputError, match=r"wrong shape: text_layer_weights \[5\] vs \[2\]"):
        FlmmBackend.from_args(dict(args, checkpoint=str(tmp_path / "shape.pth"))).load()
    # frozen parts (LLaVA, SAM image encoder) may be in the file; xtuner-style {"state_dict": ...} is unwrapped
    torch.save({"state_dict": {**state, "llava.lm_head.weight": torch.zeros(1)}}, tmp_path / "wrapped.pth")
    loaded = FlmmBackend.from_args(dict(args, checkpoint=str(tmp_path / "wrapped.pth"))).load()
    assert loaded.skipped_keys == ["llava.lm_head.weight"]
    torch.testing.assert_close(loaded.heads.text_layer_weights.detach(), torch.tensor([0.3, -0.2]))
    # SAM's untrained positional-encoding buffer may be absent: it keeps the sam_checkpoint value
    gaussian = "sam.model.prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
    torch.save({k: v for k, v in state.items() if k != gaussian}, tmp_path / "no_buffer.pth")
    loaded = FlmmBackend.from_args(dict(args, checkpoint=str(tmp_path / "no_buffer.pth"))).load()
    sam_state = torch.load(files["root"] / "sam.pth")
    torch.testing.assert_close(loaded.heads.state_dict()[gaussian], sam_state[gaussian[len("sam.model."):]])


def test_arguments_and_fingerprint(files, tmp_path):
    with pytest.raises(InputError, match="checkpoint=PATH"):
        FlmmBackend.from_args({"model_path": "x", "sam_checkpoint": "y"})
    with pytest.raises(InputError, match="merge"):
        FlmmBackend.from_args(dict(files["args"], merge="sum"))
    first = FlmmBackend.from_args(files["args"]).fingerprint()
    copy = tmp_path / "flmm.pth"
    state = dict(files["state"])
    state["text_layer_weights"] = torch.zeros(LAYERS)
    torch.save(state, copy)
    second = FlmmBackend.from_args(dict(files["args"], checkpoint=str(copy))).fingerprint()
    assert first["files_sha256"]["checkpoint"] != second["files_sha256"]["checkpoint"]
    assert first["files_sha256"]["model"] == second["files_sha256"]["model"] and "config.json" in first["files_sha256"]["model"]
    assert first["protocols"] == {"grounded_caption": "gcgbench", "segment": "flmm-concat", "segment_phrases": "flmm"}
    with pytest.raises(InputError, match="max_new_tokens: must be at least 1"):
        FlmmBackend.from_args(dict(files["args"], max_new_tokens="0"))
    with pytest.raises(InputError, match="max_new_tokens: must be at least 1"):
        FlmmBackend.from_args(dict(files["args"], max_new_tokens="-4"))
