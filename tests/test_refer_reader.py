"""refer pickles + instances.json written by hand to the refer API's field names (lichengunc/refer
refer.py, data/README.md), read back as per-sentence records; malformed input is one clear error."""

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from gcgbench.api.errors import InputError
from gcgbench.api.types import RLE
from gcgbench.data.refer import SPLITS_BY_SCHEME, annotation_mask, load_refs, read_refer_expressions, split_matches

H, W = 6, 8
# two overlapping squares of one object: x 0..4 / 2..6, y 0..4 (pixel centres), as COCO polygons
LEFT = [0.0, 0.0, 4.0, 0.0, 4.0, 4.0, 0.0, 4.0]
RIGHT = [2.0, 0.0, 6.0, 0.0, 6.0, 4.0, 2.0, 4.0]
BOTTOM = [[0.0, 5.0, 8.0, 5.0, 8.0, 6.0, 0.0, 6.0]]


def sentence(sent_id, sent, raw=None):
    return {"tokens": sent.split(), "raw": raw if raw is not None else sent.capitalize() + ".", "sent_id": sent_id,
            "sent": sent}


def ref(ref_id, ann_id, image_id, split, sentences, category_id=1):
    return {"sent_ids": [s["sent_id"] for s in sentences], "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
            "ann_id": ann_id, "ref_id": ref_id, "image_id": image_id, "split": split, "sentences": sentences,
            "category_id": category_id}


def default_refs():
    return [
        ref(0, 11, 1, "val", [sentence(0, "Left Thing "), sentence(1, "the wide one")]),
        ref(1, 12, 1, "testA", [sentence(2, "bottom bar")]),
        ref(2, 21, 2, "testB", [sentence(3, "the ring")]),
        ref(3, 22, 2, "train", [sentence(4, "never read")]),
        ref(4, 31, 3, "test", [sentence(5, "a blob")]),
    ]


def default_instances():
    images = [{"license": 1, "file_name": f"COCO_train2014_{i:012d}.jpg", "coco_url": "", "height": H, "width": W,
               "date_captured": "", "flickr_url": "", "id": i} for i in (1, 2, 3)]
    ring = np.zeros((H, W), np.uint8)
    ring[1:3, 1:3] = 1
    annotations = [
        {"segmentation": [LEFT, RIGHT], "area": 24.0, "iscrowd": 0, "image_id": 1, "bbox": [0, 0, 6, 4], "category_id": 1, "id": 11},
        {"segmentation": BOTTOM, "area": 8.0, "iscrowd": 0, "image_id": 1, "bbox": [0, 5, 8, 1], "category_id": 1, "id": 12},
        {"segmentation": RLE.from_mask(ring).to_json(), "area": 4.0, "iscrowd": 0, "image_id": 2, "bbox": [1, 1, 2, 2], "category_id": 2, "id": 21},
        {"segmentation": [], "area": 0.0, "iscrowd": 0, "image_id": 2, "bbox": [0, 0, 0, 0], "category_id": 2, "id": 22},
        {"segmentation": [LEFT, [1.0, 2.0, 3.0]], "area": 16.0, "iscrowd": 0, "image_id": 3, "bbox": [0, 0, 4, 4], "category_id": 3, "id": 31},
    ]
    categories = [{"supercategory": "shape", "id": c, "name": n} for c, n in ((1, "circle"), (2, "square"), (3, "triangle"))]
    return {"info": {}, "images": images, "licenses": [], "annotations": annotations, "categories": categories}


def write_refer(root: Path, refs=None, instances=None, by="unc") -> tuple[Path, Path]:
    folder = root / "refcoco"
    folder.mkdir(parents=True, exist_ok=True)
    refs_path, instances_path = folder / f"refs({by}).p", folder / "instances.json"
    refs_path.write_bytes(pickle.dumps(default_refs() if refs is None else refs, protocol=2))
    instances_path.write_text(json.dumps(default_instances() if instances is None else instances))
    return refs_path, instances_path


def read(root: Path, split="val", by="unc", **kwargs):
    refs_path, instances_path = write_refer(root, by=by, **kwargs)
    return read_refer_expressions(refs_path, instances_path, root / "images", split, by)


def test_every_sentence_of_the_split_in_pickle_order(tmp_path):
    records = read(tmp_path, "val")
    assert [r.record_id for r in records] == ["0_0", "0_1"]
    first = records[0]
    assert first.expression == "left thing"  # sent, stripped, lower case (LISA/GLaMM)
    assert first.raw == "Left thing ."  # kept as written (mmdet/F-LMM use raw.lower())
    assert (first.sentence_index, records[1].sentence_index) == (0, 1)
    assert (first.ann_id, first.image_id, first.category_id, first.split) == (11, 1, 1, "val")
    assert (first.height, first.width) == (H, W)
    assert first.image_file == str(tmp_path / "images" / "COCO_train2014_000000000001.jpg")
    assert first.mask == records[1].mask  # one object, one mask


def test_polygons_are_merged_as_a_union_not_a_sum(tmp_path):
    mask = read(tmp_path, "val")[0].mask.decode()
    parts = mask_utils.decode(mask_utils.frPyObjects([LEFT, RIGHT], H, W))
    assert parts.sum(axis=2).max() == 2  # the polygons overlap: refer/LISA's sum would give 2 there
    assert mask.max() == 1
    np.testing.assert_array_equal(mask, parts.max(axis=2))
    assert mask.sum() == np.count_nonzero(parts.sum(axis=2))


@pytest.mark.parametrize("by, split, expected", [
    ("unc", "val", ["0_0", "0_1"]),
    ("unc", "testA", ["1_2"]),
    ("unc", "testB", ["2_3"]),
    ("umd", "val", ["0_0", "0_1"]),
    ("umd", "test", ["1_2", "2_3", "4_5"]),  # refer.py: 'test' in ref['split'] (real umd refs have no testA/B)
    ("google", "val", ["0_0", "0_1"]),
])
def test_every_split_name(tmp_path, by, split, expected):
    assert [r.record_id for r in read(tmp_path, split, by)] == expected


def test_split_matching_follows_refer_getRefIds():
    assert split_matches("testA", "testA") and split_matches("testA", "testAB") and not split_matches("testA", "testB")
    assert split_matches("test", "test") and split_matches("test", "testB")
    assert split_matches("val", "val") and not split_matches("val", "valA")
    assert SPLITS_BY_SCHEME == {"unc": ("val", "testA", "testB"), "umd": ("val", "test"), "google": ("val",)}


def test_rle_and_empty_segmentations(tmp_path):
    ring = read(tmp_path, "testB")[0].mask.decode()
    assert ring.sum() == 4 and ring[1:3, 1:3].all()
    empty, issue = annotation_mask([], H, W, tmp_path, "annotation 22")
    assert empty.area() == 0 and empty.size == (H, W) and "empty" in issue
    uncompressed = {"size": [H, W], "counts": [10, 4, H * W - 14]}
    listed, issue = annotation_mask([uncompressed, uncompressed], H, W, tmp_path, "a")
    assert listed.area() == 4 and issue is None


def test_invalid_polygon_is_dropped_and_recorded(tmp_path):
    record = read(tmp_path, "test", "umd")[-1]
    assert record.mask.decode().sum() == mask_utils.area(mask_utils.frPyObjects([LEFT], H, W)[0])
    assert "1 invalid polygon(s) dropped" in record.gt_issue


def test_python2_byte_strings_are_decoded(tmp_path):
    # protocol-2 opcodes as Python 2 writes them: [{'sent': 'caf\xc3\xa9'}] with str (SHORT_BINSTRING) items
    path = tmp_path / "refs(unc).p"
    path.write_bytes(b"\x80\x02]q\x00}q\x01U\x04sentq\x02U\x05caf\xc3\xa9q\x03sa.")
    assert load_refs(path) == [{"sent": "café"}]


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("content, problem", [
    (b"not a pickle at all", "not a readable refer pickle"),
    (pickle.dumps([Exploit()]), "refuses to load"),
    (pickle.dumps({"refs": []}), "expected a list of refs"),
    (pickle.dumps([1, 2]), r"refs\[0\]: expected a dict"),
])
def test_unreadable_pickles(tmp_path, content, problem):
    path = tmp_path / "refs(unc).p"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as error:
        load_refs(path)
    assert str(path) in str(error.value)


def test_missing_files(tmp_path):
    refs_path, instances_path = write_refer(tmp_path)
    with pytest.raises(InputError, match="refs pickle not found"):
        read_refer_expressions(tmp_path / "nope.p", instances_path, tmp_path, "val", "unc")
    with pytest.raises(InputError, match="instances.json not found"):
        read_refer_expressions(refs_path, tmp_path / "nope.json", tmp_path, "val", "unc")


@pytest.mark.parametrize("by, split", [("unc", "test"), ("unc", "train"), ("umd", "testA"), ("google", "test"), ("umd", "Val")])
def test_unknown_split_for_the_scheme(tmp_path, by, split):
    with pytest.raises(InputError, match=rf"refs\({by}\)\.p: split: unknown split '{split}'"):
        read(tmp_path, split, by)


def test_unknown_scheme(tmp_path):
    with pytest.raises(InputError, match="unknown refer split scheme 'berkeley'"):
        read(tmp_path, "val", "berkeley")


def mutated_instances(change):
    instances = default_instances()
    change(instances)
    return instances


@pytest.mark.parametrize("refs, instances, file, message", [
    ([ref(0, 99, 1, "val", [sentence(0, "x")])], None, "instances.json", "annotation 99: referred to by ref_id 0"),
    ([ref(0, 11, 7, "val", [sentence(0, "x")])], None, "instances.json", "image 7: referred to by ref_id 0"),
    ([ref(0, 12, 2, "val", [sentence(0, "x")])], None, "instances.json", "annotation 12: belongs to image 1"),
    ([ref(0, 11, 1, "val", [sentence(0, "x")]), ref(0, 12, 1, "val", [sentence(1, "y")])], None, "refs(unc).p",
     "ref_id 0: duplicate ref_id"),
    ([ref(0, 11, 1, "val", [sentence(0, "x")]), ref(1, 12, 1, "val", [sentence(0, "y")])], None, "refs(unc).p",
     r"ref_id 1 sentences\[0\]: sent_id 0 also appears"),
    ([ref(0, 11, 1, "val", [{"sent_id": 0, "raw": "x"}])], None, "refs(unc).p", "'sent' must be a string"),
    ([{**ref(0, 11, 1, "val", []), "ann_id": "11"}], None, "refs(unc).p", "'ann_id' must be an integer"),
    (None, mutated_instances(lambda d: d["images"][0].pop("height")), "instances.json", "image 1: 'height' and 'width'"),
    (None, mutated_instances(lambda d: d["annotations"][0].update(segmentation=RLE.from_mask(np.ones((3, 3))).to_json())),
     "instances.json", re.escape("annotation 11.segmentation[0]: RLE size [3, 3] != image size [6, 8]")),
    (None, mutated_instances(lambda d: d["annotations"][0].update(segmentation=[["a", "b"]])),
     "instances.json", "a polygon must be a list of numbers"),
    (None, mutated_instances(lambda d: d.pop("annotations")), "instances.json", "annotations: missing or not a list"),
])
def test_malformed_records_name_file_and_record(tmp_path, refs, instances, file, message):
    with pytest.raises(InputError, match=message) as error:
        read(tmp_path, "val", refs=refs, instances=instances)
    assert str(error.value).startswith(str(tmp_path / "refcoco" / file))


def test_instances_not_json(tmp_path):
    refs_path, instances_path = write_refer(tmp_path)
    instances_path.write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        read_refer_expressions(refs_path, instances_path, tmp_path, "val", "unc")
