"""Issue 4's acceptance: the `oracle` backend, through the normal runner path, scores perfectly on the
bundled sample for every task (server-held splits: an upload file instead of scores)."""

import math

import pytest

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.data.sample import write_sample
from gcgbench.models.oracle import OracleBackend
from gcgbench.runner.evaluate import infer_task, score_task
from gcgbench.tasks.registry import get_task, task_names

pytestmark = pytest.mark.java

# What "perfect" means where it is not 1.0, and why.
NOT_ONE = {
    "cider": "CIDEr-D of a caption against itself is 10 × (tf-idf cosine); with several references the oracle "
             "answers one of them, so CIDEr is whatever that reference earns",
}
PNG_PERFECT = 0.99999  # the official left Riemann sum over 100,000 thresholds


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=12)


@pytest.mark.parametrize("name", task_names())
def test_oracle_is_perfect(sample, name):
    task = get_task(name)
    docs = task.docs(DataPaths(sample))
    assert docs, f"{name}: the sample has no docs"
    predictions = infer_task(OracleBackend(), task, docs, GenerationSettings(batch_size=4))
    result = score_task(task, docs, predictions, ScoringOptions(text_model="minilm", bootstrap_resamples=0))
    if task.spec.params.get("scoring") == "server":
        assert result.metrics == {}
        assert task.submission_files(docs, {p.doc_id: p for p in predictions})
        return
    assert result.metrics, f"{name}: no metrics"
    points = "points_metrics" in result.metric_config
    for metric, value in result.metrics.items():
        if metric in NOT_ONE or metric.endswith("yes_ratio") or math.isnan(value):  # yes-ratio describes, not scores
            continue
        if points and (metric in ("perception", "cognition") or metric.endswith("_score")):
            continue  # MME points: checked through their acc / acc+ fractions
        expected = PNG_PERFECT if task.spec.family == "png" and metric.startswith("ar") else 1.0
        assert value == pytest.approx(expected, abs=1e-4), f"{name}.{metric} = {value}"
