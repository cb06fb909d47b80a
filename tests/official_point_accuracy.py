"""Literal re-statement of the point-accuracy loop of `aas/eval_instance_seg.py` (Shengcao-Cao/groundLMM @ 5dba7ce5),
for parity tests: ground truth as a COCO dict, detections as a list of {image_id, category_id, point}, masks as
dense 0/1 arrays decoded with pycocotools, the per-category union with `|=`, `gt_mask[point_y, point_x]`, and the
accuracy printed × 100. Our own code, following the upstream loop step by step."""

from __future__ import annotations

from pycocotools import mask as mask_utils


def official_point_accuracy(gt: dict, dt: list[dict]) -> float:
    image_id_to_image, image_id_to_gt, image_id_to_dt = {}, {}, {}
    for image in gt["images"]:
        image_id_to_image[image["id"]] = image
        image_id_to_gt[image["id"]] = []
        image_id_to_dt[image["id"]] = []
    for annotation in gt["annotations"]:
        image_id_to_gt[annotation["image_id"]].append(annotation)
    for annotation in dt:
        image_id_to_dt[annotation["image_id"]].append(annotation)
    total = 0
    correct = 0
    for image_id in image_id_to_gt:
        category_id_to_mask_gt = {}
        for annotation in image_id_to_gt[image_id]:
            category_id = annotation["category_id"]
            mask = mask_utils.decode(annotation["segmentation"])
            if category_id not in category_id_to_mask_gt:
                category_id_to_mask_gt[category_id] = mask
            else:
                category_id_to_mask_gt[category_id] |= mask
        for annotation in image_id_to_dt[image_id]:
            gt_mask = category_id_to_mask_gt[annotation["category_id"]]
            point_x, point_y = annotation["point"]
            if gt_mask[point_y, point_x]:
                correct += 1
            total += 1
    return correct / total * 100.0
