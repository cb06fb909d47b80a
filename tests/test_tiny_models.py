"""The shipped tiny models: `llava-as` with no --model-args grounds the sample scenes better than whole-image
masks, and `scripts/train_tiny.py` trains a few steps into checkpoints the real loaders accept."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from PIL import Image

from gcgbench.api.types import RLE
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.models import embedded

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (embedded.tiny_llava_path() / "model.safetensors").is_file()
                                or not embedded.tiny_sam_path().is_file()
                                or not (embedded.tiny_difflmm_path() / "lora" / "config.json").is_file(),
                                reason="tiny checkpoints not built")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


def _train_module():
    spec = importlib.util.spec_from_file_location("train_tiny", ROOT / "scripts" / "train_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_point_at_shipped_checkpoints():
    args = embedded.with_tiny_defaults({})
    assert Path(args["model_path"]) == embedded.tiny_llava_path() and args["sam_type"] == embedded.TINY_SAM_TYPE
    assert embedded.with_tiny_defaults({"model_path": "/x"}) == {"model_path": "/x"}
    assert embedded.with_tiny_defaults({"normalize": "mean"})["normalize"] == "mean"   # user args win
    sizes = [p.stat().st_size for p in embedded.checkpoints_root().rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert sum(sizes) < 40e6


def test_difflmm_defaults_point_at_the_four_shipped_folders():
    args = embedded.with_tiny_difflmm_defaults({})
    assert {k: Path(args[k]).name for k in embedded.DIFFLMM_PARTS} == embedded.DIFFLMM_PARTS
    assert all(Path(args[k]).is_dir() for k in embedded.DIFFLMM_PARTS)
    assert embedded.with_tiny_difflmm_defaults({"sd_path": "/x"}) == {"sd_path": "/x"}
    assert embedded.embedded_model_note("difflmm", {}) and embedded.embedded_model_note("llava-as", {})
    assert embedded.embedded_model_note("llava-as", {"model_path": "/x"}) is None
    assert embedded.embedded_model_note("flmm", {}) is None


@pytest.mark.parametrize("model", ["llava-as", "difflmm"])
def test_tiny_model_beats_whole_image_masks(model, tiny_gcg_runs, tmp_path):
    # the session's run of the tiny model on the sample's gcg_val (tests/conftest.py), against the same phrases
    # each given the whole image as its mask
    run = tiny_gcg_runs[model]
    run_results = json.loads((run / "results.json").read_text())
    results, sample = run_results["results"]["gcg_val"], Path(run_results["config"]["data_root"])
    lines = [json.loads(line) for line in (run / "predictions" / "gcg_val.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    for line in lines:
        assert line["phrases"], line["text"]
        with Image.open(next(sample.rglob(f"{line['doc_id']}.jpg"))) as image:
            width, height = image.size
        filled = 0
        for phrase in line["phrases"]:
            mask = RLE.from_json(phrase["masks"][0], "test", "mask").decode()
            assert mask.shape == (height, width)
            filled += bool(mask.any())
            phrase["masks"] = [RLE.from_mask(mask | True).to_json()]       # whole-image baseline
        assert filled >= 1, line["text"]      # a corner point (e.g. on "the left") may give an empty mask
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["score", "--task", "gcg_val", "--predictions", str(whole), "--data-root", str(sample),
                 "--text-model", "minilm", "--bootstrap", "0", "--output", str(tmp_path / "whole")]) == 0
    baseline = json.loads((tmp_path / "whole" / "results.json").read_text())
    for key in ("protocol", "iou_threshold", "text_similarity_threshold", "text_similarity_model"):
        assert baseline["metric_config"]["gcg_val"][key] == run_results["metric_config"]["gcg_val"][key], key
    baseline = baseline["results"]["gcg_val"]
    value = lambda r, k: r[k]["value"] if isinstance(r[k], dict) else r[k]  # noqa: E731
    assert value(results, "miou") > value(baseline, "miou") + 0.2
    assert value(results, "mask_recall") > value(baseline, "mask_recall")


@pytest.mark.slow
def test_training_writes_loadable_checkpoints_deterministically(tmp_path):
    """The training script writes checkpoints the backends load, and the same arguments give the same weights,
    bit for bit: retraining reproduces the shipped files' recipe exactly (the full-length check is
    `make verify-tiny`)."""
    import torch
    from safetensors.torch import load_file

    from gcgbench.grounding.sam_refine import build_sam
    from gcgbench.models.llava.loading import load_llava

    train = _train_module()
    for run in ("a", "b"):
        for model in ("llava-as", "sam"):
            assert train.main(["--model", model, "--output", str(tmp_path / run / model), "--scenes", "8",
                               "--steps", "3", "--batch", "4", "--threads", "1", "--start", "200000"]) == 0
    model, processor = load_llava(tmp_path / "a" / "llava-as", torch.float32, "cpu")
    assert model.config.image_seq_length == 64 and "<image>" in processor.tokenizer.get_vocab()
    assert not (tmp_path / "a" / "llava-as" / ".train_state.pt").exists()
    build_sam(embedded.TINY_SAM_TYPE, tmp_path / "a" / "sam" / embedded.TINY_SAM_FILE)
    first, second = (load_file(tmp_path / r / "llava-as" / "model.safetensors") for r in "ab")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    first, second = (torch.load(tmp_path / r / "sam" / embedded.TINY_SAM_FILE, weights_only=True) for r in "ab")
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.slow
def test_difflmm_training_writes_the_release_layout(tmp_path, sample):
    """All three stages run (a few steps each) and the four folders load through `load_difflmm`."""
    import torch

    from gcgbench.models.difflmm.loading import load_difflmm

    train = _train_module()
    out = tmp_path / "difflmm"
    assert train.main(["--model", "difflmm", "--output", str(out), "--scenes", "8", "--steps", "2", "--batch", "4",
                       "--vae-steps", "2", "--unet-steps", "2", "--threads", "1", "--start", "200000"]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["base", "clip", "lora", "sd"]
    folders = {key: out / sub for key, sub in embedded.DIFFLMM_PARTS.items()}
    model = load_difflmm(folders["model_path"], folders["model_base"], folders["sd_path"], folders["clip_path"],
                         torch.float32, "cpu")
    assert model.vision.num_patches == 64 and len(model.merged_modules) == 7 * 4
    options = {**{key: str(folder) for key, folder in folders.items()}, "sam_checkpoint": str(embedded.tiny_sam_path()),
               **embedded.TINY_DEFAULTS}
    args = ",".join(f"{key}={value}" for key, value in options.items())
    assert main(["run", "--model", "difflmm", "--model-args", args, "--task", "gcg_val", "--limit", "2",
                 "--data-root", str(sample), "--text-model", "minilm", "--bootstrap", "0", "--no-cache",
                 "--output", str(tmp_path / "run")]) == 0
