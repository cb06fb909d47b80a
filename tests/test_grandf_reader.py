"""GranD-f GT and GLaMM prediction files, written by hand to the upstream layout (GLaMM docs/datasets.md,
eval/gcg/evaluate.py), read back as Docs and Predictions; malformed input is one clear error."""

import json
from pathlib import Path

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE
from gcgbench.data.grandf import read_gcg_docs as read_files
from gcgbench.data.grandf import read_glamm_prediction_dir


def read_gcg_docs(root: Path, split: str):
    folder = root / "GranDf/annotations/val_test"
    return read_files(folder / f"{split}_gcg_coco_caption_gt.json", folder / f"{split}_gcg_coco_mask_gt.json",
                      root / "GranDf/GranDf_HA_images/val_test")


def rle_json(mask):
    return RLE.from_mask(np.asarray(mask, dtype=np.uint8)).to_json()


SQUARE = [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]  # 3x4 image, 4 pixels top-left
BAR = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]     # bottom row


def write_split(root: Path, split="val", mask_anns=None, caption_anns=None, images=None):
    folder = root / "GranDf/annotations/val_test"
    folder.mkdir(parents=True, exist_ok=True)
    images = images or [{"id": "sa_2", "file_name": "sa_2.jpg", "height": 3, "width": 4},
                        {"id": "sa_1", "file_name": "sa_1.jpg", "height": 3, "width": 4}]
    caption_anns = caption_anns or [
        {"id": 1, "image_id": "sa_2", "caption": "A square above a bar.", "labels": ["A square", "a bar"]},
        {"id": 2, "image_id": "sa_1", "caption": "A bar.", "labels": ["A bar"]},
        {"id": 3, "image_id": "sa_2", "caption": "Second reference.", "labels": ["ignored"]},
    ]
    mask_anns = mask_anns or [
        {"id": 10, "image_id": "sa_2", "category_id": 1, "segmentation": rle_json(SQUARE), "area": 4, "bbox": [0, 0, 2, 2], "iscrowd": 0},
        {"id": 11, "image_id": "sa_1", "category_id": 1, "segmentation": rle_json(BAR), "area": 4, "bbox": [0, 2, 4, 1], "iscrowd": 0},
        {"id": 12, "image_id": "sa_2", "category_id": 1, "segmentation": rle_json(BAR), "area": 4, "bbox": [0, 2, 4, 1], "iscrowd": 0},
    ]
    (folder / f"{split}_gcg_coco_caption_gt.json").write_text(json.dumps({"images": images, "annotations": caption_anns}))
    (folder / f"{split}_gcg_coco_mask_gt.json").write_text(
        json.dumps({"images": images, "categories": [{"id": 1, "name": "object"}], "annotations": mask_anns}))
    return root


def test_docs_follow_caption_file_order_and_pair_labels_with_masks_by_index(tmp_path):
    docs = read_gcg_docs(write_split(tmp_path), "val")
    assert [d.doc_id for d in docs] == ["sa_2", "sa_1"]
    first = docs[0]
    assert (first.height, first.width) == (3, 4)
    assert [p.text for p in first.phrases] == ["A square", "a bar"]
    assert first.phrases[0].masks[0].decode().tolist() == SQUARE
    assert first.phrases[1].masks[0].decode().tolist() == BAR
    assert first.truth["captions"] == ["A square above a bar.", "Second reference."]
    assert first.truth["caption"] == "A square above a bar."
    assert first.image_path.endswith("GranDf/GranDf_HA_images/val_test/sa_2.jpg")


def test_more_gt_masks_than_labels_keeps_the_surplus_apart(tmp_path):
    caption_anns = [{"id": 1, "image_id": "sa_2", "caption": "x", "labels": ["A square"]},
                    {"id": 2, "image_id": "sa_1", "caption": "y", "labels": ["A bar", "a ghost"]}]
    docs = read_gcg_docs(write_split(tmp_path, caption_anns=caption_anns), "val")
    assert len(docs[0].phrases) == 1 and len(docs[0].extra_masks) == 1
    assert docs[1].phrases[1].masks == ()  # a label with no mask


def write_prediction(directory: Path, image_id: str, body):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{image_id}.json").write_text(json.dumps(body))


def test_flat_and_nested_prediction_files(tmp_path):
    docs = read_gcg_docs(write_split(tmp_path / "data"), "val")
    preds = tmp_path / "preds"
    write_prediction(preds, "sa_2", {"image_id": "sa_2", "caption": "a square", "phrases": ["a square"],
                                     "pred_masks": [rle_json(SQUARE), rle_json(BAR)]})
    write_prediction(preds, "sa_1", {"sa_1.jpg": {"caption": "a bar and a box", "phrases": ["a bar", "a box"],
                                                  "pred_masks": [rle_json(BAR)]}})
    predictions = read_glamm_prediction_dir(preds, docs)
    flat, nested = predictions["sa_2"], predictions["sa_1"]
    assert flat.text == "a square" and len(flat.phrases) == 1 and len(flat.extra_masks) == 1
    assert nested.text == "a bar and a box"
    assert nested.phrases[0].masks[0].decode().tolist() == BAR and nested.phrases[1].masks == ()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"caption": "x", "phrases": ["a"]}, "missing 'pred_masks'"),
        ({"caption": 3, "phrases": [], "pred_masks": []}, "caption: must be a string"),
        ({"caption": "x", "phrases": "a", "pred_masks": []}, "phrases: must be a list of strings"),
        ({"caption": "x", "phrases": ["a"], "pred_masks": [rle_json([[1, 0], [0, 1]])]},
         "pred_masks[0]: RLE size [2, 2] != image size [3, 4]"),
        ({"caption": "x", "phrases": ["a"], "pred_masks": [{"size": [3, 4], "counts": "zz"}]}, "pred_masks[0]: RLE 'counts'"),
        ([], "expected a JSON object"),
    ],
)
def test_malformed_prediction_files_name_file_and_problem(tmp_path, body, message):
    docs = read_gcg_docs(write_split(tmp_path / "data"), "val")
    preds = tmp_path / "preds"
    write_prediction(preds, "sa_2", body)
    write_prediction(preds, "sa_1", {"caption": "a", "phrases": [], "pred_masks": []})
    with pytest.raises(InputError) as error:
        read_glamm_prediction_dir(preds, docs)
    assert str(error.value).startswith(str(preds / "sa_2.json"))
    assert message in str(error.value)


def test_missing_prediction_file_is_an_error_not_a_skip(tmp_path):
    docs = read_gcg_docs(write_split(tmp_path / "data"), "val")
    write_prediction(tmp_path / "preds", "sa_2", {"caption": "a", "phrases": [], "pred_masks": []})
    with pytest.raises(InputError, match=r"sa_1.json: prediction for image 'sa_1' not found"):
        read_glamm_prediction_dir(tmp_path / "preds", docs)


def test_truncated_json_names_the_line(tmp_path):
    docs = read_gcg_docs(write_split(tmp_path / "data"), "val")
    (tmp_path / "preds").mkdir()
    (tmp_path / "preds" / "sa_2.json").write_text('{"caption": "a",\n "phrases": [')
    with pytest.raises(InputError, match=r"sa_2.json: line 2: not valid JSON"):
        read_glamm_prediction_dir(tmp_path / "preds", docs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mask_anns": [{"id": 1, "image_id": "sa_9", "category_id": 1, "segmentation": rle_json(BAR)}]},
         "image_id 'sa_9' is not an image of the caption file"),
        ({"images": [{"id": 7, "height": 3, "width": 4}]}, "'id' must be the image stem string"),
        ({"mask_anns": [{"id": 1, "image_id": "sa_2", "category_id": 1, "segmentation": rle_json([[1]])}]},
         "RLE size [1, 1] != image size [3, 4]"),
    ],
)
def test_malformed_ground_truth_is_reported(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_gcg_docs(write_split(tmp_path, **kwargs), "val")


def test_missing_split_files(tmp_path):
    with pytest.raises(InputError, match="val_gcg_coco_caption_gt.json: GranD-f caption ground truth not found"):
        read_gcg_docs(tmp_path, "val")
