"""Instance segmentation prompted per category (a&s instance_seg.py / eval_instance_seg.py): reader, metric, task."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.api.types import RLE
from gcgbench.cli.app import main
from gcgbench.data.coco_instances import read_instance_docs
from gcgbench.data.sample import write_sample
from gcgbench.metrics import instances
from gcgbench.tasks.registry import get_task
from tests.official_point_accuracy import official_point_accuracy

OPTIONS = ScoringOptions(bootstrap_resamples=0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


def _box(height, width, x0, y0, x1, y1) -> RLE:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    return RLE.from_mask(mask)


def test_hand_computed_ap_and_point_accuracy():
    """Two categories on one image: cat 1 found exactly (AP 1), cat 2 answered with a disjoint mask (AP 0):
    AP = AP50 = AP75 = mean over categories = 0.5; one of the two points inside its category's mask."""
    a, b = _box(20, 30, 0, 0, 10, 10), _box(20, 30, 15, 5, 25, 15)
    truths = [instances.GtInstance("i", 1, a), instances.GtInstance("i", 2, b)]
    found = [instances.Detection("i", 1, a, 0.9, [3, 3]), instances.Detection("i", 2, _box(20, 30, 0, 12, 5, 18), 0.8, [1, 13])]
    metrics = instances.mask_ap([("i", 20, 30)], [(1, "a"), (2, "b")], truths, found)
    assert metrics["ap"] == pytest.approx(0.5) and metrics["ap50"] == pytest.approx(0.5) and metrics["ap75"] == pytest.approx(0.5)
    assert instances.instance_point_accuracy(truths, found) == 0.5
    assert instances.mask_ap([("i", 20, 30)], [(1, "a")], truths, []) == {k: 0.0 for k in instances.AP_KEYS}
    lost = [instances.Detection("i", 3, a, 1.0, [3, 3])]                # a category the image does not have: a miss
    assert instances.instance_point_accuracy(truths, lost) == 0.0
    assert math.isnan(instances.instance_point_accuracy(truths, [instances.Detection("i", 1, a)]))


def test_point_accuracy_equals_the_official_loop_on_random_cases():
    rng = np.random.default_rng(1)
    for case in range(15):
        gt_images, gt_annotations, dt, truths, found = [], [], [], [], []
        for image_id in range(3):
            height, width = int(rng.integers(4, 25)), int(rng.integers(4, 25))
            gt_images.append({"id": image_id, "height": height, "width": width})
            present = set()
            for _ in range(int(rng.integers(1, 5))):
                category = int(rng.integers(1, 4))
                rle = RLE.from_mask((rng.random((height, width)) < 0.4).astype(np.uint8))
                gt_annotations.append({"image_id": image_id, "category_id": category,
                                       "segmentation": {"size": [height, width], "counts": rle.counts}})
                truths.append(instances.GtInstance(image_id, category, rle))
                present.add(category)
            for category in sorted(present):
                point = [int(rng.integers(0, width)), int(rng.integers(0, height))]
                dt.append({"image_id": image_id, "category_id": category, "point": point})
                found.append(instances.Detection(image_id, category, truths[-1].mask, 1.0, point))
        ours = instances.instance_point_accuracy(truths, found) * 100.0
        assert ours == pytest.approx(official_point_accuracy({"images": gt_images, "annotations": gt_annotations}, dt)), case


def test_oracle_scores_perfectly_through_the_cli(root, tmp_path):
    out = tmp_path / "oracle"
    assert main(["run", "--model", "oracle", "--task", "instances_coco_val", "--data-root", str(root), "--no-cache",
                 "--output", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]["instances_coco_val"]
    assert all(results[k] == pytest.approx(1.0) for k in ("ap", "ap50", "ap75", "point_accuracy"))


def test_reader_and_requests(root):
    task = get_task("instances")
    docs = task.docs(DataPaths(root))
    assert len(docs) == 8 and all(doc.phrases for doc in docs)
    request = task.requests(docs[0])
    assert request.kind == "segment_categories" and request.prompt == "Describe the image in detail."
    assert [c["id"] for c in request.inputs["categories"]] == sorted({i["category_id"] for i in docs[0].truth["instances"]})


def test_bad_predictions_and_files_are_refused(root, tmp_path):
    task = get_task("instances_coco_val")
    docs = task.docs(DataPaths(root))
    oracle = {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}
    first = docs[0].doc_id
    broken = dict(oracle)
    broken[first] = dataclasses.replace(oracle[first], extras={"scores": [1.0]})
    with pytest.raises(InputError, match="category id per phrase"):
        task.score(docs, broken, OPTIONS)
    broken[first] = dataclasses.replace(oracle[first], extras={**oracle[first].extras, "points": [[999, 0]] * len(oracle[first].phrases)})
    with pytest.raises(InputError, match="outside the image"):
        task.score(docs, broken, OPTIONS)
    data = json.loads((root / "coco/annotations/instances_val2017.json").read_text())
    data["annotations"][2]["category_id"] = 77
    bad = tmp_path / "instances.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"annotations\[2\].*unknown category_id 77"):
        read_instance_docs(bad, root / "coco/val2017")
