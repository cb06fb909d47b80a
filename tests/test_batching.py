"""Batching: upstream runs batch 1; we left-pad batches. On the embedded tiny models in float32, batch 8 gives
the same outputs as batch 1 — generated text, points, masks — for GCG (generation), RES and PNG
(teacher-forced), llava-as and difflmm alike (docs/reproduction.md, "Generation protocols")."""

from __future__ import annotations

import pytest

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.task import DataPaths
from gcgbench.data.sample import write_sample
from gcgbench.models.registry import load_backend
from gcgbench.runner.evaluate import infer_task
from gcgbench.tasks.registry import get_task


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return DataPaths(write_sample(tmp_path_factory.mktemp("sample"), n_images=16))


@pytest.fixture(autouse=True)
def _hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def comparable(prediction):
    data = prediction.to_json()
    data.get("extras", {}).pop("batch", None)
    return data


@pytest.mark.parametrize("model, tasks", [("llava-as", ("gcg_val", "res_refcoco_val", "png_val")),
                                          ("difflmm", ("gcg_val",))])
def test_batch_of_8_equals_batch_of_1_in_float32(sample, model, tasks):
    backend = load_backend(model, {"dtype": "float32"})
    for name in tasks:
        task = get_task(name)
        docs = task.docs(sample)[:8]
        assert len(docs) == 8, name
        one = infer_task(backend, task, docs, GenerationSettings(seed=0, batch_size=1))
        eight = infer_task(backend, task, docs, GenerationSettings(seed=0, batch_size=8))
        assert [comparable(p) for p in eight] == [comparable(p) for p in one], name
