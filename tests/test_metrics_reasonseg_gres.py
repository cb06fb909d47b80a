"""ReasonSeg (LISA validate with ignore pixels) and gRefCOCO (ReLA evaluator) metrics: hand-computed cases and
parity with the literal restatements in official_reasonseg_gres.py on hundreds of random cases, to 1e-6."""

import json

import numpy as np
import pytest

from gcgbench.api.types import RLE
from gcgbench.data.reasonseg import lisa_mask
from gcgbench.metrics import gres, reasonseg
from gcgbench.metrics.masks import MaskSizeError

from official_reasonseg_gres import flmm_reason_seg, get_mask_from_json, lisa_validate, rela_evaluate


def rle(mask) -> RLE:
    return RLE.from_mask(np.asarray(mask, dtype=np.uint8))


def rows(*indices, h=4, w=4):
    mask = np.zeros((h, w), dtype=np.uint8)
    for index in indices:
        mask[index] = 1
    return mask


EMPTY = rows()


# ------------------------------------------------------------------------------------------ ReasonSeg, by hand
def test_reasonseg_hand_computed():
    # A: target = row 0, ignore = row 1, prediction = rows 0-1: ignored pixels drop out, I = 4, U = 8 - 4 = 4.
    # B: no target, prediction only on ignored pixels: I = U = 0, LISA's "no-object target" scores 1.
    # C: no prediction, a 4-pixel target: I = 0, U = 4.
    # D: target = row 2, prediction = rows 2-3: I = 4, U = 8.
    samples = [
        reasonseg.ReasonSegSample("a", "a", rle(rows(0, 1)), rle(rows(0)), rle(rows(1))),
        reasonseg.ReasonSegSample("b", "b", rle(rows(1)), rle(EMPTY), rle(rows(1))),
        reasonseg.ReasonSegSample("c", "c", None, rle(rows(0)), rle(EMPTY)),
        reasonseg.ReasonSegSample("d", "d", rle(rows(2, 3)), rle(rows(2)), rle(EMPTY)),
    ]
    stats = reasonseg.compute_stats(samples)
    assert stats.intersection.tolist() == [4, 0, 0, 4]
    assert stats.union.tolist() == [4, 0, 4, 8]
    a = float(np.float32(4) / (np.float32(4) + np.float32(1e-5)))
    d = float(np.float32(4) / (np.float32(8) + np.float32(1e-5)))
    assert stats.iou.tolist() == [a, 1.0, 0.0, d]
    metrics = reasonseg.aggregate(stats)
    assert metrics == {"giou": pytest.approx((a + 1 + 0 + d) / (4 + 1e-5), abs=1e-12),
                       "ciou": pytest.approx(8 / (16 + 1e-10), abs=1e-12)}
    assert reasonseg.aggregate(stats, [0, 0])["ciou"] == pytest.approx(1.0, abs=1e-9)


def test_reasonseg_size_mismatch_and_no_samples():
    with pytest.raises(MaskSizeError, match="sample 'x'"):
        reasonseg.compute_stats([reasonseg.ReasonSegSample("x", "x", rle(np.ones((3, 4))), rle(EMPTY), rle(EMPTY))])
    with pytest.raises(ValueError):
        reasonseg.compute_stats([])


# ------------------------------------------------------------------------------------------ random cases
def random_blob(rng, h, w):
    mask = np.zeros((h, w), dtype=np.uint8)
    kind = rng.integers(4)
    if kind == 0:
        return mask  # empty
    if kind == 1:
        return (rng.random((h, w)) < rng.uniform(0.05, 0.6)).astype(np.uint8)
    for _ in range(rng.integers(1, 4)):  # several rectangles: multi-object
        y0, x0 = rng.integers(h), rng.integers(w)
        mask[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = 1
    return mask


def random_reasonseg(seed: int, n: int):
    rng = np.random.default_rng(seed)
    items, samples = [], []
    for index in range(n):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        target, ignore, prediction = random_blob(rng, h, w), random_blob(rng, h, w), random_blob(rng, h, w)
        gt = np.where(ignore == 1, 255, target).astype(np.uint8)  # one value per pixel, as get_mask_from_json
        items.append((prediction, gt))
        samples.append(reasonseg.ReasonSegSample(str(index), str(index), None if rng.random() < 0.1 and not
                                                 prediction.any() else rle(prediction), rle(gt == 1), rle(gt == 255)))
    return items, samples


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reasonseg_parity_with_lisa_validate(seed):
    items, samples = random_reasonseg(seed, 150)
    giou, ciou = lisa_validate(items)
    metrics = reasonseg.aggregate(reasonseg.compute_stats(samples))
    assert metrics["giou"] == pytest.approx(giou, abs=1e-6)
    assert metrics["ciou"] == pytest.approx(ciou, abs=1e-6)


@pytest.mark.parametrize("seed", [3, 4])
def test_reasonseg_flmm_protocol_parity_with_flmm_reason_seg(seed):
    items, samples = random_reasonseg(seed, 150)
    giou, ciou = flmm_reason_seg(items)
    stats = reasonseg.compute_stats(samples, "flmm")
    assert stats.iou[stats.union == 0].tolist() == [0.0] * int((stats.union == 0).sum())  # U = 0 scores 0 here
    metrics = reasonseg.aggregate(stats)
    assert metrics["giou"] == pytest.approx(giou, abs=1e-6)
    assert metrics["ciou"] == pytest.approx(ciou, abs=1e-6)
    with pytest.raises(ValueError, match="unknown ReasonSeg protocol"):
        reasonseg.compute_stats(samples, "glamm")


def test_ground_truth_mask_parity_with_get_mask_from_json(tmp_path):
    """Random LabelMe shapes (targets, ignores, flags, overlaps, equal areas, float points): our reader's
    mask equals the restated get_mask_from_json pixel for pixel."""
    rng = np.random.default_rng(7)
    for case in range(120):
        h, w = int(rng.integers(8, 48)), int(rng.integers(8, 48))
        shapes = []
        for _ in range(int(rng.integers(0, 6))):
            label = str(rng.choice(["target", "ignore", "Ignore_region", "flag", "FLAG", "person"]))
            if rng.random() < 0.3:  # equal-area twins: tie order decided by numpy's argsort as upstream
                x, y = int(rng.integers(0, w - 4)), int(rng.integers(0, h - 4))
                points = [[x, y], [x + 3, y], [x + 3, y + 3], [x, y + 3]]
            else:
                points = [[float(rng.uniform(-3, w + 3)), float(rng.uniform(-3, h + 3))]
                          for _ in range(int(rng.integers(1, 7)))]
            shapes.append({"label": label, "points": points})
        path = tmp_path / f"{case}.json"
        path.write_text(json.dumps({"text": ["q"], "is_sentence": False, "shapes": shapes}))
        expected, _, _ = get_mask_from_json(str(path), np.zeros((h, w, 3), dtype=np.uint8))
        assert np.array_equal(lisa_mask(shapes, h, w, path), expected), case


# ------------------------------------------------------------------------------------------ gRefCOCO, by hand
def gres_hand_samples():
    two_objects = rows(0) | rows(3)  # a multi-target truth: two 4-pixel objects, 8 px
    return [
        gres.GresSample("tp", 1, None, rle(EMPTY), True),  # no target, nothing predicted
        gres.GresSample("fn", 1, rle(rows(2)[:, :]), rle(EMPTY), True),  # no target, 4 px predicted
        gres.GresSample("fp", 2, rle(EMPTY), rle(rows(1)), False),  # a target, empty prediction
        gres.GresSample("tn", 2, rle(rows(0, 1)), rle(two_objects), False),  # I = 4, U = 12
    ]


def test_gres_hand_computed():
    stats = gres.compute_stats(gres_hand_samples())
    assert stats.intersection.tolist() == [0, 0, 0, 4]
    assert stats.union.tolist() == [0, 4, 4, 12]
    assert stats.iou.tolist() == [1.0, 0.0, 0.0, 1 / 3]
    assert gres.counts(stats) == {"TP": 1, "TN": 1, "FP": 1, "FN": 1}
    assert gres.aggregate(stats) == {
        "giou": pytest.approx((1 + 1 / 3) / 4), "ciou": pytest.approx(4 / 20), "n_acc": 0.5, "t_acc": 0.5,
        "precision_0.7": 0.0, "precision_0.8": 0.0, "precision_0.9": 0.0,
    }


def test_gres_min_mask_area_says_nothing_and_keeps_the_mask_in_u():
    # min area 5: the 4-px "fn" mask now says "no target" (TP); the targeted 8-px prediction stays.
    stats = gres.compute_stats(gres_hand_samples(), min_mask_area=5)
    assert gres.counts(stats) == {"TP": 2, "TN": 1, "FP": 1, "FN": 0}
    assert gres.aggregate(stats)["n_acc"] == 1.0
    # min area 9: the targeted 8-px prediction says "no target" too: FP, I = 0 but U keeps |P ∪ G| = 12
    stats = gres.compute_stats(gres_hand_samples(), min_mask_area=9)
    assert stats.intersection.tolist() == [0, 0, 0, 0] and stats.union.tolist() == [0, 0, 4, 12]
    assert gres.aggregate(stats)["t_acc"] == 0.0
    with pytest.raises(ValueError, match="min_mask_area"):
        gres.compute_stats(gres_hand_samples(), min_mask_area=0)


def test_gres_without_no_target_expressions_sets_both_accuracies_to_zero_as_rela():
    sample = gres.GresSample("t", 1, rle(rows(0)), rle(rows(0)), False)
    metrics = gres.aggregate(gres.compute_stats([sample]))
    assert (metrics["giou"], metrics["ciou"], metrics["n_acc"], metrics["t_acc"]) == (1.0, 1.0, 0.0, 0.0)
    only_nt = gres.aggregate(gres.compute_stats([gres.GresSample("n", 1, None, rle(EMPTY), True)]))
    assert only_nt["n_acc"] == 1.0 and np.isnan(only_nt["t_acc"]) and np.isnan(only_nt["ciou"])
    assert np.isnan(only_nt["precision_0.7"]) and only_nt["giou"] == 1.0


def random_gres(seed: int, n: int, min_area: int):
    rng = np.random.default_rng(seed)
    official, samples = [], []
    for index in range(n):
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        no_target = bool(rng.random() < 0.3)
        truth = np.zeros((h, w), np.uint8) if no_target else random_blob(rng, h, w)
        prediction = random_blob(rng, h, w)
        if rng.random() < 0.15:
            prediction[:] = 0
            prediction.flat[: int(rng.integers(0, 4))] = 1  # tiny masks around the threshold
        given = None if not prediction.any() and rng.random() < 0.5 else rle(prediction)
        official.append({"pred_mask": prediction.astype(np.int8), "gt_mask": truth.astype(np.int8),
                         "gt_nt": no_target, "pred_nt": int(prediction.sum()) < min_area})
        samples.append(gres.GresSample(str(index), index % 7, given, rle(truth), no_target))
    return official, samples


@pytest.mark.parametrize("seed,min_area", [(0, 1), (1, 1), (2, 3), (3, 20)])
def test_gres_parity_with_rela_evaluator(seed, min_area):
    official, samples = random_gres(seed, 150, min_area)
    expected = rela_evaluate(official)
    found = gres.aggregate(gres.compute_stats(samples, min_area))
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=1e-6), key


def test_gres_bootstrap_resample_with_repeats_matches_the_official_loop_on_the_repeated_list():
    official, samples = random_gres(9, 60, 1)
    stats = gres.compute_stats(samples)
    indices = np.random.default_rng(3).integers(0, 60, size=60)
    expected = rela_evaluate([official[i] for i in indices])
    found = gres.aggregate(stats, indices)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, abs=1e-6), key
