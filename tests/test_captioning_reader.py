"""Region/image caption ground truth and GLaMM caption result files, written by hand to the upstream layouts
(MDETR refexp_coco_format.py + GLaMM eval/ddp.py RegionCapDDP, eval/region_captioning/{infer,evaluate}.py,
COCO captions), read back as Docs and Predictions; malformed input is one error naming file and record."""

import json
from pathlib import Path

import pytest

from gcgbench.api.errors import InputError
from gcgbench.data.captioning import (
    caption_results,
    read_caption_results,
    read_caption_results_dir,
    read_image_caption_docs,
    read_region_caption_docs,
)


def refcocog_file(images=None, annotations=None) -> dict:
    """MDETR finetune_refcocog_val layout with a caption on every annotation; ids out of order on purpose."""
    images = images if images is not None else [
        {"file_name": "COCO_train2014_000000000025.jpg", "height": 480, "width": 640, "id": 71, "original_id": 25,
         "caption": "the giraffe on the left", "dataset_name": "refcocog", "tokens_negative": []},
        {"file_name": "COCO_train2014_000000000025.jpg", "height": 480, "width": 640, "id": 70, "original_id": 25,
         "caption": "a tall giraffe eating leaves", "dataset_name": "refcocog", "tokens_negative": []},
        {"file_name": "COCO_train2014_000000000009.jpg", "height": "375", "width": 500.0, "id": 72,
         "original_id": 9, "caption": "a bowl of broccoli", "dataset_name": "refcocog", "tokens_negative": []},
    ]
    annotations = annotations if annotations is not None else [
        {"area": 5000.0, "iscrowd": 0, "image_id": 70, "category_id": 25, "id": 70, "bbox": [10, 20, 100.5, 200],
         "original_id": 598731, "tokens_positive": [[7, 14]], "caption": "a tall giraffe eating leaves"},
        {"area": 5000.0, "iscrowd": 0, "image_id": 71, "category_id": 25, "id": 71, "bbox": [10, 20, 100.5, 200],
         "original_id": 598731, "tokens_positive": [[4, 11]], "caption": "the giraffe on the left"},
        {"area": 900.0, "iscrowd": 0, "image_id": 72, "category_id": 56, "id": 72, "bbox": [0, 0, 30, 30],
         "original_id": 1038967, "tokens_positive": [[2, 6]], "caption": "a bowl of broccoli"},
        {"id": 900, "image_id": 72, "bbox": [1, 1, 2, 2], "caption": "a second reference for image 72"},
    ]
    return {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": []}


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_region_docs_follow_images_order_with_box_from_annotation_with_the_image_id(tmp_path):
    path = write(tmp_path / "finetune_refcocog_val_captions.json", refcocog_file())
    docs = read_region_caption_docs(path, tmp_path / "train2014")
    assert [d.doc_id for d in docs] == ["71", "70", "72"]
    first, _, third = docs
    assert first.inputs == {"region": [10.0, 20.0, 100.5, 200.0]}
    assert (first.height, first.width) == (480, 640)
    assert first.image_path == str(tmp_path / "train2014" / "COCO_train2014_000000000025.jpg")
    assert first.truth == {"image_id": "COCO_train2014_000000000025.jpg", "source_image_id": 71,
                           "captions": ["the giraffe on the left"]}
    # every annotation of image 72 is a reference (COCOEvalCap imgToAnns); the box is annotation 72's
    assert third.truth["captions"] == ["a bowl of broccoli", "a second reference for image 72"]
    assert third.inputs["region"] == [0.0, 0.0, 30.0, 30.0]
    assert (third.height, third.width) == (375, 500)  # sizes stored as a string / float still read


def test_visual_genome_style_file_with_regions_sharing_a_picture(tmp_path):
    data = {"images": [{"id": 0, "file_name": "1000.jpg", "height": 600, "width": 800},
                       {"id": 1, "file_name": "1000.jpg", "height": 600, "width": 800}],
            "annotations": [{"id": 1, "image_id": 1, "bbox": [5, 5, 10, 10], "caption": "a red car", "area": 100},
                            {"id": 0, "image_id": 0, "bbox": [50, 60, 70, 80], "caption": "white clouds", "area": 5600}]}
    docs = read_region_caption_docs(write(tmp_path / "test_caption.json", data), tmp_path / "images")
    assert [(d.doc_id, d.inputs["region"], d.truth["captions"]) for d in docs] == [
        ("0", [50.0, 60.0, 70.0, 80.0], ["white clouds"]), ("1", [5.0, 5.0, 10.0, 10.0], ["a red car"])]
    assert {d.truth["image_id"] for d in docs} == {"1000.jpg"}


def test_image_caption_docs_take_every_caption_of_the_image(tmp_path):
    data = {"images": [{"id": 139, "file_name": "000000000139.jpg", "height": 426, "width": 640},
                       {"id": 285, "file_name": "000000000285.jpg", "height": 640, "width": 586}],
            "annotations": [{"image_id": 285, "id": 1, "caption": "A big bear."},
                            {"image_id": 139, "id": 2, "caption": "A living room."},
                            {"image_id": 285, "id": 3, "caption": "A brown bear sitting."}]}
    docs = read_image_caption_docs(write(tmp_path / "captions_val2017.json", data), tmp_path / "val2017")
    assert [(d.doc_id, d.truth["captions"]) for d in docs] == [
        ("139", ["A living room."]), ("285", ["A big bear.", "A brown bear sitting."])]
    assert docs[0].inputs == {} and docs[0].image_path.endswith("val2017/000000000139.jpg")


def test_image_without_caption_is_an_error(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "height": 2, "width": 2}], "annotations": []}
    with pytest.raises(InputError, match=r"captions\.json: images\[0\]: image 1 has no caption annotation"):
        read_image_caption_docs(write(tmp_path / "captions.json", data), tmp_path)


def broken(key: str, index: int, **changes) -> dict:
    data = refcocog_file()
    data[key][index] = {k: v for k, v in {**data[key][index], **changes}.items() if v is not ...}
    return data


@pytest.mark.parametrize(
    "data, record, problem",
    [
        ([], None, "expected a COCO-format JSON object"),
        ({"images": {}, "annotations": []}, "images", "missing or not a list"),
        ({"images": [], "annotations": None}, "annotations", "missing or not a list"),
        (broken("images", 1, id=71), "images[1]", "duplicate image id 71"),
        (broken("images", 0, id=True), "images[0]", "'id' must be an int or a string"),
        (broken("images", 0, file_name=...), "images[0]", "'file_name' must be a non-empty string"),
        (broken("images", 0, height=...), "images[0]", "'height' must be a positive integer, got None"),
        (broken("images", 0, width=-3), "images[0]", "'width' must be a positive integer, got -3"),
        (broken("annotations", 0, image_id=5), "annotations[0]", "image_id 5 is not in 'images'"),
        (broken("annotations", 0, caption=None), "annotations[0]", "'caption' must be a string"),
        (broken("annotations", 1, id=70), "annotations[1]", "duplicate annotation id 70"),
        (broken("annotations", 0, bbox=[1, 2, 3]), "annotations[0]", "'bbox' must be [x, y, width, height]"),
        (broken("annotations", 0, bbox=[1, 2, "3", 4]), "annotations[0]", "'bbox' must be [x, y, width, height]"),
        (broken("annotations", 0, bbox=[1, 2, -3, 4]), "annotations[0]", "width and height must be >= 0"),
        (broken("annotations", 1, id=501), "images[0]", "no annotation with id 71"),
        (broken("annotations", 1, image_id=72), "annotations[1]",
         "annotation 71 is the region of image 71 but has image_id 72"),
    ],
)
def test_malformed_region_files_name_file_record_and_problem(tmp_path, data, record, problem):
    path = write(tmp_path / "regions.json", data)
    with pytest.raises(InputError) as error:
        read_region_caption_docs(path, tmp_path)
    assert str(error.value).startswith(f"{path}: {record}: " if record else f"{path}: ")
    assert problem in str(error.value)


def test_missing_and_truncated_annotation_files(tmp_path):
    with pytest.raises(InputError, match=r"nope\.json: region-caption annotation file not found"):
        read_region_caption_docs(tmp_path / "nope.json", tmp_path)
    path = write(tmp_path / "cut.json", '{"images": [\n{"id": 1,')
    with pytest.raises(InputError, match=r"cut\.json: line 2: not valid JSON"):
        read_image_caption_docs(path, tmp_path)


@pytest.fixture()
def docs(tmp_path):
    return read_region_caption_docs(write(tmp_path / "gt.json", refcocog_file()), tmp_path)


def test_glamm_result_file_and_rank_folder(tmp_path, docs):
    """infer.py writes `<ckpt>_<dataset>_<rank>.json` (indent=2); evaluate.py adds merged.json and metrics.txt."""
    results = tmp_path / "results"
    write(results / "GLaMM-RegCap-RefCOCOg_refcocog_0.json",
          json.dumps([{"image_id": 71, "caption": "a giraffe"}, {"image_id": 72, "caption": "broccoli"}], indent=2))
    write(results / "GLaMM-RegCap-RefCOCOg_refcocog_1.json",
          json.dumps([{"image_id": 70, "caption": "a tall giraffe"}, {"image_id": 71, "caption": "a giraffe"}]))
    write(results / "merged.json", [{"image_id": 70, "caption": "stale"}])
    write(results / "metrics.txt", "CIDEr: 1.000\n")
    predictions = read_caption_results_dir(results, docs)
    assert list(predictions) == ["71", "70", "72"]  # doc order
    assert {k: p.text for k, p in predictions.items()} == {"71": "a giraffe", "70": "a tall giraffe", "72": "broccoli"}
    assert predictions["70"].phrases == () and predictions["70"].boxes is None
    # the upstream layout round-trips, original (int) ids included
    write(tmp_path / "single.json", caption_results(docs, predictions))
    assert read_caption_results([tmp_path / "single.json"], docs) == predictions


def test_only_merged_json_is_read_when_it_is_alone(tmp_path, docs):
    write(tmp_path / "r" / "merged.json", [{"image_id": i, "caption": "x"} for i in (70, 71, 72)])
    assert len(read_caption_results_dir(tmp_path / "r", docs)) == 3


@pytest.mark.parametrize(
    "results, record, problem",
    [
        ({"image_id": 70}, None, "expected a JSON list"),
        ([[70, "x"]], "[0]", "expected an object with 'image_id' and 'caption'"),
        ([{"image_id": 70.0, "caption": "x"}], "[0]", "'image_id' must be an int or a string"),
        ([{"image_id": 70, "caption": ["x"]}], "[0]", "'caption' must be a string"),
        ([{"image_id": 70, "caption": "x"}, {"image_id": 99, "caption": "y"}], "[1]", "image_id 99 is not an image of this task"),
        ([{"image_id": i, "caption": "x"} for i in (70, 71, 72)] + [{"image_id": 71, "caption": "other"}], "[3]",
         "second, different caption for image_id 71"),
    ],
)
def test_malformed_result_files(tmp_path, docs, results, record, problem):
    path = write(tmp_path / "preds.json", results)
    with pytest.raises(InputError) as error:
        read_caption_results([path], docs)
    assert str(error.value).startswith(f"{path}: {record}: " if record else f"{path}: ")
    assert problem in str(error.value)


def test_docs_without_a_caption_are_an_error_not_a_skip(tmp_path, docs):
    write(tmp_path / "r" / "x_0.json", [{"image_id": 71, "caption": "x"}, {"image_id": 71, "caption": "x"}])
    with pytest.raises(InputError, match=r"r: 2 of 3 docs have no caption \(first image_id: 70\)"):
        read_caption_results_dir(tmp_path / "r", docs)
    with pytest.raises(InputError, match="no caption result files"):
        read_caption_results_dir(write(tmp_path / "empty" / "metrics.txt", "").parent, docs)
