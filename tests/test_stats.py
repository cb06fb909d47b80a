"""Clustered bootstrap: determinism, coverage of the point estimate, clustering, NaN, paired deltas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcgbench.metrics.stats import (
    Interval,
    bootstrap_ci,
    cluster_indices,
    expand,
    on_records,
    paired_bootstrap_delta,
)


def mean_of(values: np.ndarray):
    return lambda indices: {"mean": float(np.mean(values[indices]))}


def test_same_seed_same_intervals_other_seed_other_intervals():
    values = np.random.default_rng(1).normal(size=50)
    first = bootstrap_ci(50, mean_of(values), n_resamples=200, seed=3)
    assert first == bootstrap_ci(50, mean_of(values), n_resamples=200, seed=3)
    assert first != bootstrap_ci(50, mean_of(values), n_resamples=200, seed=4)
    assert first["mean"].seed == 3 and first["mean"].n_resamples == 200 and first["mean"].method == "percentile"


def test_interval_of_a_mean_contains_it_and_has_the_normal_theory_width():
    values = np.random.default_rng(2).normal(loc=5.0, scale=2.0, size=400)
    interval = bootstrap_ci(400, mean_of(values), n_resamples=2000, seed=0)["mean"]
    assert interval.contains(float(values.mean()))
    expected_width = 2 * 1.959964 * values.std() / math.sqrt(400)  # ≈ 0.39
    assert interval.width == pytest.approx(expected_width, rel=0.15)


def test_constant_statistic_gives_a_zero_width_interval():
    interval = bootstrap_ci(10, lambda indices: {"c": 0.25}, n_resamples=100)["c"]
    assert interval.low == interval.high == 0.25


def test_resamples_draw_whole_images():
    image_ids = ["a", "a", "b", "c", "c", "c", "d"]
    clusters = cluster_indices(image_ids)
    sizes = {image_id: image_ids.count(image_id) for image_id in image_ids}

    def whole_images_only(records: np.ndarray) -> dict[str, float]:
        # Records come in complete, contiguous blocks of one image; each image appears a multiple of its size.
        drawn = [image_ids[r] for r in records]
        start = 0
        while start < len(drawn):
            image_id = drawn[start]
            block = drawn[start : start + sizes[image_id]]
            assert block == [image_id] * sizes[image_id]
            start += sizes[image_id]
        assert len(records) >= len(clusters)  # one cluster per draw, never fewer records than draws
        return {"whole": 1.0}

    interval = bootstrap_ci(len(clusters), on_records(clusters, whole_images_only), n_resamples=200)["whole"]
    assert (interval.low, interval.high) == (1.0, 1.0)


def test_cluster_indices_and_expand():
    clusters = cluster_indices(["b", "a", "b", "c", "a"])
    assert [c.tolist() for c in clusters] == [[0, 2], [1, 4], [3]]
    assert all(c.dtype == np.int64 for c in clusters)
    assert expand(clusters, np.array([2, 0, 0])).tolist() == [3, 0, 2, 0, 2]
    assert expand(clusters, np.array([], dtype=np.int64)).dtype == np.int64


def test_paired_delta_of_identical_statistics_is_exactly_zero():
    values = np.random.default_rng(3).random(30)
    delta = paired_bootstrap_delta(30, mean_of(values), mean_of(values), n_resamples=300)["mean"]
    assert (delta.low, delta.high) == (0.0, 0.0)


def test_paired_delta_is_narrower_than_the_separate_intervals():
    generator = np.random.default_rng(4)
    system_a = generator.random(200)
    system_b = system_a - 0.05 + generator.normal(scale=0.01, size=200)  # b is a bit worse on every image
    delta = paired_bootstrap_delta(200, mean_of(system_a), mean_of(system_b), n_resamples=500)["mean"]
    separate = bootstrap_ci(200, mean_of(system_a), n_resamples=500)["mean"]
    assert delta.contains(0.05) and delta.low > 0
    assert delta.width < separate.width / 10


def test_nan_resamples_are_left_out_and_counted():
    values = np.arange(20, dtype=float)

    def undefined_when_image_0_drawn(indices):
        return {"mean": float("nan") if 0 in indices else float(np.mean(values[indices]))}

    interval = bootstrap_ci(20, undefined_when_image_0_drawn, n_resamples=400)["mean"]
    assert 0 < interval.n_nan < 400  # P(image 0 drawn) = 1 − (19/20)^20 ≈ 0.64
    assert interval.low < interval.high and not math.isnan(interval.low)
    nothing = bootstrap_ci(5, lambda indices: {"x": float("nan")}, n_resamples=10)["x"]
    assert math.isnan(nothing.low) and math.isnan(nothing.high) and nothing.n_nan == 10
    assert nothing.to_json()["low"] is None


def test_interval_to_json_is_plain_json():
    interval = bootstrap_ci(8, mean_of(np.arange(8.0)), n_resamples=50, seed=9)["mean"]
    data = json.loads(json.dumps(interval.to_json()))
    assert data == {
        "low": interval.low,
        "high": interval.high,
        "n_resamples": 50,
        "method": "percentile",
        "seed": 9,
        "confidence": 0.95,
        "n_nan": 0,
    }
    assert Interval(**data) == interval


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"n_clusters": 0}, "at least one cluster"),
        ({"n_resamples": 0}, "n_resamples"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
    ],
)
def test_invalid_arguments(kwargs, problem):
    arguments = {"n_clusters": 5, "n_resamples": 10, "confidence": 0.95} | kwargs
    n_clusters = arguments.pop("n_clusters")
    with pytest.raises(ValueError, match=problem):
        bootstrap_ci(n_clusters, lambda indices: {"x": 1.0}, **arguments)


def test_statistic_must_return_the_same_metrics_every_time():
    calls = iter(range(100))
    with pytest.raises(ValueError, match="'b'"):
        bootstrap_ci(5, lambda indices: {"a": 1.0, "b": 1.0} if next(calls) == 0 else {"a": 1.0}, n_resamples=5)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
    seed=st.integers(0, 2**32 - 1),
    confidence=st.floats(0.5, 0.99),
)
def test_interval_of_a_mean_is_ordered_and_within_the_data(values, seed, confidence):
    data = np.asarray(values)
    interval = bootstrap_ci(len(data), mean_of(data), n_resamples=50, confidence=confidence, seed=seed)["mean"]
    slack = 1e-9 * (1 + np.abs(data).max())
    assert data.min() - slack <= interval.low <= interval.high <= data.max() + slack
