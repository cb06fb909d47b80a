"""RES metrics: hand-computed values, edge cases, parity with the official loops, properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcgbench.api.types import RLE
from gcgbench.metrics import res
from gcgbench.metrics.masks import MaskSizeError
from gcgbench.metrics.res import ResSample, aggregate, compute_stats, evaluate

from official_res_png import lavt_precision, lisa_glamm_res, mmdet_refseg


def rle(mask) -> RLE:
    return RLE.from_mask(np.asarray(mask, dtype=np.uint8))


def assert_same_metrics(first: dict, second: dict) -> None:
    """Bit-for-bit equal metric dicts, NaN equal to NaN (an empty bucket scores NaN)."""
    assert first.keys() == second.keys()
    for key in first:
        assert first[key] == second[key] or (np.isnan(first[key]) and np.isnan(second[key])), key


def empty(h=4, w=4) -> RLE:
    return rle(np.zeros((h, w)))


ROW0 = [[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]  # 4 px
SQUARE = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]  # 4 px, shares 2 with ROW0
COLUMN0 = [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]  # 4 px
DOT = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]  # 1 px

# A: I = 2, U = 4 + 4 - 2 = 6, IoU 1/3.   B: I = U = 4, IoU 1.   C: no prediction, I = 0, U = 1.
# D: both empty, I = U = 0.
HAND = [
    ResSample("A", 1, rle(ROW0), rle(SQUARE)),
    ResSample("B", 1, rle(COLUMN0), rle(COLUMN0)),
    ResSample("C", 2, None, rle(DOT)),
    ResSample("D", 2, empty(), empty()),
]


def test_hand_computed_flmm():
    result = evaluate(HAND, protocol="flmm")
    assert result.stats.intersection.tolist() == [2, 4, 0, 0]
    assert result.stats.union.tolist() == [6, 4, 1, 0]
    # cIoU = (2 + 4 + 0 + 0) / (6 + 4 + 1 + 0) = 6/11; mIoU = (1/3 + 1 + 0 + 0 [empty/empty -> 0]) / 4 = 1/3
    assert result.metrics["ciou"] == pytest.approx(6 / 11, abs=1e-12)
    assert result.metrics["giou"] == pytest.approx(1 / 3, abs=1e-7)  # float32 per-expression IoU
    # only B reaches any threshold: 1/4 at every X
    for threshold in res.PRECISION_THRESHOLDS:
        assert result.metrics[f"precision_{threshold}"] == 0.25
    assert result.metric_config()["protocol"] == "flmm"


def test_hand_computed_lisa():
    result = evaluate(HAND)  # "lisa" is the default
    assert result.protocol == "lisa"
    # per expression I / (U + 1e-5), +1 where U == 0: 2/6.00001, 4/4.00001, 0/1.00001, 0/0.00001 + 1
    expected_terms = [2 / 6.00001, 4 / 4.00001, 0.0, 1.0]
    assert result.stats.iou == pytest.approx(expected_terms, abs=1e-7)
    assert result.metrics["giou"] == pytest.approx(sum(expected_terms) / (4 + 1e-5), abs=1e-7)
    assert result.metrics["ciou"] == pytest.approx(6 / (11 + 1e-10), abs=1e-12)
    # precision on exact I/U with empty/empty = 1: B (1.0) and D (1.0) pass every X -> 2/4
    for threshold in res.PRECISION_THRESHOLDS:
        assert result.metrics[f"precision_{threshold}"] == 0.5


def test_float32_epsilon_vanishes_for_large_unions_like_upstream():
    # fl32(300) + fl32(1e-5) == 300 in float32 (ulp 3.05e-5), so upstream's term is exactly I/U
    inter, union = np.array([150]), np.array([300])
    assert res.expression_iou(inter, union, "lisa")[0] == 0.5


def test_precision_uses_greater_or_equal_on_exact_iou():
    # I = 2, U = 4 -> IoU 0.5 exactly; I = 3, U = 5 -> 0.6 exactly (LAVT: this_iou >= X)
    half_truth = [[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    half_pred = [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    five = [[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    three = [[1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    samples = [ResSample("half", 0, rle(half_pred), rle(half_truth)), ResSample("sixty", 0, rle(three), rle(five))]
    for protocol in res.RES_PROTOCOLS:
        metrics = evaluate(samples, protocol).metrics
        assert metrics["precision_0.5"] == 1.0
        assert metrics["precision_0.6"] == 0.5
        assert metrics["precision_0.7"] == 0.0


def test_empty_truth_with_a_prediction_scores_zero():
    samples = [ResSample("x", 0, rle(DOT), empty())]  # I = 0, U = 1
    for protocol in res.RES_PROTOCOLS:
        metrics = evaluate(samples, protocol).metrics
        assert metrics["giou"] == 0.0 and metrics["ciou"] == 0.0


def test_all_unions_empty():
    samples = [ResSample("x", 0, None, empty())]
    lisa = evaluate(samples, "lisa").metrics
    assert lisa["giou"] == pytest.approx(1 / (1 + 1e-5)) and lisa["ciou"] == 0.0  # 0 / (0 + 1e-10)
    flmm = evaluate(samples, "flmm").metrics
    assert flmm["giou"] == 0.0 and np.isnan(flmm["ciou"])  # mmdet: 0/0


def test_duplicate_expressions_each_count():
    samples = [HAND[0], HAND[0], HAND[1]]
    metrics = evaluate(samples, "flmm").metrics
    assert metrics["ciou"] == pytest.approx((2 + 2 + 4) / (6 + 6 + 4))  # 8/16
    assert metrics["giou"] == pytest.approx((1 / 3 + 1 / 3 + 1) / 3, abs=1e-7)  # 5/9


def test_no_samples_raise():
    with pytest.raises(ValueError, match="no RES samples"):
        evaluate([])
    stats = compute_stats(HAND)
    with pytest.raises(ValueError, match="zero expressions"):
        aggregate(stats, [])


def test_unknown_protocol_raises():
    with pytest.raises(ValueError, match="unknown RES protocol"):
        evaluate(HAND, protocol="mmdet")


def test_size_mismatch_names_the_sample():
    samples = [HAND[0], ResSample("wrong-size", 3, empty(5, 4), rle(DOT))]
    with pytest.raises(MaskSizeError, match="wrong-size"):
        evaluate(samples)


# ------------------------------------------------------------------------------------------- parity
def random_split(seed: int, n_images: int):
    """Images of random size with 1-4 expressions each; some predictions None, empty, or perfect."""
    rng = np.random.default_rng(seed)
    images, samples = [], []
    for image in range(n_images):
        h, w = rng.integers(3, 13, size=2)
        pairs = []
        for k in range(rng.integers(1, 5)):
            truth = rng.random((h, w)) < rng.uniform(0.0, 0.8)
            if rng.random() < 0.05:
                truth[:] = False
            roll = rng.random()
            if roll < 0.1:
                prediction = None
            elif roll < 0.15:
                prediction = truth.copy()
            elif roll < 0.2:
                prediction = np.zeros((h, w), bool)
            else:
                prediction = np.where(rng.random((h, w)) < 0.25, ~truth, truth)
            dense = np.zeros((h, w), bool) if prediction is None else prediction
            pairs.append((dense.astype(np.int32), truth.astype(np.int32)))
            samples.append(ResSample(f"{image}-{k}", image, None if prediction is None else rle(prediction), rle(truth)))
        images.append(pairs)
    return images, samples


def test_parity_with_lisa_glamm_loop():
    images, samples = random_split(0, 120)
    giou, ciou = lisa_glamm_res(images)
    metrics = evaluate(samples, "lisa").metrics
    assert metrics["giou"] == pytest.approx(giou, abs=1e-6)
    assert metrics["ciou"] == pytest.approx(ciou, abs=1e-6)


def test_parity_with_mmdet_refseg_concat_and_per_expression():
    images, samples = random_split(1, 120)
    metrics = evaluate(samples, "flmm").metrics
    concat = [(np.stack([p for p, _ in pairs]), np.stack([t for _, t in pairs])) for pairs in images]
    single = [(p[None], t[None]) for pairs in images for p, t in pairs]
    for data_samples in (concat, single):
        miou, ciou = mmdet_refseg(data_samples)
        assert metrics["giou"] == pytest.approx(miou, abs=1e-6)
        assert metrics["ciou"] == pytest.approx(ciou, abs=1e-6)


def test_precision_parity_with_lavt():
    images, samples = random_split(2, 120)
    expected = lavt_precision([pair for pairs in images for pair in pairs])
    metrics = evaluate(samples, "flmm").metrics  # LAVT's empty/empty 0 is the flmm policy
    assert [metrics[f"precision_{x}"] for x in res.PRECISION_THRESHOLDS] == expected


# ----------------------------------------------------------------------------------------- properties
masks_strategy = st.integers(0, 2**30).map(lambda seed: random_split(seed, 6)[1])


@settings(max_examples=25, deadline=None)
@given(masks_strategy, st.sampled_from(res.RES_PROTOCOLS))
def test_truth_as_prediction_scores_one(samples, protocol):
    perfect = [ResSample(s.sample_id, s.image_id, s.truth, s.truth) for s in samples]
    metrics = evaluate(perfect, protocol).metrics
    # lisa: epsilons leave I/(U+1e-5) and /(N+1e-5) a hair under 1; flmm: empty/empty scores 0
    has_empty = any(s.truth.area() == 0 for s in samples)
    if protocol == "lisa":
        assert metrics["ciou"] == pytest.approx(1.0, abs=1e-5) or sum(s.truth.area() for s in samples) == 0
        assert metrics["giou"] == pytest.approx(1.0, abs=1e-5)
    elif not has_empty:
        assert metrics["ciou"] == 1.0 and metrics["giou"] == 1.0
    if protocol == "lisa" or not has_empty:
        assert all(metrics[f"precision_{x}"] == 1.0 for x in res.PRECISION_THRESHOLDS)


@settings(max_examples=25, deadline=None)
@given(masks_strategy, st.sampled_from(res.RES_PROTOCOLS), st.randoms(use_true_random=False))
def test_order_is_irrelevant(samples, protocol, random):
    shuffled = list(samples)
    random.shuffle(shuffled)
    first, second = evaluate(samples, protocol).metrics, evaluate(shuffled, protocol).metrics
    assert first.keys() == second.keys()
    for key in first:
        assert first[key] == pytest.approx(second[key], abs=1e-12, nan_ok=True)


@settings(max_examples=25, deadline=None)
@given(masks_strategy, st.sampled_from(res.RES_PROTOCOLS), st.integers(0, 2**30))
def test_aggregate_matches_full_and_resampled_evaluation(samples, protocol, seed):
    stats = compute_stats(samples, protocol)
    full = evaluate(samples, protocol).metrics
    assert_same_metrics(aggregate(stats, np.arange(len(samples))), full)
    indices = np.random.default_rng(seed).integers(0, len(samples), size=len(samples))
    resampled = evaluate([samples[i] for i in indices], protocol).metrics
    for key, value in aggregate(stats, indices).items():
        assert value == pytest.approx(resampled[key], abs=1e-12, nan_ok=True)


def test_per_sample_rows():
    rows = compute_stats(HAND, "flmm").per_sample()
    assert rows[0] == {"sample_id": "A", "image_id": 1, "intersection": 2, "union": 6, "iou": pytest.approx(1 / 3)}
