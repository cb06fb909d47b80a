"""Literal dense-numpy re-statements of the official ReasonSeg and gRefCOCO evaluation code, for parity tests.

Our own code, written to follow the upstream lines step by step (dtypes included) rather than to be fast;
torch tensors become numpy arrays of the same dtype.

- LISA `utils/data_processing.py::get_mask_from_json` (the ground truth with "ignore" = 255);
- LISA `train_ds.py::validate` for a ReasonSeg val loader (one image, one mask per step) with
  `utils/utils.py::intersectionAndUnionGPU` and `AverageMeter` (+ `all_reduce` on one process);
- F-LMM `scripts/reason_seg.py` (its ReasonSeg val scorer: the same histogram, its own float32 means);
- ReLA `gres_model/evaluation/refer_evaluation.py::computeIoU` and `ReferEvaluator.evaluate` (one source,
  "grefcoco"), with `pred_nt` given per sample.
"""

from __future__ import annotations

import json

import cv2
import numpy as np


# ------------------------------------------------------------------------------------------ LISA
def get_mask_from_json(json_path: str, img: np.ndarray) -> tuple[np.ndarray, list, bool]:
    try:
        with open(json_path, "r") as r:
            anno = json.loads(r.read())
    except Exception:  # upstream: a bare except, then cp1252
        with open(json_path, "r", encoding="cp1252") as r:
            anno = json.loads(r.read())
    inform = anno["shapes"]
    comments = anno["text"]
    is_sentence = anno["is_sentence"]
    height, width = img.shape[:2]
    area_list = []
    valid_poly_list = []
    for i in inform:
        label_id = i["label"]
        points = i["points"]
        if "flag" == label_id.lower():
            continue
        tmp_mask = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(tmp_mask, np.array([points], dtype=np.int32), True, 1, 1)
        cv2.fillPoly(tmp_mask, np.array([points], dtype=np.int32), 1)
        tmp_area = tmp_mask.sum()
        area_list.append(tmp_area)
        valid_poly_list.append(i)
    sort_index = np.argsort(area_list)[::-1].astype(np.int32)
    sort_index = list(sort_index)
    sort_inform = []
    for s_idx in sort_index:
        sort_inform.append(valid_poly_list[s_idx])
    mask = np.zeros((height, width), dtype=np.uint8)
    for i in sort_inform:
        label_id = i["label"]
        points = i["points"]
        if "ignore" in label_id.lower():
            label_value = 255
        else:
            label_value = 1
        cv2.polylines(mask, np.array([points], dtype=np.int32), True, label_value, 1)
        cv2.fillPoly(mask, np.array([points], dtype=np.int32), label_value)
    return mask, comments, is_sentence


def intersection_and_union_gpu(output: np.ndarray, target: np.ndarray, K: int = 2, ignore_index: int = 255):
    """Int32 tensors in (`.int()` upstream); torch.histc of an int tensor keeps the int dtype."""
    output = output.reshape(-1).astype(np.int32).copy()
    target = target.reshape(-1).astype(np.int32)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target]
    area_intersection = np.histogram(intersection, bins=K, range=(0, K - 1))[0].astype(np.int32)
    area_output = np.histogram(output, bins=K, range=(0, K - 1))[0].astype(np.int32)
    area_target = np.histogram(target, bins=K, range=(0, K - 1))[0].astype(np.int32)
    area_union = area_output + area_target - area_intersection
    return area_intersection, area_union, area_target


class AverageMeter:
    def __init__(self) -> None:
        self.val, self.avg, self.sum, self.count = 0, 0, 0, 0

    def update(self, val, n: int = 1) -> None:
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count

    def all_reduce(self) -> None:  # dist.all_reduce over one process: only the float32 round trip remains
        if isinstance(self.sum, np.ndarray):
            total = np.array(self.sum.tolist() + [self.count], dtype=np.float32)
        else:
            total = np.array([self.sum, self.count], dtype=np.float32)
        if total.shape[0] > 2:
            self.sum, self.count = total[:-1], float(total[-1])
        else:
            self.sum, self.count = total.tolist()
        self.avg = self.sum / (self.count + 1e-5)


def lisa_validate(items: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(gIoU, cIoU) of `validate` over a ReasonSeg loader; `items` = per step (prediction 0/1, gt 0/1/255)."""
    intersection_meter, union_meter, acc_iou_meter = AverageMeter(), AverageMeter(), AverageMeter()
    for prediction, gt in items:
        masks_list = gt[None].astype(np.int32)
        output_list = (prediction[None] > 0).astype(np.int32)
        intersection, union, acc_iou = 0.0, 0.0, 0.0
        for mask_i, output_i in zip(masks_list, output_list):
            intersection_i, union_i, _ = intersection_and_union_gpu(output_i.copy(), mask_i, 2, ignore_index=255)
            intersection += intersection_i
            union += union_i
            acc_iou += intersection_i.astype(np.float32) / (union_i.astype(np.float32) + np.float32(1e-5))
            acc_iou[union_i == 0] += 1.0
        acc_iou = acc_iou / masks_list.shape[0]
        intersection_meter.update(intersection)
        union_meter.update(union)
        acc_iou_meter.update(acc_iou, n=masks_list.shape[0])
    intersection_meter.all_reduce()
    union_meter.all_reduce()
    acc_iou_meter.all_reduce()
    iou_class = intersection_meter.sum / (union_meter.sum + 1e-10)
    return float(acc_iou_meter.avg[1]), float(iou_class[1])


def flmm_reason_seg(items: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(gIoU, cIoU) of F-LMM `scripts/reason_seg.py`: per image `intersectionAndUnionGPU(...)[1]`, gathered
    as float32 [I, U] rows, then `(I / (U + 1e-12)).mean()` and `I.mean() / (U.mean() + 1e-12)`."""
    results = []
    for prediction, gt in items:
        intersection, union, _ = intersection_and_union_gpu(prediction.astype(np.int64), gt.astype(np.int64), 2, 255)
        results.append(np.array([float(intersection[1]), float(union[1])], dtype=np.float32))
    results = np.stack(results)
    intersections, unions = results[:, 0], results[:, 1]
    giou = (intersections / (unions + np.float32(1e-12))).mean(dtype=np.float32)
    ciou = intersections.mean(dtype=np.float32) / (unions.mean(dtype=np.float32) + np.float32(1e-12))
    return float(giou), float(ciou)


# ------------------------------------------------------------------------------------------ ReLA
def compute_iou(pred_seg: np.ndarray, gd_seg: np.ndarray):
    I = np.sum(np.logical_and(pred_seg, gd_seg))
    U = np.sum(np.logical_or(pred_seg, gd_seg))
    return I, U


def rela_evaluate(predictions: list[dict]) -> dict[str, float]:
    """`ReferEvaluator.evaluate` for one source; each prediction: pred_mask, gt_mask (int8), pred_nt, gt_nt.
    Returns ReLA's numbers as fractions (gIoU, cIoU, Pr@X divided by 100; T_acc, N_acc as printed)."""
    pr_thres = [.7, .8, .9]
    accum_I, accum_U, accum_IoU = 0, 0, 0
    pr_count = {thres: 0 for thres in pr_thres}
    total_count, not_empty_count, empty_count = 0, 0, 0
    nt = {"TP": 0, "TN": 0, "FP": 0, "FN": 0}
    for eval_sample in predictions:
        I, U = compute_iou(eval_sample["pred_mask"], eval_sample["gt_mask"])
        if eval_sample["gt_nt"]:
            empty_count += 1
            if eval_sample["pred_nt"]:
                nt["TP"] += 1
                accum_IoU += 1
                accum_I += 0
                accum_U += 0
            else:
                nt["FN"] += 1
                accum_IoU += 0
                accum_I += 0
                accum_U += int(U)
        else:
            if eval_sample["pred_nt"]:
                nt["FP"] += 1
                I = 0
            else:
                nt["TN"] += 1
            this_iou = float(0) if U == 0 else float(I) / float(U)
            accum_IoU += this_iou
            accum_I += I
            accum_U += U
            not_empty_count += 1
            for thres in pr_thres:
                if this_iou >= thres:
                    pr_count[thres] += 1
        total_count += 1
    res = {"giou": 100. * (accum_IoU / total_count) / 100., "ciou": accum_I * 100. / accum_U / 100.}
    if empty_count > 0:
        res["t_acc"] = nt["TN"] / (nt["TN"] + nt["FP"])
        res["n_acc"] = nt["TP"] / (nt["TP"] + nt["FN"])
    else:
        res["t_acc"] = res["n_acc"] = 0
    for thres in pr_thres:
        res[f"precision_{thres}"] = pr_count[thres] * 100. / not_empty_count / 100.
    return res
