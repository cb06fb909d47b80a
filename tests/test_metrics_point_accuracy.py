"""a&s point accuracy (metrics/point_accuracy.py) and its place in RES / PNG results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.api.types import RLE, Prediction
from gcgbench.data.sample import write_sample
from gcgbench.metrics.point_accuracy import point_accuracy, point_hit, prediction_points
from gcgbench.tasks.registry import get_task
from tests.official_point_accuracy import official_point_accuracy

OPTIONS = ScoringOptions(bootstrap_resamples=0)


def _rle(height: int, width: int, *boxes: tuple[int, int, int, int]) -> RLE:
    mask = np.zeros((height, width), dtype=np.uint8)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = 1
    return RLE.from_mask(mask)


def test_hand_computed_values():
    square = _rle(10, 20, (2, 3, 6, 8))                  # x in [2, 6), y in [3, 8)
    other = _rle(10, 20, (15, 0, 20, 2))
    assert point_hit([2, 3], [square]) and point_hit((5, 7), [square])
    assert not point_hit([6, 3], [square]) and not point_hit([2, 8], [square])   # half-open: x=6, y=8 outside
    assert point_hit([19, 1], [square, other])                                   # the union of the item's masks
    assert not point_hit(None, [square])                                         # no point: a miss
    result = point_accuracy([[3, 4], None, [0, 0], [16, 1]], [[square], [square], [square], [other]])
    assert result.hits == (True, False, False, True) and result.value == 0.5
    assert np.isnan(point_accuracy([], []).value)


def test_bad_points_are_refused():
    square = _rle(10, 20, (2, 3, 6, 8))
    with pytest.raises(ValueError, match="outside the 20x10 image"):
        point_hit([20, 0], [square])
    with pytest.raises(ValueError, match="outside"):
        point_hit([-1, 0], [square])
    with pytest.raises(ValueError, match="2 points for 1 items"):
        point_accuracy([[0, 0], [1, 1]], [[square]])
    assert prediction_points({}) is None and prediction_points({"points": [[1.0, 2], None]}) == [[1, 2], None]
    for bad in ({"points": "x"}, {"points": [[1]]}, {"points": [[True, 1]]}, {"points": [["a", 1]]}):
        with pytest.raises(ValueError):
            prediction_points(bad)


def test_equals_the_official_loop_on_random_cases():
    """Instance task form: per image, GT instances of a few categories (united per category); each detection's
    point is scored against its category's union, exactly as eval_instance_seg.py does."""
    rng = np.random.default_rng(0)
    for case in range(20):
        images, annotations, detections, points, truths = [], [], [], [], []
        for image_id in range(3):
            height, width = int(rng.integers(5, 30)), int(rng.integers(5, 30))
            images.append({"id": image_id, "height": height, "width": width})
            by_category = {}
            for index in range(int(rng.integers(1, 6))):
                category = int(rng.integers(1, 4))
                mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
                rle = RLE.from_mask(mask)
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                    "segmentation": {"size": [height, width], "counts": rle.counts}})
                by_category.setdefault(category, []).append(rle)
            for category, masks in by_category.items():
                for _ in range(int(rng.integers(1, 3))):
                    point = [int(rng.integers(0, width)), int(rng.integers(0, height))]
                    detections.append({"image_id": image_id, "category_id": category, "point": point})
                    points.append(point)
                    truths.append(masks)
        ours = point_accuracy(points, truths).value * 100.0
        assert ours == pytest.approx(official_point_accuracy({"images": images, "annotations": annotations},
                                                             detections), abs=1e-12), case


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


def _with_points(prediction: Prediction, points) -> Prediction:
    return dataclasses.replace(prediction, extras={"points": points})


def _inside(mask: RLE) -> list[int]:
    ys, xs = np.nonzero(mask.decode())
    return [int(xs[0]), int(ys[0])]


def _outside(mask: RLE) -> list[int]:
    ys, xs = np.nonzero(mask.decode() == 0)
    return [int(xs[0]), int(ys[0])]


def test_res_results_carry_point_accuracy_only_for_predictions_with_points(root):
    task = get_task("res_refcoco_val")
    docs = task.docs(DataPaths(root))
    oracle = {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}
    assert "point_accuracy" not in task.score(docs, oracle, OPTIONS).metrics
    truth = {doc.doc_id: doc.phrases[0].masks[0] for doc in docs}
    pointed = {}
    for i, doc in enumerate(docs):
        point = [_inside(truth[doc.doc_id]), _outside(truth[doc.doc_id]), None][i % 3]
        pointed[doc.doc_id] = _with_points(oracle[doc.doc_id], [point])
    result = task.score(docs, pointed, OPTIONS)
    expected = sum(i % 3 == 0 for i in range(len(docs))) / len(docs)
    assert result.metrics["point_accuracy"] == pytest.approx(expected) and result.metrics["ciou"] == pytest.approx(1.0)
    assert "eval_instance_seg" in result.metric_config["point_accuracy"]
    bad = dict(pointed)
    bad[docs[0].doc_id] = _with_points(oracle[docs[0].doc_id], [[10_000, 0]])
    with pytest.raises(InputError, match="outside"):
        task.score(docs, bad, OPTIONS)


def test_png_point_accuracy_counts_scored_phrases_in_order(root):
    task = get_task("png_val")
    docs = task.docs(DataPaths(root))
    oracle = {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}
    hits = total = 0
    pointed = {}
    for doc in docs:
        points = []
        for index, (phrase, info) in enumerate(zip(doc.phrases, doc.truth["phrases"])):
            inside = index % 2 == 0
            points.append(_inside(phrase.masks[0]) if inside else _outside(phrase.masks[0]))
            if info["noun"]:
                total += 1
                hits += inside
        pointed[doc.doc_id] = _with_points(oracle[doc.doc_id], points)
    result = task.score(docs, pointed, OPTIONS)
    assert total > 0 and result.metrics["point_accuracy"] == pytest.approx(hits / total)
    assert "point_accuracy" not in task.score(docs, oracle, OPTIONS).metrics
