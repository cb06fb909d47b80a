"""Point accuracy of attend-and-segment: does the attention point fall inside the ground-truth mask?

It scores the attention readout alone, before SAM or a proposal turns the point into a mask.

Upstream `aas/eval_instance_seg.py` (Shengcao-Cao/groundLMM @ 5dba7ce5, "point accuracy evaluation"): for
each predicted instance of category c with point (x, y), correct ⇔ M_c[y, x] = 1, where M_c is the union
(`|=`) of the image's ground-truth masks of category c; accuracy = correct / total (printed × 100), total = the
number of predictions.

Here, per scored item i (a RES expression, a PNG phrase, a category of an image) with ground-truth mask M_i
(the union of its masks, as upstream) and the backend's point p_i (`Prediction.extras["points"]`):

    hit_i = 1 if p_i = (x, y) is given and M_i[y, x] = 1, else 0;      point_accuracy = Σ_i hit_i / N,

N = number of scored items (a fraction, as every gcgbench metric is stored). An item without a point (no
token for the phrase, no copula for the RES rule) is a miss; upstream has no such case, every prediction
carrying a point, so on upstream's inputs both counts agree. A point outside the image is invalid input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from gcgbench.api.types import RLE


@dataclass(frozen=True)
class PointAccuracy:
    hits: tuple[bool, ...]

    @property
    def value(self) -> float:
        return sum(self.hits) / len(self.hits) if self.hits else float("nan")


def point_hit(point: Sequence[int] | None, truths: Sequence[RLE]) -> bool:
    """Whether (x, y) lies in the union of `truths` (all of one image size); False without a point."""
    if point is None:
        return False
    if not truths:
        raise ValueError("an item needs at least one ground-truth mask")
    x, y = int(point[0]), int(point[1])
    height, width = truths[0].size
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"point ({x}, {y}) lies outside the {width}x{height} image")
    return any(bool(mask.decode()[y, x]) for mask in truths)


def point_accuracy(points: Sequence[Sequence[int] | None], truths: Sequence[Sequence[RLE]]) -> PointAccuracy:
    """Point accuracy of items with points `points[i]` (or None) and ground truth `truths[i]` (masks to unite)."""
    if len(points) != len(truths):
        raise ValueError(f"{len(points)} points for {len(truths)} items")
    return PointAccuracy(tuple(point_hit(p, t) for p, t in zip(points, truths)))


def prediction_points(extras: Mapping[str, Any]) -> list[list[int] | None] | None:
    """The `points` a backend recorded in a prediction's extras (a&s backends: one per phrase, in phrase
    order, [x, y] or null), or None when it recorded none. Malformed entries raise ValueError."""
    points = extras.get("points") if isinstance(extras, Mapping) else None
    if points is None:
        return None
    if not isinstance(points, (list, tuple)):
        raise ValueError("extras.points must be a list")
    out: list[list[int] | None] = []
    for point in points:
        if point is None:
            out.append(None)
        elif (isinstance(point, (list, tuple)) and len(point) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)):
            out.append([int(point[0]), int(point[1])])
        else:
            raise ValueError(f"extras.points entries must be [x, y] or null, got {point!r}")
    return out
