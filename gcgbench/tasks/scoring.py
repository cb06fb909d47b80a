"""What every task family does the same way when it scores: intervals and their recorded configuration, and the
a&s point accuracy of backends that record points."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from gcgbench.api.errors import InputError
from gcgbench.api.phases import phase
from gcgbench.api.task import ScoringOptions
from gcgbench.api.types import RLE, Prediction
from gcgbench.metrics import stats
from gcgbench.metrics.point_accuracy import point_accuracy, prediction_points


def bootstrap_intervals(
    clusters: Sequence[np.ndarray] | int,
    record_statistic: Callable[[np.ndarray], dict[str, float]],
    metric_names: Sequence[str],
    options: ScoringOptions,
) -> dict[str, dict[str, Any]]:
    """95% intervals of `metric_names`, resampling clusters (images) `options.bootstrap_resamples` times.

    `clusters` is either the number of images (records are images: index i is image i) or the record
    indices of each image (`stats.cluster_indices`); `record_statistic(record_indices)` recomputes the
    metrics from a resample of records. Empty when resampling is off.
    """
    if options.bootstrap_resamples <= 0:
        return {}
    if isinstance(clusters, int):
        n_clusters, statistic = clusters, record_statistic
    else:
        n_clusters, statistic = len(clusters), stats.on_records(clusters, record_statistic)
    with phase("bootstrap"):
        found = stats.bootstrap_ci(n_clusters, statistic, n_resamples=options.bootstrap_resamples, seed=options.seed)
    return {name: found[name].to_json() for name in metric_names if name in found}


def bootstrap_config(options: ScoringOptions) -> dict[str, Any]:
    """How the intervals were made, for `metric_config`."""
    return {"resamples": options.bootstrap_resamples, "seed": options.seed, "cluster": "image",
            "confidence": 0.95, "method": "percentile"}


def point_accuracy_metric(task_name: str, items: Sequence[tuple[Prediction, int, Sequence[RLE]]]) -> dict[str, float]:
    """`{"point_accuracy": …}` (metrics/point_accuracy.py) over `items` = (prediction, index of the phrase
    whose point is read, ground-truth masks), when every prediction records a&s points in `extras.points`
    (llava-as, difflmm, aas); `{}` for backends that record none. A malformed or out-of-image point → InputError."""

    points, truths = [], []
    for prediction, index, truth in items:
        try:
            recorded = prediction_points(prediction.extras)
        except ValueError as error:
            raise InputError(f"prediction for doc {prediction.doc_id!r}", "extras.points", str(error)) from None
        if recorded is None:
            return {}
        points.append(recorded[index] if index < len(recorded) else None)
        truths.append(truth)
    if not points:
        return {}
    try:
        return {"point_accuracy": point_accuracy(points, truths).value}
    except ValueError as error:
        raise InputError(task_name, "extras.points", str(error)) from None
