"""GCG mask metrics: hand-computed cases, official quirks, parity with the official code, properties."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.metrics.gcg import GcgStatsTable, aggregate, score_gcg_masks
from gcgbench.metrics.gcg_matching import official_recall_matches, max_matching_recall_matches
from gcgbench.metrics.masks import MaskSizeError

try:
    from tests.official_gcg import DenseImage, official_ap50, official_cosine, official_miou, official_recall
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from official_gcg import DenseImage, official_ap50, official_cosine, official_miou, official_recall


# --- helpers ---------------------------------------------------------------------------------------


class TableEncoder:
    """Fixed vectors per phrase, so similarities can be written down by hand."""

    name = "table"

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return np.array([self.vectors[text] for text in texts], dtype=np.float32)


class WordVectorEncoder:
    """Sum of pseudo-random per-word vectors (seeded by the word), so random phrases have varied similarity."""

    name = "word-vectors"

    def encode(self, texts):
        rows = []
        for text in texts:
            vector = np.zeros(6)
            for word in text.split():
                vector += np.random.default_rng(zlib.crc32(word.encode())).normal(size=6)
            rows.append(vector)
        return np.array(rows, dtype=np.float32).reshape(len(rows), 6)


# cat·cat = 1, cat·dog = 0, cat·car = 0.3 (< 0.5), dog·car = 0
ANIMALS = TableEncoder({
    "cat": [1.0, 0.0, 0.0],
    "dog": [0.0, 1.0, 0.0],
    "car": [0.3, 0.0, float(np.sqrt(1 - 0.09))],
    "shadow": [0.0, 0.0, 1.0],
})


def row_mask(width: int, *columns: int) -> np.ndarray:
    """A 1 × width mask with the given columns set, so IoUs are easy to count by hand."""
    mask = np.zeros((1, width), dtype=bool)
    mask[0, list(columns)] = True
    return mask


def to_doc_and_prediction(image: DenseImage) -> tuple[Doc, Prediction]:
    """Build our types the way the GranD-f reader does: label/phrase i owns mask i, surplus masks are extra."""
    gt = [RLE.from_mask(mask) for mask in image.gt_masks]
    pred = [RLE.from_mask(mask) for mask in image.pred_masks]
    doc = Doc(
        doc_id=image.image_id,
        image_path=None,
        height=image.height,
        width=image.width,
        phrases=tuple(Phrase(text, (gt[i],) if i < len(gt) else ()) for i, text in enumerate(image.gt_labels)),
        extra_masks=tuple(gt[len(image.gt_labels):]),
    )
    prediction = Prediction(
        doc_id=image.image_id,
        text=" ".join(image.pred_phrases),
        phrases=tuple(Phrase(text, (pred[i],) if i < len(pred) else ()) for i, text in enumerate(image.pred_phrases)),
        extra_masks=tuple(pred[len(image.pred_phrases):]),
    )
    return doc, prediction


def score(images, encoder=ANIMALS):
    pairs = [to_doc_and_prediction(image) for image in images]
    return score_gcg_masks([doc for doc, _ in pairs], {p.doc_id: p for _, p in pairs}, encoder)


def image(image_id="img", width=10, labels=(), gt=(), phrases=(), pred=()):
    return DenseImage(image_id, 1, width, list(labels), list(gt), list(phrases), list(pred))


A = row_mask(10, 0, 1, 2, 3)  # 4 px
B = row_mask(10, 5, 6, 7, 8, 9)  # 5 px
EMPTY = row_mask(10)


# --- hand-computed cases ---------------------------------------------------------------------------


def test_two_good_pairs_score_by_hand():
    # P0 = cols 0-1: IoU(P0, A) = 2/4 = 0.5; P1 = cols 4-9: IoU(P1, B) = 5/6, IoU(P1, A) = 0.
    scene = [image(labels=["cat", "dog"], gt=[A, B], phrases=["cat", "dog"], pred=[row_mask(10, 0, 1), row_mask(10, *range(4, 10))])]
    result = score(scene)
    # mIoU: pairs (P1, B) = 5/6 then (P0, A) = 1/2 -> (5/6 + 1/2) / 2 = 2/3
    assert result.miou == pytest.approx(2 / 3, abs=1e-12)
    # recall: (B, P1) 5/6 with sim 1, then (A, P0) 0.5 >= 0.5 with sim 1 -> 2 / 2 labels
    assert result.mask_recall == 1.0 and result.mask_recall_max_matching == 1.0
    # AP: both detections TP in order -> precision 1 at every recall threshold
    assert result.ap50 == pytest.approx(1.0)
    assert result.ap50 == pytest.approx(official_ap50(scene), abs=1e-12)


def test_recall_breaks_at_first_max_iou_pair_that_fails_the_text_test():
    # IoU(A, P0) = IoU(B, P1) = 1: the row-major argmax is (A, P0); sim(cat, car) = 0.3 < 0.5 -> break, TP 0.
    scene = [image(labels=["cat", "dog"], gt=[A, B], phrases=["car", "dog"], pred=[A, B])]
    result = score(scene)
    assert result.mask_recall == 0.0
    # max matching: (B, P1) is admissible -> 1 / 2
    assert result.mask_recall_max_matching == 0.5
    assert result.miou == 1.0 and result.ap50 == pytest.approx(1.0)
    assert result.mask_recall == official_recall(scene, official_cosine(ANIMALS.encode))


def test_mask_without_phrase_reached_by_argmax_loses_the_whole_image():
    # phrase "cat" -> cols 0-2 (IoU 3/4 with A); extra mask = B (IoU 1). argmax (B, mask 1) passes IoU,
    # then text_sims[1, 1] is out of range (1 phrase) -> IndexError -> 0 TP, 2 labels still counted.
    scene = [image(labels=["cat", "dog"], gt=[A, B], phrases=["cat"], pred=[row_mask(10, 0, 1, 2), B])]
    result = score(scene)
    assert result.mask_recall == 0.0
    assert result.per_image[0].recall_exception.startswith("IndexError")
    assert result.recall_exception_images == ("img",)
    assert result.mask_recall_max_matching == 0.5  # (A, P0): IoU 0.75, sim 1
    assert result.miou == pytest.approx((1 + 0.75) / 2)  # (P1, B) = 1 then (P0, A) = 0.75
    assert result.mask_recall == official_recall(scene, official_cosine(ANIMALS.encode))


def test_mask_without_phrase_after_the_break_is_harmless():
    # extra mask cols 4-5: IoU 0 with A, 2/6 with B; after (A, P0) is matched the max left is 1/3 < 0.5 -> break.
    scene = [image(labels=["cat", "dog"], gt=[A, B], phrases=["cat"], pred=[A, row_mask(10, 4, 5)])]
    result = score(scene)
    assert result.mask_recall == 0.5 and result.per_image[0].recall_exception is None


def test_masks_but_no_phrases():
    scene = [image(labels=["cat", "dog"], gt=[A, B], phrases=[], pred=[A])]
    result = score(scene)
    assert result.mask_recall == 0.0 and result.per_image[0].recall_exception is not None
    assert result.miou == 1.0  # one perfect pair; unpaired GT B is not penalised


def test_fewer_gt_labels_than_gt_masks():
    # GT: "cat" -> A, unlabelled extra mask B. Pred: cat -> A, dog -> B. (A, P0) matches, then (B, P1) = 1
    # reaches text_sims[1, 1] with one label -> IndexError -> 0 TP of 1 label.
    scene = [image(labels=["cat"], gt=[A, B], phrases=["cat", "dog"], pred=[A, B])]
    result = score(scene)
    assert result.mask_recall == 0.0 and result.mask_recall_max_matching == 1.0
    assert result.per_image[0].n_gt_labels == 1 and result.per_image[0].n_gt_masks == 2


def test_more_phrases_than_masks_and_more_labels_than_masks():
    # pred "dog" has no mask; GT label "shadow" has no mask. (A, P0) matches -> 1 TP of 3 labels.
    scene = [image(labels=["cat", "dog", "shadow"], gt=[A, B], phrases=["cat", "dog"], pred=[A])]
    result = score(scene)
    assert result.mask_recall == pytest.approx(1 / 3) and result.mask_recall_max_matching == pytest.approx(1 / 3)
    assert result.mask_recall == pytest.approx(official_recall(scene, official_cosine(ANIMALS.encode)))


def test_empty_masks_follow_the_official_nan_rules():
    # GT: cat -> A, shadow -> empty. Pred: cat -> A, shadow -> empty. IoU(empty, empty) = 0/0 = NaN.
    scene = [image(labels=["cat", "shadow"], gt=[A, EMPTY], phrases=["cat", "shadow"], pred=[A, EMPTY])]
    result = score(scene)
    # mIoU: np.max of a matrix with a NaN is NaN, NaN > 0 is False -> no pair -> image 0.0
    assert result.miou == 0.0
    # recall: argmax returns the NaN cell first; NaN < 0.5 is False, sim 1 -> match; then (A, A) -> 2 / 2
    assert result.mask_recall == 1.0 and result.mask_recall_max_matching == 1.0
    # AP: pycocotools IoU(empty, empty) = 0, so det 1 is a FP and the empty GT is missed (2 GT):
    # rc = [.5, .5], pr = [1, .5] -> precision 1 at the 51 thresholds 0.00..0.50, 0 above -> 51/101
    assert result.ap50 == pytest.approx(51 / 101, abs=1e-12)
    assert result.ap50 == pytest.approx(official_ap50(scene), abs=1e-12)
    assert result.miou == official_miou(scene)


def test_empty_predicted_mask_against_real_gt():
    scene = [image(labels=["cat"], gt=[A], phrases=["cat"], pred=[EMPTY])]
    result = score(scene)
    assert (result.miou, result.mask_recall, result.ap50) == (0.0, 0.0, 0.0)


def test_no_predicted_mask_in_the_whole_split():
    scene = [image("a", labels=["cat"], gt=[A], phrases=["cat"], pred=[]), image("b", labels=["dog"], gt=[B])]
    result = score(scene)
    assert result.no_predicted_masks
    assert result.ap50 == 0.0 and result.miou == 0.0 and result.mask_recall == 0.0
    with pytest.raises(IndexError):  # pycocotools loadRes reads anns[0] of an empty result list
        official_ap50(scene)


def test_no_predictions_at_all():
    docs = [to_doc_and_prediction(image("a", labels=["cat"], gt=[A]))[0]]
    result = score_gcg_masks(docs, {}, ANIMALS)
    assert result.missing_predictions == ("a",) and result.no_predicted_masks
    assert result.metrics() == {"ap50": 0.0, "miou": 0.0, "mask_recall": 0.0, "mask_recall_max_matching": 0.0}


def test_no_gt_mask_at_all_gives_minus_one_ap_like_cocoeval():
    scene = [image("a", labels=[], gt=[], phrases=["cat"], pred=[A])]
    assert score(scene).ap50 == -1.0 == official_ap50(scene)


def test_more_predictions_than_gt_and_tie_order_across_images():
    # "a" holds a FP, "b" a TP; COCOeval takes images in sorted id order whatever the docs order:
    # rc = [0, 1], pr = [0, .5] -> envelope [.5, .5] -> AP = 0.5
    hit = image("b", labels=["cat"], gt=[A], phrases=["cat"], pred=[A])
    miss = image("a", labels=[], gt=[], phrases=["dog"], pred=[B])
    assert score([hit, miss]).ap50 == pytest.approx(0.5) == pytest.approx(official_ap50([hit, miss]))
    # swap the ids: TP first -> rc = [1, 1], pr = [1, .5] -> AP = 1
    hit_first, miss_last = replace(hit, image_id="a"), replace(miss, image_id="b")
    assert score([miss_last, hit_first]).ap50 == pytest.approx(1.0)
    # within an image, prediction order decides too: duplicate of A after A is a FP -> AP still 1;
    # a miss before A -> rc [0, 1], pr [0, .5] -> 0.5
    assert score([image(labels=["cat"], gt=[A], phrases=["cat", "cat", "car"], pred=[A, A, B])]).ap50 == pytest.approx(1.0)
    assert score([image(labels=["cat"], gt=[A], phrases=["dog", "cat"], pred=[B, A])]).ap50 == pytest.approx(0.5)


def test_coco_matching_ties_go_to_the_last_gt():
    # g0 = cols 0-3, g1 = cols 2-5; d0 = cols 2-3 has IoU 2/4 = 0.5 with both -> COCOeval takes g1 (the last);
    # d1 = g0 then matches g0 -> AP 1. (Taking g0 first would leave d1 with IoU 2/6 to g1: a FP.)
    g0, g1 = row_mask(8, 0, 1, 2, 3), row_mask(8, 2, 3, 4, 5)
    scene = [image(width=8, labels=["cat", "dog"], gt=[g0, g1], phrases=["cat", "dog"], pred=[row_mask(8, 2, 3), g0])]
    assert score(scene).ap50 == pytest.approx(1.0) == pytest.approx(official_ap50(scene))


def test_miou_ties_break_row_major_over_predicted_by_gt():
    # G0 = {0,1}, G1 = {4,5}; P0 = {0,1,4,5}: IoU 2/4 = .5 with both; P1 = {0,1,2,3,6}: IoU 2/5 with G0, 0 with G1.
    # argmax picks (P0, G0) first (row-major); then only (P1, G1) = 0 is left -> mean = 0.5 (not (.5+.4)/2).
    scene = [image(width=8, labels=["cat", "dog"], gt=[row_mask(8, 0, 1), row_mask(8, 4, 5)], phrases=["cat", "dog"],
                   pred=[row_mask(8, 0, 1, 4, 5), row_mask(8, 0, 1, 2, 3, 6)])]
    assert score(scene).miou == 0.5 == official_miou(scene)


def test_only_first_100_predicted_masks_count_for_ap():
    width = 120
    gt = row_mask(width, 110)
    misses = [row_mask(width, column) for column in range(100)]
    late_hit = image(width=width, labels=["cat"], gt=[gt], phrases=[], pred=misses + [gt])
    assert score([late_hit]).ap50 == 0.0 == official_ap50([late_hit])
    last_hit = replace(late_hit, pred_masks=misses[:99] + [gt])
    assert score([last_hit]).ap50 == pytest.approx(official_ap50([last_hit]), abs=1e-12)
    assert score([last_hit]).ap50 > 0


def test_duplicate_phrases_encode_once():
    encoder = TableEncoder(ANIMALS.vectors)
    scene = [image("a", labels=["cat", "cat"], gt=[A, B], phrases=["cat", "cat"], pred=[A, B]),
             image("b", labels=["dog"], gt=[A], phrases=["cat"], pred=[A])]
    result = score(scene, encoder)
    assert encoder.calls == [["cat", "dog"]]
    assert result.mask_recall == pytest.approx(2 / 3)  # image b: sim(dog, cat) = 0 -> break
    assert result.similarity_model == "table"


def test_phrase_with_several_masks_counts_as_their_union():
    halves = (RLE.from_mask(row_mask(10, 0, 1)), RLE.from_mask(row_mask(10, 2, 3)))
    doc, _ = to_doc_and_prediction(image("a", labels=["cat"], gt=[A]))
    split = score_gcg_masks([doc], {"a": Prediction("a", "cat", (Phrase("cat", halves),))}, ANIMALS)
    assert split.metrics() == {"ap50": pytest.approx(1.0), "miou": 1.0, "mask_recall": 1.0, "mask_recall_max_matching": 1.0}


def test_mask_of_another_size_raises_mask_size_error_naming_doc_and_mask():
    doc, _ = to_doc_and_prediction(image("sa_7", labels=["cat"], gt=[A]))
    wrong = Prediction("sa_7", "cat", (Phrase("cat", (RLE.from_mask(np.ones((2, 10), bool)),)),))
    with pytest.raises(MaskSizeError, match=r"sa_7.*predicted phrases\[0\]\.masks\[0\]"):
        score_gcg_masks([doc], {"sa_7": wrong}, ANIMALS)
    assert issubclass(MaskSizeError, ValueError)


def test_recall_rules_on_matrices():
    nan = float("nan")
    # NaN cell first even though (0, 0) = 1 is larger; its row is out of the label range -> error
    assert official_recall_matches(np.array([[1.0, 0.0], [0.0, nan]]), np.ones((1, 2)))[0] == 0
    assert max_matching_recall_matches(np.array([[1.0, 0.0], [0.0, nan]]), np.ones((1, 2))) == 1
    # maximum matching beats greedy: greedy takes (0, 0) = .9 and blocks row 1, whose only pair is (1, 0)
    ious = np.array([[0.9, 0.8], [0.7, 0.0]])
    assert official_recall_matches(ious, np.ones((2, 2))) == (1, None)
    assert max_matching_recall_matches(ious, np.ones((2, 2))) == 2


# --- random scenes: parity with the official code and properties ----------------------------------

WORDS = ["cat", "dog", "red car", "tree", "small cat", "the sky", "a man", "grass", "man on bench"]


def random_rectangle(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    top, left = rng.integers(0, height), rng.integers(0, width)
    mask[top : top + rng.integers(1, height + 1), left : left + rng.integers(1, width + 1)] = True
    return mask


def jittered(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    moved = np.roll(mask, (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
    if rng.random() < 0.5:
        moved = moved | random_rectangle(rng, *mask.shape) & (rng.random(mask.shape) < 0.3)
    return moved


def random_scene(rng: np.random.Generator, n_images: int, allow_empty: bool = True) -> list[DenseImage]:
    ids = rng.choice(1000, size=n_images, replace=False)
    scene = []
    for number in ids:
        height, width = int(rng.integers(6, 14)), int(rng.integers(6, 14))

        def some_mask() -> np.ndarray:
            if allow_empty and rng.random() < 0.06:
                return np.zeros((height, width), dtype=bool)
            return random_rectangle(rng, height, width)

        n_gt = int(rng.integers(0, 5))
        gt_masks = [some_mask() for _ in range(n_gt)]
        gt_labels = [str(rng.choice(WORDS)) for _ in range(max(0, n_gt + int(rng.choice([0, 0, 0, -1, 1]))))]
        pred_masks = []
        for _ in range(int(rng.integers(0, 6))):
            kind = rng.random()
            if gt_masks and kind < 0.45:
                pred_masks.append(jittered(rng, gt_masks[int(rng.integers(len(gt_masks)))]))
            elif gt_masks and kind < 0.55:
                pred_masks.append(gt_masks[int(rng.integers(len(gt_masks)))].copy())
            elif pred_masks and kind < 0.65:
                pred_masks.append(pred_masks[-1].copy())  # duplicates make IoU ties
            else:
                pred_masks.append(some_mask())
        phrases = [
            gt_labels[i] if i < len(gt_labels) and rng.random() < 0.6 else str(rng.choice(WORDS))
            for i in range(max(0, len(pred_masks) + int(rng.choice([0, 0, 0, -1, 1, -5]))))
        ]
        scene.append(DenseImage(f"sa_{number}", height, width, gt_labels, gt_masks, phrases, pred_masks))
    return scene


@pytest.fixture(scope="module")
def scenes() -> list[list[DenseImage]]:
    rng = np.random.default_rng(20240601)
    return [random_scene(rng, int(rng.integers(1, 6))) for _ in range(300)]


def test_parity_with_official_code_on_random_scenes(scenes):
    encoder = WordVectorEncoder()
    similarity = official_cosine(encoder.encode)
    checked_ap = 0
    for scene in scenes:
        ours = score(scene, encoder)
        assert ours.miou == pytest.approx(official_miou(scene), abs=1e-6)
        assert ours.mask_recall == pytest.approx(official_recall(scene, similarity), abs=1e-6)
        assert ours.mask_recall_max_matching >= ours.mask_recall
        if ours.no_predicted_masks:
            with pytest.raises(IndexError):
                official_ap50(scene)
        else:
            assert ours.ap50 == pytest.approx(official_ap50(scene), abs=1e-6)
            checked_ap += 1
    assert checked_ap > 200


def test_the_random_scenes_exercise_the_quirks(scenes):
    results = [score(scene, WordVectorEncoder()) for scene in scenes]
    per_image = [stats for result in results for stats in result.per_image]
    assert any(stats.recall_exception for stats in per_image)
    assert any(stats.recall_matches_max_matching > stats.recall_matches for stats in per_image)
    assert any(0 < result.ap50 < 1 for result in results)
    assert sum(0 < stats.miou < 1 for stats in per_image) > 50


def test_max_matching_is_maximum_like_scipy():
    sparse = pytest.importorskip("scipy.sparse")
    csgraph = pytest.importorskip("scipy.sparse.csgraph")
    rng = np.random.default_rng(7)
    for _ in range(300):
        shape = tuple(int(v) for v in rng.integers(1, 7, size=2))
        ious, sims = rng.random(shape), rng.random(shape)
        admissible = (ious >= 0.5) & (sims >= 0.5)
        pairing = csgraph.maximum_bipartite_matching(sparse.csr_matrix(admissible.astype(np.int8)), perm_type="column")
        assert max_matching_recall_matches(ious, sims) == int((pairing >= 0).sum())


def test_ground_truth_as_prediction_scores_one(scenes):
    for scene in scenes[:60]:
        perfect = []
        for im in scene:
            masks = [mask for mask in im.gt_masks if mask.any()] or [np.ones((im.height, im.width), bool)]
            labels = (im.gt_labels + WORDS)[: len(masks)]  # one label per (non-empty) mask
            perfect.append(replace(im, gt_labels=labels, gt_masks=masks, pred_phrases=list(labels), pred_masks=list(masks)))
        result = score(perfect, WordVectorEncoder())
        assert result.metrics() == {"ap50": pytest.approx(1.0), "miou": pytest.approx(1.0),
                                    "mask_recall": 1.0, "mask_recall_max_matching": 1.0}


def test_image_order_does_not_matter(scenes):
    rng = np.random.default_rng(3)
    for scene in scenes[:80]:
        shuffled = [scene[i] for i in rng.permutation(len(scene))]
        first, second = score(scene, WordVectorEncoder()), score(shuffled, WordVectorEncoder())
        assert second.ap50 == first.ap50  # images are always taken in sorted id order
        assert second.mask_recall == first.mask_recall and second.mask_recall_max_matching == first.mask_recall_max_matching
        assert second.miou == pytest.approx(first.miou, abs=1e-12)


def test_aggregate_over_all_images_equals_the_full_result(scenes):
    big_split = [im for scene in scenes[:40] for im in scene]
    big_split = list({im.image_id: im for im in big_split}.values())
    result = score(big_split, WordVectorEncoder())
    assert aggregate(result.per_image, range(len(big_split))) == result.metrics()
    assert aggregate(result.table, np.arange(len(big_split))) == result.metrics()
    assert aggregate(result.per_image, []) == {"ap50": -1.0, "miou": 0.0, "mask_recall": 0.0, "mask_recall_max_matching": 0.0}


def test_aggregate_with_repeats_equals_scoring_the_resampled_split(scenes):
    split = list({im.image_id: im for scene in scenes[40:60] for im in scene}.values())
    result = score(split, WordVectorEncoder())
    table = GcgStatsTable.from_images(result.per_image)
    rng = np.random.default_rng(11)
    for _ in range(10):
        indices = rng.integers(0, len(split), size=len(split))
        # a repeated image is a new image whose id sorts right after the original ("id" < "id\0" < "id…")
        copies: dict[int, int] = {}
        resampled = []
        for index in indices:
            copies[index] = copies.get(index, -1) + 1
            resampled.append(replace(split[index], image_id=split[index].image_id + "\0" * copies[index]))
        expected = score(resampled, WordVectorEncoder()).metrics()
        got = aggregate(table, indices)
        assert got["ap50"] == pytest.approx(expected["ap50"], abs=1e-12)
        assert got["miou"] == pytest.approx(expected["miou"], abs=1e-12)
        assert got["mask_recall"] == expected["mask_recall"]
        assert got["mask_recall_max_matching"] == expected["mask_recall_max_matching"]
