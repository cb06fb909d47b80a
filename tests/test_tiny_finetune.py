"""The tiny models' fine-tune on GCG + RES + PNG text (scripts/tiny_tasks.py, `train_tiny.py --init-from`).

Fast: the examples (what each task asks and answers, where the loss starts), the vocabulary growth and the
batch. Slow: a 2-step fine-tune of each shipped model is deterministic and loads through the real loaders,
with the base LLM and SD of DiffLMM unchanged."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from gcgbench.data.sample.scenes import make_scene
from gcgbench.models import embedded
from gcgbench.models.llava_as.backend import COPULAS
from gcgbench.models.llava_as.options import RES_TEMPLATE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import tiny_builders  # noqa: E402
import tiny_tasks  # noqa: E402

pytestmark = pytest.mark.skipif(not (embedded.tiny_llava_path() / "model.safetensors").is_file(),
                                reason="tiny checkpoints not built")


@pytest.fixture(scope="module")
def tokenizer():
    """The pre-training vocabulary (the shipped tokenizer already holds the fine-tune's words)."""
    return tiny_builders.build_tiny_llava(text_layers=1, vision_layers=1)[1].tokenizer


def test_examples_per_scene_ask_each_task_and_res_answers_with_the_colour_after_the_copula():
    scenes = [make_scene(200_000 + i) for i in range(6)]
    chosen = tiny_tasks.examples(scenes, ("gcg", "res", "png"), embedded.TINY_QUESTION, RES_TEMPLATE, 2, seed=0)
    assert len(chosen) == 6 * 4
    for scene_position, scene in enumerate(scenes):
        mine = [e for e in chosen if e.scene == scene_position]
        gcg, png, *res = mine
        assert (gcg.question, gcg.answer, gcg.loss_from) == (embedded.TINY_QUESTION, scene.caption()[0], 0)
        assert png.question == embedded.TINY_QUESTION and png.answer.startswith("In this image we can see the ")
        assert png.loss_from == tiny_tasks.NARRATIVE_OPENING == len("In this image we can see".split())
        assert len(res) == 2 and len({e.question for e in res}) == 2
        for example in res:
            expression = example.question[len('Describe the "'):-len('".')]
            assert example.question == RES_TEMPLATE.format(expression=expression)
            referred = [p for style in tiny_tasks.RES_STYLES
                        for p, found in enumerate(scene.referring_expressions(style)) if expression in found]
            words = example.answer.split()
            assert words[1] in COPULAS and words[2] in {scene.shapes[p].color for p in referred}
    again = tiny_tasks.examples(scenes, ("gcg", "res", "png"), embedded.TINY_QUESTION, RES_TEMPLATE, 2, seed=0)
    assert again == chosen
    assert tiny_tasks.examples(scenes, ("gcg",), "q", RES_TEMPLATE) == [
        tiny_tasks.Example(i, "q", s.caption()[0]) for i, s in enumerate(scenes)]
    with pytest.raises(ValueError, match="unknown training task"):
        tiny_tasks.examples(scenes, ("vqa",), "q", RES_TEMPLATE)


def test_describe_and_unstated_answers_name_what_the_expression_leaves_out():
    from gcgbench.data.sample.scenes import Scene, Shape

    shapes = (Shape("circle", "red", 20, 10, 6), Shape("square", "red", 50, 50, 6), Shape("circle", "blue", 80, 40, 6))
    scene = Scene(7, 64, 96, "gray", False, shapes, 12)
    answer = lambda position, expression, kind: tiny_tasks.res_answer(scene, position, expression, kind)  # noqa: E731
    assert answer(0, "the red circle", "colour") == "it is red ."
    assert answer(0, "the red circle", "describe") == "it is leftmost ."
    assert answer(1, "the middle shape", "describe") == "it is red ."
    assert answer(1, "the middle shape", "unstated") == "it is red ."       # no colour said: the colour
    assert answer(1, "red one", "unstated") == "it is square ."            # colour said, no kind: the kind
    assert answer(0, "the red circle", "unstated") == "it is top ."        # both said: its half of the image
    assert answer(1, "the square", "unstated") == "it is red ."
    assert answer(2, "the left one of the two blue circles", "unstated") == "it is bottom ."   # 40 ≥ 64 / 2
    assert set(tiny_tasks.RES_ANSWER_WORDS["unstated"]) == {"top", "bottom"}
    with pytest.raises(ValueError, match="unknown RES answer"):
        tiny_tasks.res_answer(scene, 0, "the red circle", "guess")


def test_extended_vocabulary_keeps_old_ids_and_covers_every_training_text(tokenizer):
    import torch

    extended = tiny_builders.extend_vocabulary(tokenizer, tiny_builders.FINETUNE_WORDS)
    old = tokenizer.get_vocab()
    assert all(extended.get_vocab()[word] == index for word, index in old.items())
    assert len(extended) == len(old) + len(set(tiny_builders.FINETUNE_WORDS) - set(old))
    assert extended.tokenize('Describe the "the red circle".') == ["Describe", "the", '"', "the", "red", "circle", '".']
    scenes = [make_scene(200_000 + i) for i in range(40)]
    chosen = tiny_tasks.examples(scenes, ("gcg", "res", "png"), embedded.TINY_QUESTION, RES_TEMPLATE, 3)
    ids = lambda question: torch.tensor(extended(question)["input_ids"])  # noqa: E731
    prompts, answers, starts = tiny_tasks.tokenize(chosen, extended, ids)   # raises on any <unk>
    assert all(a[-1] == extended.eos_token_id for a in answers)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tiny_tasks.tokenize(chosen, tokenizer, lambda q: torch.tensor(tokenizer(q)["input_ids"]))


def test_mixed_batch_pads_right_and_starts_the_loss_where_asked():
    import torch
    from tiny_training import llava_batch, mixed_batch

    prompts = [torch.tensor([5, 6, 7]), torch.tensor([5, 6])]
    answers = [[10, 11, 2], [12, 13, 14, 2]]
    ids, labels, mask = mixed_batch(prompts, answers, [0, 2], [1, 0], pad_id=0)
    assert ids.tolist() == [[5, 6, 12, 13, 14, 2], [5, 6, 7, 10, 11, 2]]
    assert labels.tolist() == [[-100, -100, -100, -100, 14, 2], [-100, -100, -100, 10, 11, 2]]
    assert mask.tolist() == [[1] * 6, [1] * 6]
    shared = [prompts[0], prompts[0]]
    for got, want in zip(mixed_batch(shared, answers, [0, 0], [0, 1], 0), llava_batch(prompts[0], answers, [0, 1], 0)):
        assert torch.equal(got, want)


def _train_module():
    spec = importlib.util.spec_from_file_location("train_tiny", ROOT / "scripts" / "train_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


FINETUNE = ["--tasks", "gcg|res|png", "--scenes", "4", "--steps", "2", "--batch", "4", "--threads", "1",
            "--start", "200000", "--warmup", "1"]


@pytest.mark.slow
def test_llava_finetune_is_deterministic_and_grows_the_vocabulary(tmp_path):
    import torch
    from safetensors.torch import load_file

    from gcgbench.models.llava.loading import load_llava

    train = _train_module()
    for run in "ab":
        assert train.main(["--model", "llava-as", "--init-from", str(embedded.tiny_llava_path()), *FINETUNE,
                           "--output", str(tmp_path / run)]) == 0
    first, second = (load_file(tmp_path / r / "model.safetensors") for r in "ab")
    assert all(torch.equal(first[k], second[k]) for k in first)
    model, processor = load_llava(tmp_path / "a", torch.float32, "cpu")
    assert "detail" in processor.tokenizer.get_vocab()
    assert model.get_input_embeddings().weight.shape[0] == len(processor.tokenizer)


@pytest.mark.slow
def test_difflmm_finetune_keeps_base_sd_and_frozen_clip_and_loads(tmp_path):
    import torch

    from gcgbench.models.difflmm.loading import load_difflmm

    train = _train_module()
    out = tmp_path / "difflmm"
    # the shipped DiffLMM was fine-tuned with --res-answer unstated: its 56 saved rows all carry on
    assert train.main(["--model", "difflmm", "--init-from", str(embedded.tiny_difflmm_path()), *FINETUNE,
                       "--freeze-vision", "--res-answer", "unstated", "--output", str(out)]) == 0
    shipped = embedded.tiny_difflmm_path()
    assert _digest(out / "base" / "model.safetensors") == _digest(shipped / "base" / "model.safetensors")
    assert _digest(out / "clip" / "model.safetensors") == _digest(shipped / "clip" / "model.safetensors")
    for file in (shipped / "sd").rglob("*"):
        if file.is_file():
            assert _digest(out / "sd" / file.relative_to(shipped / "sd")) == _digest(file)
    folders = {key: out / sub for key, sub in embedded.DIFFLMM_PARTS.items()}
    model = load_difflmm(folders["model_path"], folders["model_base"], folders["sd_path"], folders["clip_path"],
                         torch.float32, "cpu")
    rows = model.llm.get_input_embeddings().weight
    assert rows.shape[0] == len(model.tokenizer) and "detail" in model.tokenizer.get_vocab()
    new = [model.tokenizer.get_vocab()[word] for word in ("it", "is")]
    assert not torch.equal(rows[new[0]], rows[new[1]])   # the new rows trained (they start equal, at the mean)
    assert rows.shape[0] == 56 and {"top", "bottom"} <= set(model.tokenizer.get_vocab())
    before = load_difflmm(*(shipped / sub for sub in embedded.DIFFLMM_PARTS.values()), torch.float32, "cpu")
    carried = before.llm.get_input_embeddings().weight
    assert carried.shape[0] == 56 and torch.allclose(rows, carried, atol=0.02)   # 2 small steps from them


@pytest.mark.slow
def test_difflmm_finetune_grows_a_smaller_saved_vocabulary(tmp_path):
    """A checkpoint saved before `top`/`bottom` existed (54 rows, as shipped until 2026-12-03): its rows carry
    on and the two words the unstated answers add start anew, at the mean of the base rows."""
    import shutil

    import torch

    train = _train_module()
    old = tmp_path / "old"
    shutil.copytree(embedded.tiny_difflmm_path(), old)
    trainables = old / "lora" / "non_lora_trainables.bin"
    saved = torch.load(trainables, map_location="cpu", weights_only=True)
    grown = ("base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight")
    torch.save({k: v[:54].clone() if k in grown else v for k, v in saved.items()}, trainables)
    out = tmp_path / "difflmm"
    assert train.main(["--model", "difflmm", "--init-from", str(old), *FINETUNE, "--freeze-vision",
                       "--res-answer", "unstated", "--output", str(out)]) == 0
    result = torch.load(out / "lora" / "non_lora_trainables.bin", map_location="cpu", weights_only=True)
    for key in grown:
        assert result[key].shape[0] == 56
        assert torch.allclose(result[key][:54], saved[key][:54], atol=0.02)
        assert not torch.allclose(result[key][54:], saved[key][54:], atol=0.02)   # not the shipped rows: anew

    # a saved vocabulary larger than the model's (a checkpoint from another word list) is refused by name
    torch.save({k: torch.cat([v, v[:3]]) if k in grown else v for k, v in saved.items()}, trainables)
    with pytest.raises(ValueError, match="non_lora_trainables|embed_tokens|lora"):
        train.main(["--model", "difflmm", "--init-from", str(old), *FINETUNE, "--freeze-vision",
                    "--res-answer", "unstated", "--output", str(tmp_path / "refused")])
