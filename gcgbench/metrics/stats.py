"""95% bootstrap confidence intervals clustered by image, for every headline metric.

Records of one image (several phrases, masks or questions) are not independent, so we resample IMAGES:
draw n_clusters cluster indices uniformly with replacement, recompute the metric on every record of the
drawn clusters (`expand`), repeat B times, and report the percentile interval

    [Q_{(1−c)/2}, Q_{(1+c)/2}] of the B recomputed values (c = confidence; numpy's default "linear"
    quantile, Hyndman & Fan type 7)

(Efron & Tibshirani 1993, ch. 13; the cluster bootstrap: Davison & Hinkley 1997, §3.8). The metric modules
supply `statistic(cluster_indices) -> {metric: value}`; recomputing the metric (not averaging per-record
values) keeps ratio metrics such as cIoU = ΣI / ΣU or micro recall exact on each resample.

NaN: a resample on which a metric is undefined (e.g. no ground truth drawn) returns NaN; those resamples
are left out of that metric's quantiles (`np.nanpercentile`) and counted in `Interval.n_nan`, so the
interval is conditional on the metric being defined. All resamples NaN gives a NaN interval.

Determinism: one `numpy.random.Generator(PCG64(seed))` per call draws the resamples in order, so equal
arguments give equal intervals on every platform numpy supports.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], dict[str, float]]


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval and how it was made (enough to reproduce it)."""

    low: float
    high: float
    n_resamples: int
    method: str = "percentile"
    seed: int = 0
    confidence: float = 0.95
    n_nan: int = 0  # resamples on which the statistic was NaN, left out of the quantiles

    def to_json(self) -> dict[str, float | int | str | None]:
        """Plain dict; NaN bounds become None (JSON has no NaN)."""
        data = asdict(self)
        for bound in ("low", "high"):
            data[bound] = None if math.isnan(getattr(self, bound)) else float(data[bound])
        return data

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def cluster_indices(image_ids: Sequence[str]) -> list[np.ndarray]:
    """Record indices grouped by image, clusters in order of first appearance, indices ascending (int64).

    >>> [c.tolist() for c in cluster_indices(["b", "a", "b", "c"])]
    [[0, 2], [1], [3]]
    """
    groups: dict[str, list[int]] = {}
    for record, image_id in enumerate(image_ids):
        groups.setdefault(image_id, []).append(record)
    return [np.asarray(records, dtype=np.int64) for records in groups.values()]


def expand(clusters: Sequence[np.ndarray], sampled_cluster_ids: np.ndarray) -> np.ndarray:
    """Record indices of the sampled clusters, concatenated in sampling order (repeats repeat records).

    >>> expand([np.array([0, 2]), np.array([1])], np.array([0, 0, 1])).tolist()
    [0, 2, 0, 2, 1]
    """
    sampled = np.asarray(sampled_cluster_ids, dtype=np.int64)
    if sampled.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([clusters[index] for index in sampled]).astype(np.int64, copy=False)


def on_records(clusters: Sequence[np.ndarray], record_statistic: Statistic) -> Statistic:
    """Turn a statistic of record indices into one of cluster indices (for `bootstrap_ci`)."""
    return lambda sampled_cluster_ids: record_statistic(expand(clusters, sampled_cluster_ids))


def bootstrap_ci(
    n_clusters: int,
    statistic: Statistic,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Percentile interval of each metric `statistic` returns, over `n_resamples` cluster resamples.

    `statistic(indices)` gets an int64 array of `n_clusters` cluster indices drawn with replacement and
    must return the same metric names every time.
    """
    draws = _resample(n_clusters, [statistic], n_resamples, confidence, seed)
    return {name: _interval(values[0], n_resamples, confidence, seed) for name, values in draws.items()}


def paired_bootstrap_delta(
    n_clusters: int,
    statistic_a: Statistic,
    statistic_b: Statistic,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Percentile interval of a − b per metric, both statistics evaluated on the SAME resamples.

    Pairing removes the between-image variance the two systems share, so the interval of the difference is
    much narrower than the two separate intervals suggest. Metrics are those both statistics return.
    """
    draws = _resample(n_clusters, [statistic_a, statistic_b], n_resamples, confidence, seed)
    return {name: _interval(a - b, n_resamples, confidence, seed) for name, (a, b) in draws.items()}


def _resample(
    n_clusters: int,
    statistics: Sequence[Statistic],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, list[np.ndarray]]:
    """For each metric name common to all statistics: one array of n_resamples values per statistic."""
    if n_clusters < 1:
        raise ValueError(f"the bootstrap needs at least one cluster, got n_clusters={n_clusters}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    generator = np.random.Generator(np.random.PCG64(seed))
    names: list[str] | None = None
    values = np.empty((len(statistics), 0, n_resamples))
    for draw in range(n_resamples):
        sampled = generator.integers(0, n_clusters, size=n_clusters, dtype=np.int64)
        results = [statistic(sampled) for statistic in statistics]
        if names is None:
            names = [name for name in results[0] if all(name in result for result in results[1:])]
            if not names:
                raise ValueError("the statistics return no metric name in common")
            values = np.full((len(statistics), len(names), n_resamples), np.nan)
        for which, result in enumerate(results):
            missing = [name for name in names if name not in result]
            if missing:
                raise ValueError(f"statistic returned no {missing[0]!r} on resample {draw}")
            values[which, :, draw] = [result[name] for name in names]
    return {
        name: [values[which, position] for which in range(len(statistics))]
        for position, name in enumerate(names or [])
    }


def _interval(values: np.ndarray, n_resamples: int, confidence: float, seed: int) -> Interval:
    n_nan = int(np.isnan(values).sum())
    if n_nan == len(values):
        low = high = float("nan")
    else:
        tail = 100.0 * (1.0 - confidence) / 2.0
        low, high = (float(q) for q in np.nanpercentile(values, [tail, 100.0 - tail]))
    return Interval(low, high, n_resamples, "percentile", seed, confidence, n_nan)
