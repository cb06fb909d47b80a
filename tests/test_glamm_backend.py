"""The `glamm` backend on a tiny random-weight checkpoint in the official layout (tests.tiny_checkpoints):
loading by the official key names, GCG / RES / region captioning through the normal path on sample docs,
the 4.28 tokenizer behaviour, the region encoder's RoIAlign, CLIP preprocessing, and one-line load errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.data.sample import write_sample
from gcgbench.data.sample.captioning import write_captioning_sample
from gcgbench.data.sample.scenes import make_scenes
from gcgbench.models.glamm import backend as glamm_module
from gcgbench.models.glamm import tokenizer as gt
from gcgbench.models.glamm.backend import GlammBackend
from gcgbench.models.glamm.modules import ClipPreprocess, load_network
from gcgbench.models.glamm.parse import parse_glamm_output
from gcgbench.models.glamm.region import roi_align
from tests.tiny_checkpoints import write_tiny_glamm
from gcgbench.runner.evaluate import infer_task
from gcgbench.tasks.registry import get_task

pytest.importorskip("sentencepiece", reason="the glamm backend reads GLaMM's sentencepiece tokenizer.model")
SETTINGS = GenerationSettings(seed=0, batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("glamm")
    model_dir, clip_dir = write_tiny_glamm(root / "weights")
    data = root / "data"
    write_sample(data, n_images=4)
    write_captioning_sample(data, make_scenes(4))
    return model_dir, clip_dir, data


@pytest.fixture(scope="module")
def backend(files):
    model_dir, clip_dir, _ = files
    return GlammBackend.from_args({"model_path": str(model_dir), "clip_path": str(clip_dir), "max_new_tokens": "6"})


def docs_of(name: str, data: Path, count: int):
    task = get_task(name)
    return task, task.docs(DataPaths(data))[:count]


class ScriptedHead(torch.nn.Module):
    """An lm_head whose argmax follows a token script (one call per generated token)."""

    def __init__(self, script: list[int], vocab: int):
        super().__init__()
        self.script, self.vocab, self.calls = script, vocab, 0

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*hidden.shape[:-1], self.vocab)
        logits[..., self.script[self.calls % len(self.script)]] = 1.0
        self.calls += 1
        return logits


def test_official_key_names_load_and_the_ignored_ones_are_present(files, backend):
    model_dir = files[0]
    index = json.loads((model_dir / "pytorch_model.bin.index.json").read_text())["weight_map"]
    for prefix in ("model.embed_tokens.", "model.layers.0.", "model.norm.", "model.mm_projector.0.", "model.region_encoder.",
                   "model.grounding_encoder.image_encoder.", "model.grounding_encoder.prompt_encoder.",
                   "model.grounding_encoder.mask_decoder.", "model.text_hidden_fcs.0.0.", "lm_head."):
        assert any(key.startswith(prefix) for key in index), prefix
    assert "model.layers.0.self_attn.rotary_emb.inv_freq" in index        # saved by 4.28, recomputed here
    glamm = backend._load("cpu")
    assert glamm.tokenizer.token_id("[SEG]") == glamm.tokenizer.sp.GetPieceSize() + 4   # official order, remapped
    assert not any(t.is_meta for t in glamm.network.state_dict().values())


def test_res_is_teacher_forced_and_masks_have_the_image_size(files, backend):
    task, docs = docs_of("res_refcoco_val", files[2], 3)
    predictions = infer_task(backend, task, docs, SETTINGS)          # the runner checks ids and mask sizes too
    for doc, prediction in zip(docs, predictions):
        assert prediction.text == doc.inputs["expression"]
        assert len(prediction.phrases) == 1 and len(prediction.phrases[0].masks) == 1
        assert prediction.phrases[0].masks[0].size == (doc.height, doc.width)


def test_gcg_pairs_generated_phrases_with_seg_masks_by_order(files, backend):
    task, docs = docs_of("gcg_val", files[2], 1)
    glamm = backend._load("cpu")
    script = glamm.tokenizer.tokenize("The <p> red circle </p> [SEG] near [SEG] [SEG] on <p> gray </p>.") + [glamm.tokenizer.eos_id]
    original = glamm.network.lm_head
    glamm.network.lm_head = ScriptedHead(script, glamm.tokenizer.vocab_size)
    options = backend.options
    try:
        backend.options = options.replace(max_new_tokens=64)
        predictions = infer_task(backend, task, docs, SETTINGS)
    finally:
        glamm.network.lm_head, backend.options = original, options
    for doc, prediction in zip(docs, predictions):
        assert [p.text for p in prediction.phrases] == ["red circle", "gray"]
        assert [len(p.masks) for p in prediction.phrases] == [1, 1]            # [SEG] i → phrase i, by order only
        assert len(prediction.extra_masks) == 1                                # the third [SEG]
        assert all(mask.size == (doc.height, doc.width) for mask in prediction.masks())
        assert prediction.text.startswith("The red circle near on gray")
        start, end = prediction.phrases[0].start, prediction.phrases[0].end
        assert prediction.text[start:end] == "red circle"
        assert prediction.extras["generated_tokens"] == len(script)


def test_kv_cached_decoding_gives_the_states_of_full_recompute(files, backend):
    glamm = backend._load("cpu")
    _, docs = docs_of("gcg_val", files[2], 1)
    request = get_task("gcg_val").requests(docs[0])
    ids = gt.tokenizer_image_token(gt.llava_v1_prompt([(gt.with_image(request.prompt), None)]), glamm.tokenizer)
    with torch.inference_mode():
        features, _ = glamm_module.encode_image(glamm, glamm_module.read_image(request), None)
        embeds, positions = glamm_module.embed_sequence(glamm, ids, features, None)
        cached_tokens, cached_states = glamm_module.greedy(glamm, embeds, 5, kv_cache=True)
        full_tokens, full_states = glamm_module.greedy(glamm, embeds, 5, kv_cache=False)
    assert cached_tokens == full_tokens
    assert cached_states.shape == full_states.shape == (embeds.shape[1] + len(cached_tokens) - 1, 64)
    torch.testing.assert_close(cached_states, full_states, atol=1e-4, rtol=1e-4)
    assert embeds.shape[1] == len(ids) - 1 + 64 and positions[ids.index(-200) + 1] == ids.index(-200) + 64


def test_region_caption_puts_the_box_feature_on_the_bbox_token(files, backend):
    task, docs = docs_of("regcap_refcocog_val", files[2], 1)
    request = task.requests(docs[0])
    assert "<bbox>" in request.prompt and "region" in request.inputs
    prediction = backend.generate([request], SETTINGS)[0]
    assert isinstance(prediction.text, str) and prediction.masks() == []
    glamm = backend._load("cpu")
    ids = gt.tokenizer_image_token(gt.llava_v1_prompt([(gt.with_image(request.prompt), None)]), glamm.tokenizer)
    boxes = glamm_module.region_boxes(request.inputs["region"], request.height, request.width, torch.float32, "cpu")
    x, y, w, h = request.inputs["region"]
    expected = torch.tensor([[x / request.width, y / request.height, (x + w) / request.width, (y + h) / request.height]])
    torch.testing.assert_close(boxes, expected.half().float())
    with torch.inference_mode():
        features, region = glamm_module.encode_image(glamm, glamm_module.read_image(request), boxes)
        plain, positions = glamm_module.embed_sequence(glamm, ids, features, None)
        marked, _ = glamm_module.embed_sequence(glamm, ids, features, region)
    slot = positions[ids.index(glamm.bbox_id)]
    assert region.shape == (1, 64)
    torch.testing.assert_close(marked[0, slot], region[0])
    changed = (plain[0] != marked[0]).any(dim=-1).nonzero().flatten().tolist()
    assert changed == [slot]


def test_tokenizer_follows_transformers_4_28(backend):
    tokenizer = backend._load("cpu").tokenizer
    sp = tokenizer.sp
    start, end, seg = tokenizer.token_id("<im_start>"), tokenizer.token_id("<im_end>"), tokenizer.token_id("[SEG]")
    # plain-string added tokens eat the whitespace on both sides; </s> (an AddedToken without strip) does not
    assert tokenizer.tokenize("USER: The <im_start>") == sp.EncodeAsIds("USER: The") + [start]
    assert tokenizer.tokenize("<im_end> provides") == [end] + sp.EncodeAsIds("provides")
    assert tokenizer.tokenize("It is [SEG].</s>USER") == sp.EncodeAsIds("It is") + [seg] + sp.EncodeAsIds(".") + [2] + sp.EncodeAsIds("USER")
    assert tokenizer.tokenize("a </s> b") == sp.EncodeAsIds("a ") + [2] + sp.EncodeAsIds(" b")
    ids = gt.tokenizer_image_token("x <im_start><image><im_end> y", tokenizer)
    assert ids == [1] + sp.EncodeAsIds("x") + [start, -200, end] + sp.EncodeAsIds("y")
    # decode: added tokens and runs joined by single spaces; </s> gets one space before it
    assert tokenizer.decode([1] + sp.EncodeAsIds("a") + [seg] + sp.EncodeAsIds("b") + [2]) == "<s>a [SEG]  b</s>"
    assert gt.llava_v1_prompt([("q", "It is [SEG].")]) == f"{gt.LLAVA_V1_SYSTEM} USER: q ASSISTANT: It is [SEG].</s>"
    assert gt.with_image("Q") == "The <im_start><image><im_end> provides an overview of the picture.\nQ"


def test_tokenizer_ids_must_follow_the_vocabulary(files, tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    shutil.copy(files[0] / "tokenizer.model", folder)
    (folder / "added_tokens.json").write_text(json.dumps({t: 32000 + i for i, t in enumerate(gt.GLAMM_TOKENS)}))
    with pytest.raises(InputError, match="do not follow"):
        gt.GlammTokenizer.from_folder(folder)


def reference_roi_align(features, rois, size, scale, ratio):
    """mmcv roi_align_forward (aligned=True, avg), one sample at a time."""
    _, channels, height, width = features.shape
    out = torch.zeros(len(rois), channels, size, size, dtype=torch.float64)
    for n, (image, x1, y1, x2, y2) in enumerate(rois.tolist()):
        sx, sy = x1 * scale - 0.5, y1 * scale - 0.5
        bw, bh = (x2 * scale - 0.5 - sx) / size, (y2 * scale - 0.5 - sy) / size
        for py in range(size):
            for px in range(size):
                total = torch.zeros(channels, dtype=torch.float64)
                for iy in range(ratio):
                    for ix in range(ratio):
                        y = sy + py * bh + (iy + 0.5) * bh / ratio
                        x = sx + px * bw + (ix + 0.5) * bw / ratio
                        if y < -1 or y > height or x < -1 or x > width:
                            continue
                        y, x = max(y, 0.0), max(x, 0.0)
                        yl, xl = int(y), int(x)
                        yh, xh = (yl, xl)
                        if yl >= height - 1:
                            yl = yh = height - 1
                            y = float(yl)
                        else:
                            yh = yl + 1
                        if xl >= width - 1:
                            xl = xh = width - 1
                            x = float(xl)
                        else:
                            xh = xl + 1
                        ly, lx = y - yl, x - xl
                        f = features[int(image)].double()
                        total += ((1 - ly) * (1 - lx) * f[:, yl, xl] + (1 - ly) * lx * f[:, yl, xh]
                                  + ly * (1 - lx) * f[:, yh, xl] + ly * lx * f[:, yh, xh])
                out[n, :, py, px] = total / (ratio * ratio)
    return out


def test_roi_align_matches_mmcv_semantics():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 9, 7, generator=generator)
    rois = torch.tensor([[0, 1.0, 2.0, 10.0, 12.0], [1, -4.0, -3.0, 3.0, 30.0], [0, 12.0, 10.0, 14.0, 20.0],
                         [1, 0.0, 0.0, 0.5, 0.5]])
    got = roi_align(features, rois, output_size=4, spatial_scale=0.6, sampling_ratio=2)
    torch.testing.assert_close(got.double(), reference_roi_align(features, rois, 4, 0.6, 2), atol=1e-5, rtol=1e-5)


def test_clip_preprocessing_crops_like_the_clip_image_processor(files):
    processors = pytest.importorskip("transformers")
    if not hasattr(processors, "CLIPImageProcessorPil"):
        pytest.skip("transformers has no PIL-backed CLIPImageProcessor (the 4.28 arithmetic) to compare with")
    image = np.random.default_rng(0).integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    ours = ClipPreprocess.from_folder(files[1])(image)
    theirs = processors.CLIPImageProcessorPil.from_pretrained(files[1])(images=image, return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape == (1, 3, 112, 112)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def edit_checkpoint(source: Path, target: Path, edit) -> Path:
    shutil.copytree(source, target)
    shard = target / "pytorch_model-00002-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    edit(state)
    torch.save(state, shard)
    return target


@pytest.mark.parametrize("edit, named", [
    (lambda s: s.pop("model.text_hidden_fcs.0.2.bias"), "missing keys: model.text_hidden_fcs.0.2.bias"),
    (lambda s: s.__setitem__("model.mystery.weight", torch.zeros(2)), "unexpected keys: model.mystery.weight"),
    (lambda s: s.__setitem__("lm_head.weight", torch.zeros(3, 64)), "keys with the wrong shape: lm_head.weight"),
])
def test_a_bad_checkpoint_names_the_keys(files, tmp_path, edit, named):
    folder = edit_checkpoint(files[0], tmp_path / "broken", edit)
    with pytest.raises(InputError, match=named.replace(".", r"\.")) as error:
        load_network(folder, torch.float32, "cpu")
    assert "\n" not in str(error.value)


def test_arguments_are_checked(files):
    model_dir, clip_dir, _ = files
    with pytest.raises(InputError, match="clip_path"):
        GlammBackend.from_args({"model_path": str(model_dir)})
    with pytest.raises(InputError, match="dtype"):
        GlammBackend.from_args({"model_path": str(model_dir), "clip_path": str(clip_dir), "dtype": "int8"})
    with pytest.raises(InputError, match=r"res_answer"):
        GlammBackend.from_args({"model_path": str(model_dir), "clip_path": str(clip_dir), "res_answer": "It is."})
    with pytest.raises(InputError, match="no config.json"):
        GlammBackend.from_args({"model_path": str(model_dir), "clip_path": str(model_dir.parent)})


def test_png_is_refused_up_front_on_one_line(files, monkeypatch, capsys, tmp_path):
    """`gcgbench run --model glamm --task res_refcoco_val,png_val` stops before the model loads or RES generates."""
    from gcgbench.cli.app import main

    model_dir, clip_dir, data = files

    def no_load(self, device):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(GlammBackend, "_load", no_load)
    code = main(["run", "--model", "glamm", "--model-args", f"model_path={model_dir},clip_path={clip_dir}",
                 "--task", "res_refcoco_val,png_val", "--data-root", str(data), "--output", str(tmp_path / "out"),
                 "--no-cache"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.splitlines()[-1] == ("error: --task: png_val: the backend has no protocol for task png_val "
                                    "(requests of kind segment_phrases)")
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert "segment_phrases" not in GlammBackend.supported_kinds


def test_fingerprint_hashes_both_folders(backend):
    fingerprint = backend.fingerprint()
    assert "pytorch_model-00001-of-00002.bin" in fingerprint["files_sha256"]["model"]
    assert "model.safetensors" in fingerprint["files_sha256"]["clip"]
    assert fingerprint["protocols"]["segment"] == "glamm-multiturn" and "model_path" not in fingerprint["args"]
    assert parse_glamm_output("ASSISTANT: x").caption == "x"


def test_res_multiturn_asks_an_images_sentences_in_one_seeded_conversation(files, backend):
    """GLaMM's RES eval: <= 3 sentences of an image, random templates and answers, one conversation, the i-th
    [SEG] → the i-th sentence; seeded by --seed; `--protocol glamm` scores upstream's first draw only."""
    from gcgbench.data.refer import glamm_conversations, glamm_image_seed, glamm_selection
    from gcgbench.models.glamm import tokenizer as gt
    from gcgbench.models.glamm.options import ANSWER_LIST, SEG_QUESTIONS, conversation_turns

    task, docs = docs_of("res_refcoco_val", files[2], 1000)
    conversations = glamm_conversations(docs, seed=3)
    assert sorted(d.doc_id for c in conversations for d in c) == sorted(d.doc_id for d in docs)
    assert all(1 <= len(c) <= 3 and len({d.truth["image_id"] for d in c}) == 1 for c in conversations)
    assert glamm_conversations(docs, seed=3) == conversations
    first = {}
    for conversation in conversations:
        first.setdefault(conversation[0].truth["image_id"], conversation)
    assert glamm_selection(docs, 3) == [d for c in first.values() for d in c]
    group = max(conversations, key=len)
    turns = conversation_turns([d.inputs["expression"] for d in group], glamm_image_seed(3, group[0].truth["image_id"]))
    import random

    rng = random.Random(glamm_image_seed(3, group[0].truth["image_id"]))
    for (question, answer), doc in zip(turns, group):           # create_conversations' draw order, restated
        assert question == rng.choice(SEG_QUESTIONS).format(class_name=doc.inputs["expression"].lower())
        assert answer == rng.choice(ANSWER_LIST)
    settings = GenerationSettings(seed=3, batch_size=1, device="cpu")
    predictions = {p.doc_id: p for p in infer_task(backend, task, docs, settings)}
    glamm = backend._load("cpu")
    prompt = gt.llava_v1_prompt([(gt.with_image(turns[0][0]), turns[0][1]), *turns[1:]])
    ids = gt.tokenizer_image_token(prompt, glamm.tokenizer)
    assert ids.count(glamm.seg_id) == len(group) and prompt.count("</s>") == len(group)
    for turn, doc in enumerate(group):
        extras = predictions[doc.doc_id].extras
        assert (extras["glamm_protocol"], extras["turn"], extras["question"]) == ("glamm-multiturn", turn, turns[turn][0])
        assert predictions[doc.doc_id].phrases[0].masks[0].size == (doc.height, doc.width)
    single = GlammBackend.from_args({"model_path": str(files[0]), "clip_path": str(files[1]), "protocol": "per-sentence"})
    alone = infer_task(single, task, group[:1], settings)[0]
    assert alone.extras["glamm_protocol"] == "per-sentence" and alone.extras["answer"] == "It is [SEG]."
