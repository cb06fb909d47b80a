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
from gcgbench.models import tiny

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (tiny.tiny_llava_path() / "model.safetensors").is_file()
                                or not tiny.tiny_sam_path().is_file(), reason="tiny checkpoints not built")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


def _train_module():
    spec = importlib.util.spec_from_file_location("train_tiny", ROOT / "scripts" / "train_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_point_at_shipped_checkpoints():
    args = tiny.with_tiny_defaults({})
    assert Path(args["model_path"]) == tiny.tiny_llava_path() and args["sam_type"] == tiny.TINY_SAM_TYPE
    assert tiny.with_tiny_defaults({"model_path": "/x"}) == {"model_path": "/x"}
    assert tiny.with_tiny_defaults({"normalize": "mean"})["normalize"] == "mean"   # user args win
    sizes = [p.stat().st_size for p in tiny.checkpoints_root().rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert sum(sizes) < 40e6


def test_tiny_llava_as_beats_whole_image_masks(sample, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--model", "llava-as", "--task", "gcg_val", "--limit", "4", "--data-root", str(sample),
                 "--text-model", "minilm", "--bootstrap", "0", "--no-cache", "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]["gcg_val"]
    lines = [json.loads(line) for line in (out / "predictions" / "gcg_val.jsonl").read_text().splitlines()]
    assert len(lines) == 4
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
    baseline = json.loads((tmp_path / "whole" / "results.json").read_text())["results"]["gcg_val"]
    value = lambda r, k: r[k]["value"] if isinstance(r[k], dict) else r[k]  # noqa: E731
    assert value(results, "miou") > value(baseline, "miou") + 0.2
    assert value(results, "mask_recall") > value(baseline, "mask_recall")


@pytest.mark.slow
def test_training_script_writes_loadable_checkpoints(tmp_path):
    import torch

    from gcgbench.grounding.sam_refine import build_sam
    from gcgbench.models.llava_loading import load_llava

    train = _train_module()
    assert train.main(["--model", "llava-as", "--output", str(tmp_path / "llava"), "--scenes", "8", "--steps", "2",
                       "--batch", "4", "--threads", "1", "--start", "200000"]) == 0
    model, processor = load_llava(tmp_path / "llava", torch.float32, "cpu")
    assert model.config.image_seq_length == 64 and "<image>" in processor.tokenizer.get_vocab()
    assert not (tmp_path / "llava" / ".train_state.pt").exists()
    assert train.main(["--model", "sam", "--output", str(tmp_path / "sam"), "--scenes", "4", "--steps", "2",
                       "--batch", "4", "--threads", "1", "--start", "200000"]) == 0
    build_sam(tiny.TINY_SAM_TYPE, tmp_path / "sam" / tiny.TINY_SAM_FILE)
