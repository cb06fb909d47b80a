"""Literal dense-numpy re-statements of the official RES and PNG evaluation loops, for parity tests.

Our own code, written to follow the upstream loops step by step (dtypes included) rather than to be
fast: masks are dense 0/1 arrays, torch float32 tensors become numpy float32 arrays.

- LISA `train_ds.py::validate` / GLaMM `eval/referring_seg/infer_and_evaluate.py::evaluate_model_performance`
  with `intersectionAndUnionGPU` and `AverageMeter` (+ `all_reduce`) from GLaMM `tools/utils.py`;
- mmdet 3.3 `RefSegMetric.process/compute_metrics` (F-LMM's RES scorer);
- LAVT `test.py::evaluate` precision@X;
- BCV-Uniandes/PNG `baseline/utils/meters.py::average_accuracy`, `baseline/utils/__init__.py::compute_mask_IoU`
  and the bucket bookkeeping of `baseline/test_net.py::perform_test`;
- F-LMM `scripts/multiprocess_eval_png.py` (`average_accuracy`, `compute_mask_IoU`) with the
  `mask_infos` rules of `flmm/datasets/png.py::PNGDataset.__getitem__`.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------------------------- RES
def intersection_and_union_two_classes(output: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """intersectionAndUnionGPU(output, target, K=2, ignore_index=255) on int32 inputs (histc keeps int)."""
    output = output.reshape(-1).astype(np.int32).copy()
    target = target.reshape(-1).astype(np.int32)
    output[target == 255] = 255
    intersection = output[output == target]
    area_intersection = np.histogram(intersection, bins=2, range=(0, 1))[0].astype(np.int32)
    area_output = np.histogram(output, bins=2, range=(0, 1))[0].astype(np.int32)
    area_target = np.histogram(target, bins=2, range=(0, 1))[0].astype(np.int32)
    area_union = area_output + area_target - area_intersection
    return area_intersection, area_union


class AverageMeter:
    """GLaMM tools/utils.py AverageMeter, with all_reduce on one process (sum kept, float32)."""

    def __init__(self) -> None:
        self.sum, self.count, self.avg = 0, 0, 0

    def update(self, val, n: int = 1) -> None:
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count

    def all_reduce(self) -> None:
        total = np.array(list(np.asarray(self.sum).tolist()) + [self.count], dtype=np.float32)
        self.sum, self.count = total[:-1], float(total[-1])
        self.avg = self.sum / (self.count + 1e-5)


def lisa_glamm_res(images: list[list[tuple[np.ndarray, np.ndarray]]]) -> tuple[float, float]:
    """(gIoU, cIoU); `images` = per dataloader item (one image), its (prediction, target) pairs."""
    intersection_meter, union_meter, giou_meter = AverageMeter(), AverageMeter(), AverageMeter()
    for pairs in images:
        intersection, union, accuracy_iou = 0.0, 0.0, 0.0
        for prediction, target in pairs:
            intersect, union_ = intersection_and_union_two_classes(prediction, target)
            intersection = intersection + intersect
            union = union + union_
            accuracy_iou = accuracy_iou + intersect.astype(np.float32) / (
                union_.astype(np.float32) + np.float32(1e-5)
            )
            accuracy_iou[union_ == 0] += 1.0
        accuracy_iou = accuracy_iou / len(pairs)
        intersection_meter.update(intersection)
        union_meter.update(union)
        giou_meter.update(accuracy_iou, n=len(pairs))
    for meter in (intersection_meter, union_meter, giou_meter):
        meter.all_reduce()
    iou_per_class = intersection_meter.sum / (union_meter.sum + 1e-10)
    return float(giou_meter.avg[1]), float(iou_per_class[1])


def mmdet_refseg(data_samples: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(mIoU, cIoU) as fractions; each data sample = (pred masks, gt masks) stacked (bs, H, W)."""
    results = []
    for pred_masks, gt_masks in data_samples:
        pred_label, label = pred_masks.astype(bool), gt_masks.astype(bool)
        overlap, union = pred_label & label, pred_label | label
        bs = len(pred_label)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = (overlap.reshape(bs, -1).sum(-1).astype(np.float32) * np.float32(1.0)) / union.reshape(
                bs, -1
            ).sum(-1).astype(np.float32)
        iou = np.nan_to_num(iou, nan=0.0)
        results.append((overlap.sum(), union.sum(), iou.sum(), bs))
    cum_i, cum_u, iou_sum, seg_total = (sum(column) for column in zip(*results))
    return float(iou_sum / seg_total), float(cum_i / cum_u)


def lavt_precision(pairs: list[tuple[np.ndarray, np.ndarray]], thresholds=(0.5, 0.6, 0.7, 0.8, 0.9)) -> list[float]:
    """LAVT test.py: this_iou = 0 if U == 0 else I / U; seg_correct += this_iou >= threshold."""
    seg_correct = np.zeros(len(thresholds), dtype=np.int32)
    for prediction, target in pairs:
        intersection = np.sum(np.logical_and(prediction, target))
        union = np.sum(np.logical_or(prediction, target))
        this_iou = 0.0 if union == 0 else intersection * 1.0 / union
        for position, threshold in enumerate(thresholds):
            seg_correct[position] += this_iou >= threshold
    return [float(c) / len(pairs) for c in seg_correct]


# ----------------------------------------------------------------------------------------------- PNG
def average_accuracy(ious) -> float:
    """baseline/utils/meters.py::average_accuracy, without the plotting (`ious` may be a list)."""
    accuracy = []
    average = 0
    thresholds = np.arange(0, 1, 0.00001)
    for t in thresholds:
        predictions = (ious >= t).astype(int)
        true_positives = np.sum(predictions)
        accuracy.append(true_positives / len(predictions))
    for i, t in enumerate(zip(thresholds[:-1], thresholds[1:])):
        average += (np.abs(t[1] - t[0])) * accuracy[i]
    return average


def recall_list(ious) -> list[float]:
    """The `accuracy` list the official function builds (its plotted curve)."""
    return [np.sum((ious >= t).astype(int)) / len(ious) for t in np.arange(0, 1, 0.00001)]


def average_accuracy_numpy1(ious: np.ndarray) -> float:
    """F-LMM's copy run under numpy 1.x: `float32_array >= np.float64(t)` compares in float32
    (value-based casting), made explicit here because this venv has numpy 2."""
    accuracy = []
    average = 0
    thresholds = np.arange(0, 1, 0.00001)
    for t in thresholds:
        predictions = (ious >= np.float32(t)).astype(int)
        accuracy.append(np.sum(predictions) / len(predictions))
    for i, t in enumerate(zip(thresholds[:-1], thresholds[1:])):
        average += (np.abs(t[1] - t[0])) * accuracy[i]
    return average


def official_mask_iou(masks: np.ndarray, target: np.ndarray) -> float:
    """compute_mask_IoU on float32 masks, then `.item()`."""
    temp = masks * target
    intersection = temp.sum()
    union = ((masks + target) - temp).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (intersection / union).item()


def official_png(phrases: list[dict]) -> dict[str, float]:
    """perform_test bookkeeping. Each phrase: prediction, truth (dense 0/1), segment_is_thing (list)."""
    instances, singulars, plurals, things, stuff = [], [], [], [], []
    for phrase in phrases:
        is_singular = 1 if len(phrase["segment_is_thing"]) == 1 else 0  # ann_types: 1 iff one segment
        category = 0
        for segment_is_thing in phrase["segment_is_thing"]:  # ann_categories[i + 1] overwritten per box
            category = 1 if segment_is_thing else 2
        iou = official_mask_iou(phrase["prediction"].astype(np.float32), phrase["truth"].astype(np.float32))
        instances.append(iou)
        (singulars if is_singular == 1 else plurals).append(iou)
        (things if category == 1 else stuff).append(iou)
    # upstream passes the lists themselves (numpy converts them at every comparison, same result);
    # converting once keeps the 100 000-step loops fast
    return {
        "ar": average_accuracy(np.array(instances)),
        "ar_singular": average_accuracy(np.array(singulars)),
        "ar_plural": average_accuracy(np.array(plurals)),
        "ar_things": average_accuracy(np.array(things)),
        "ar_stuff": average_accuracy(np.array(stuff)),
        "acc_0.5": float(np.mean(np.array(instances) > 0.5)),
    }


def flmm_png(narratives: list[list[dict]]) -> dict[str, float]:
    """multiprocess_eval_png.py main loop over narratives of phrases (same phrase dicts + plural_flag)."""
    mask_ious, isthing, plural, pixel_accs = [], [], [], []
    for phrases in narratives:
        mask_infos = []
        for phrase in phrases:
            if not phrase["plural_flag"]:
                assert len(phrase["segment_is_thing"]) == 1
                thing = int(phrase["segment_is_thing"][0])
            else:
                thing = 1
            mask_infos.append(dict(plural=phrase["plural_flag"], isthing=thing > 0))
        pred_masks = np.stack([p["prediction"] for p in phrases]).astype(np.float32)
        gt_masks = np.stack([p["truth"] for p in phrases]).astype(np.float32)
        flat_pred, flat_gt = pred_masks.reshape(len(phrases), -1), gt_masks.reshape(len(phrases), -1)
        temp = flat_pred * flat_gt
        intersection = temp.sum(axis=-1)
        union = ((flat_pred + flat_gt) - temp).sum(axis=-1)
        mask_ious.append(intersection / (union + np.float32(1e-12)))
        isthing.append(np.array([info["isthing"] for info in mask_infos]))
        plural.append(np.array([info["plural"] for info in mask_infos]))
        pixel_accs.append((pred_masks == gt_masks).astype(np.float32).reshape(len(phrases), -1).mean(-1))
    mask_ious, isthing, plural = np.concatenate(mask_ious), np.concatenate(isthing), np.concatenate(plural)
    return {
        "ar": average_accuracy_numpy1(mask_ious),
        "ar_singular": average_accuracy_numpy1(mask_ious[np.logical_not(plural)]),
        "ar_plural": average_accuracy_numpy1(mask_ious[plural]),
        "ar_things": average_accuracy_numpy1(mask_ious[isthing]),
        "ar_stuff": average_accuracy_numpy1(mask_ious[np.logical_not(isthing)]),
        "acc_0.5": float((mask_ious > 0.5).astype(np.float32).mean()),
        "pixel_acc": float(np.concatenate(pixel_accs).mean()),
    }
