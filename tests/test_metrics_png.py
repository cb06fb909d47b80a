"""PNG average recall: exact threshold counting, hand-computed values, parity with the official loops."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gcgbench.api.types import RLE
from gcgbench.metrics import png
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.metrics.png import PngPhrase, aggregate, average_recall, compute_stats, evaluate, thresholds_passed

from official_res_png import average_accuracy, average_accuracy_numpy1, flmm_png, official_png, recall_list

T = png.THRESHOLDS


def rle(mask) -> RLE:
    return RLE.from_mask(np.asarray(mask, dtype=np.uint8))


def assert_same_metrics(first: dict, second: dict) -> None:
    """Bit-for-bit equal metric dicts, NaN equal to NaN (an empty bucket scores NaN)."""
    assert first.keys() == second.keys()
    for key in first:
        assert first[key] == second[key] or (np.isnan(first[key]) and np.isnan(second[key])), key


# --------------------------------------------------------------------------------- threshold counting
def tricky_ious(seed: int, size: int = 300) -> np.ndarray:
    """Random IoUs plus values exactly on, just below and just above thresholds."""
    rng = np.random.default_rng(seed)
    on_grid = T[rng.integers(0, png.THRESHOLD_COUNT, size=40)]
    products = np.array([k * 1e-5 for k in rng.integers(0, png.THRESHOLD_COUNT, size=40)])
    quotients = rng.integers(0, 50, size=40) / rng.integers(50, 100, size=40)
    values = np.concatenate([
        rng.random(size - 160),
        on_grid,
        np.nextafter(on_grid, -np.inf),
        np.nextafter(on_grid, np.inf),
        products,
        quotients,
        [0.0, 0.5, 1.0, 1e-5, 0.99999, T[-1], 0.3, 0.7],
    ])
    return values


@pytest.mark.parametrize("seed", [0, 1])
def test_thresholds_passed_matches_searchsorted(seed):
    values = tricky_ious(seed, 2000)
    assert np.array_equal(thresholds_passed(values, "official"), np.searchsorted(T, values, side="right"))
    values32 = values.astype(np.float32)
    expected32 = np.searchsorted(png.THRESHOLDS_FLOAT32, values32, side="right")
    assert np.array_equal(thresholds_passed(values32, "flmm"), expected32)


def test_thresholds_passed_edges():
    # 0 passes t[0] = 0 only; 0.5 passes t[0..50000]; 1 passes all 100 000; NaN and negatives none
    counts = thresholds_passed(np.array([0.0, 0.5, 1.0, np.nan, -0.1, 1.5]))
    assert counts.tolist() == [1, 50001, 100000, 0, 0, 100000]


@pytest.mark.parametrize("seed", [3, 4])
def test_average_recall_equals_the_literal_official_loop(seed):
    values = tricky_ious(seed)
    values[:5] = np.nan  # official: NaN IoU (0/0) is a miss at every threshold
    assert average_recall(values, "official") == pytest.approx(average_accuracy(list(values)), abs=1e-9)


def test_average_recall_flmm_equals_the_float32_loop():
    values = tricky_ious(5).astype(np.float32)
    assert average_recall(values, "flmm") == pytest.approx(average_accuracy_numpy1(values), abs=1e-9)


def test_recall_curve_equals_the_official_accuracy_list():
    values = tricky_ious(6, 200)
    phrases_stats = png.PngStats(
        protocol="official", narrative_ids=("n",) * len(values), image_ids=(0,) * len(values),
        phrase_ids=tuple(range(len(values))), intersection=np.zeros(len(values), np.int64),
        union=np.zeros(len(values), np.int64), iou=values, thresholds_passed=thresholds_passed(values),
        area=T[np.minimum(thresholds_passed(values), png.THRESHOLD_COUNT - 1)],
        is_plural=np.zeros(len(values), bool), is_thing=np.ones(len(values), bool), pixel_acc=np.ones(len(values)),
    )
    thresholds, recall = png.recall_curve(phrases_stats)
    assert np.array_equal(thresholds, T)
    assert np.array_equal(recall, np.array(recall_list(values)))


# ------------------------------------------------------------------------------------- hand computed
TRUTH_A = [[1, 1, 0], [1, 1, 0]]  # 4 px
HALF_OF_A = [[1, 1, 0], [0, 0, 0]]  # I = 2, U = 4 -> IoU 0.5
DOTS = [[0, 0, 1], [0, 0, 1]]

HAND = [
    # IoU 1 -> passes all 100 000 thresholds -> contributes t[99 999] = 0.99999
    PngPhrase("n1", 7, "p1", rle(TRUTH_A), rle(TRUTH_A), (True,), False),
    # IoU 0.5 -> passes t[0..50 000] -> contributes t[50 001] = 0.50001
    PngPhrase("n1", 7, "p2", rle(HALF_OF_A), rle(TRUTH_A), (False,), False),
    # no prediction: IoU 0 -> passes t[0] -> contributes t[1] = 0.00001; two segments (thing, then stuff)
    PngPhrase("n2", 8, "p3", None, rle(DOTS), (True, False), True),
]


def test_hand_computed_official():
    result = evaluate(HAND)
    assert result.protocol == "official"
    assert result.stats.thresholds_passed.tolist() == [100000, 50001, 1]
    m = result.metrics
    assert m["ar"] == pytest.approx((0.99999 + 0.50001 + 0.00001) / 3, abs=1e-12)
    # official buckets: plural = more than one segment (p3); thing = last segment's category (p1 only)
    assert m["ar_singular"] == pytest.approx((0.99999 + 0.50001) / 2, abs=1e-12)
    assert m["ar_plural"] == pytest.approx(0.00001, abs=1e-12)
    assert m["ar_things"] == pytest.approx(0.99999, abs=1e-12)
    assert m["ar_stuff"] == pytest.approx((0.50001 + 0.00001) / 2, abs=1e-12)
    assert m["acc_0.5"] == pytest.approx(1 / 3)  # strict >: the IoU of exactly 0.5 does not count
    assert "pixel_acc" not in m


def test_hand_computed_flmm():
    m = evaluate(HAND, protocol="flmm").metrics
    # F-LMM buckets: plural = JSON flag (p3); plurals are things -> things {p1, p3}, stuff {p2}
    assert m["ar_things"] == pytest.approx((0.99999 + 0.00001) / 2, abs=1e-12)
    assert m["ar_stuff"] == pytest.approx(0.50001, abs=1e-12)
    assert m["ar"] == pytest.approx((0.99999 + 0.50001 + 0.00001) / 3, abs=1e-12)
    # pixel accuracy over 6 px: p1 6/6, p2 (6 - 2)/6, p3 (6 - 2)/6
    assert m["pixel_acc"] == pytest.approx((1 + 4 / 6 + 4 / 6) / 3)


def test_both_empty_is_nan_officially_and_zero_for_flmm():
    nothing = [[0, 0], [0, 0]]
    phrase = PngPhrase("n", 0, "p", None, rle(nothing), (True,), False)
    official = compute_stats([phrase], "official")
    assert np.isnan(official.iou[0]) and official.area[0] == 0.0  # NaN >= t is False everywhere
    flmm = compute_stats([phrase], "flmm")
    assert flmm.iou[0] == 0.0 and flmm.area[0] == pytest.approx(1e-5)  # 0 / (0 + 1e-12) = 0 passes t[0]


def test_empty_bucket_is_nan():
    m = evaluate(HAND[:2]).metrics
    assert np.isnan(m["ar_plural"])


def test_flmm_rejects_a_singular_with_two_segments():
    bad = PngPhrase("n", 0, "p", None, rle(DOTS), (True, True), False)
    assert evaluate([bad]).metrics["ar_plural"] == pytest.approx(1e-5)  # official: plural by count
    with pytest.raises(ValueError, match="singular but has 2 segments"):
        evaluate([bad], protocol="flmm")


def test_errors():
    with pytest.raises(ValueError, match="no PNG phrases"):
        evaluate([])
    with pytest.raises(ValueError, match="unknown PNG protocol"):
        evaluate(HAND, protocol="aas")
    with pytest.raises(ValueError, match="has no segments"):
        evaluate([PngPhrase("n", 0, "p", None, rle(DOTS), (), False)])
    with pytest.raises(MaskSizeError, match="phrase 'odd'"):
        evaluate([PngPhrase("n", 0, "odd", rle([[1, 0]]), rle(DOTS), (True,), False)])
    with pytest.raises(ValueError, match="zero phrases"):
        aggregate(compute_stats(HAND), [])


# ------------------------------------------------------------------------------------------- parity
def random_narratives(seed: int, n_narratives: int):
    """Panoptic label maps of random segments; phrases pick 1-3 segments; predictions perturb truth."""
    rng = np.random.default_rng(seed)
    narratives, dense = [], []
    for narrative in range(n_narratives):
        h, w = rng.integers(4, 12, size=2)
        n_segments = int(rng.integers(2, 7))
        labels = rng.integers(0, n_segments, size=(h, w))
        segment_is_thing = rng.random(n_segments) < 0.6
        phrases, dense_phrases = [], []
        for k in range(rng.integers(1, 6)):
            chosen = rng.choice(n_segments, size=min(int(rng.integers(1, 4)), n_segments), replace=False)
            truth = np.isin(labels, chosen)
            roll = rng.random()
            if roll < 0.1:
                prediction = None
            elif roll < 0.2:
                prediction = truth.copy()
            elif roll < 0.3:
                prediction = labels == rng.integers(0, n_segments)
            else:
                prediction = np.where(rng.random((h, w)) < rng.uniform(0, 0.5), ~truth, truth)
            plural_flag = len(chosen) > 1 or rng.random() < 0.2
            things = tuple(bool(segment_is_thing[s]) for s in chosen)
            phrases.append(PngPhrase(f"n{narrative}", narrative, f"{narrative}-{k}",
                                     None if prediction is None else rle(prediction), rle(truth), things, plural_flag))
            dense_phrases.append({
                "prediction": np.zeros((h, w), np.uint8) if prediction is None else prediction.astype(np.uint8),
                "truth": truth.astype(np.uint8), "segment_is_thing": list(things), "plural_flag": plural_flag,
            })
        narratives.append(phrases)
        dense.append(dense_phrases)
    return narratives, dense


def test_parity_with_official_perform_test():
    narratives, dense = random_narratives(0, 70)
    phrases = [p for n in narratives for p in n]
    assert len(phrases) > 150
    ours = evaluate(phrases, "official").metrics
    expected = official_png([p for n in dense for p in n])
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_parity_with_flmm_eval_png():
    narratives, dense = random_narratives(1, 70)
    ours = evaluate([p for n in narratives for p in n], "flmm").metrics
    expected = flmm_png(dense)
    for key, value in expected.items():
        float32_mean = key in ("pixel_acc", "acc_0.5")  # upstream takes these means in float32
        assert ours[key] == pytest.approx(value, abs=1e-6 if float32_mean else 1e-9), key


# ----------------------------------------------------------------------------------------- properties
phrases_strategy = st.integers(0, 2**30).map(lambda seed: [p for n in random_narratives(seed, 5)[0] for p in n])


@settings(max_examples=25, deadline=None)
@given(phrases_strategy, st.sampled_from(png.PNG_PROTOCOLS))
def test_truth_as_prediction_scores_the_maximum(phrases, protocol):
    perfect = [PngPhrase(p.narrative_id, p.image_id, p.phrase_id, p.truth, p.truth, p.segment_is_thing,
                         p.plural_flag) for p in phrases if p.truth.area() > 0]
    assume(perfect)
    m = evaluate(perfect, protocol).metrics
    # IoU 1 passes every threshold; the left Riemann sum stops at t[99 999] = 0.99999, as upstream
    for key in ("ar", "ar_things", "ar_stuff", "ar_singular", "ar_plural"):
        assert np.isnan(m[key]) or m[key] == pytest.approx(T[-1], abs=1e-12)
    assert m["ar"] == pytest.approx(0.99999, abs=1e-12)
    assert m["acc_0.5"] == 1.0


@settings(max_examples=25, deadline=None)
@given(phrases_strategy, st.sampled_from(png.PNG_PROTOCOLS), st.randoms(use_true_random=False))
def test_order_is_irrelevant(phrases, protocol, random):
    shuffled = list(phrases)
    random.shuffle(shuffled)
    first, second = evaluate(phrases, protocol).metrics, evaluate(shuffled, protocol).metrics
    for key in first:
        assert first[key] == pytest.approx(second[key], abs=1e-12, nan_ok=True)


@settings(max_examples=25, deadline=None)
@given(phrases_strategy, st.sampled_from(png.PNG_PROTOCOLS), st.integers(0, 2**30))
def test_aggregate_matches_full_and_resampled_evaluation(phrases, protocol, seed):
    stats = compute_stats(phrases, protocol)
    assert_same_metrics(aggregate(stats, np.arange(len(phrases))), evaluate(phrases, protocol).metrics)
    indices = np.random.default_rng(seed).integers(0, len(phrases), size=len(phrases))
    resampled = evaluate([phrases[i] for i in indices], protocol).metrics
    for key, value in aggregate(stats, indices).items():
        assert value == pytest.approx(resampled[key], abs=1e-12, nan_ok=True)
