"""ReasonSeg and gRefCOCO readers on the bundled sample (byte-identical, in the upstream layouts, with
no-target, multi-target, crowd, ignore and flag cases) and on broken input (one line naming file, record,
problem)."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gcgbench.api.errors import InputError
from gcgbench.data.grefcoco import read_grefcoco
from gcgbench.data.reasonseg import image_size, read_reasonseg
from gcgbench.data.sample import write_sample
from gcgbench.data.sample.grefcoco import FOLDER as GREF_FOLDER
from gcgbench.data.sample.reasonseg import FOLDER as RS_FOLDER

from official_reasonseg_gres import get_mask_from_json

N_IMAGES = 12
IMAGES = "coco_2014/train2014"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample"), N_IMAGES)


def hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sample_files_are_byte_identical_across_runs(root, tmp_path):
    again = write_sample(tmp_path / "again", N_IMAGES)
    for folder in (RS_FOLDER, GREF_FOLDER):
        first = hashes(root / folder)
        assert first and first == hashes(again / folder)


# ------------------------------------------------------------------------------------------ ReasonSeg
def test_reasonseg_sample_reads_as_lisa_reads_it(root):
    val, test = (read_reasonseg(root / RS_FOLDER / split) for split in ("val", "test"))
    assert len(val) == len(test) == N_IMAGES // 2
    assert {s.is_sentence for s in test} == {True, False} and {s.is_sentence for s in val} == {True, False}
    assert any(s.ignore.area() for s in test) and any(not s.ignore.area() for s in test)
    raw = [json.loads(Path(s.json_file).read_text()) for s in val + test]
    assert any(shape["label"] == "flag" for anno in raw for shape in anno["shapes"])
    for sample, anno in zip(val + test, raw):
        assert Path(sample.image_file).name == f"{sample.stem}.jpg"
        assert sample.text == anno["text"][0].strip() and sample.is_sentence is anno["is_sentence"]
        lisa, comments, _ = get_mask_from_json(sample.json_file, np.zeros((sample.height, sample.width, 3)))
        assert np.array_equal(sample.target.decode(), (lisa == 1).astype(np.uint8))
        assert np.array_equal(sample.ignore.decode(), (lisa == 255).astype(np.uint8))
        assert sample.target.area() > 0 and comments == anno["text"]
    # an ignore box cutting into a target wins those pixels (largest first, then the smaller box)
    assert any(s.ignore.area() and s.target.area() < _target_alone(s) for s in val + test)


def _target_alone(sample) -> int:
    anno = json.loads(Path(sample.json_file).read_text())
    anno["shapes"] = [s for s in anno["shapes"] if s["label"] == "target"]
    Path(sample.json_file + ".t").write_text(json.dumps(anno))
    mask, _, _ = get_mask_from_json(sample.json_file + ".t", np.zeros((sample.height, sample.width, 3)))
    return int((mask == 1).sum())


def test_split_folder_accepts_lisa_and_bare_layouts_and_respects_overrides(root, tmp_path):
    from gcgbench.api.task import DataPaths
    from gcgbench.tasks.registry import get_task

    spec = get_task("reasonseg_val").spec
    assert DataPaths(root).file(spec, "split_folder") == root / "reason_seg/ReasonSeg/val"
    shutil.copytree(root / RS_FOLDER / "val", tmp_path / "ReasonSeg" / "val")
    assert DataPaths(tmp_path).file(spec, "split_folder") == tmp_path / "ReasonSeg" / "val"
    both = tmp_path / "both"
    shutil.copytree(root / RS_FOLDER / "val", both / "ReasonSeg" / "val")
    shutil.copytree(root / RS_FOLDER / "val", both / RS_FOLDER / "val")
    assert DataPaths(both).file(spec, "split_folder") == both / RS_FOLDER / "val"  # LISA's layout first
    overridden = DataPaths(tmp_path, {"reasonseg_val": {"split_folder": "elsewhere"}})
    assert overridden.file(spec, "split_folder") == tmp_path / "elsewhere"  # an override is never second-guessed
    assert DataPaths(tmp_path / "nowhere").file(spec, "split_folder") == tmp_path / "nowhere" / RS_FOLDER / "val"


@pytest.fixture
def one_image(root, tmp_path) -> Path:
    folder = tmp_path / "val"
    folder.mkdir()
    source = sorted((root / RS_FOLDER / "val").glob("*.jpg"))[0]
    shutil.copy(source, folder / source.name)
    shutil.copy(source.with_suffix(".json"), folder / source.with_suffix(".json").name)
    return folder / source.name


def rewrite(image: Path, change) -> Path:
    path = image.with_suffix(".json")
    anno = json.loads(path.read_text())
    change(anno)
    path.write_text(json.dumps(anno))
    return path


@pytest.mark.parametrize("change,record,problem", [
    (lambda a: a.update(is_sentence="yes"), "is_sentence", "must be true or false"),
    (lambda a: a.update(text=[]), "text", "non-empty list"),
    (lambda a: a.pop("shapes"), "shapes", "must be a list"),
    (lambda a: a["shapes"].append({"label": "target", "points": [[1, 2, 3]]}), "points", "[x, y] numbers"),
    (lambda a: a["shapes"].append({"label": 3, "points": [[1, 2]]}), "shapes[", "'label' must be a string"),
    (lambda a: a["shapes"].append({"label": "target", "points": []}), "points", "non-empty"),
])
def test_reasonseg_bad_annotations_name_file_record_and_problem(one_image, change, record, problem):
    path = rewrite(one_image, change)
    with pytest.raises(InputError) as caught:
        read_reasonseg(one_image.parent)
    message = str(caught.value)
    assert str(path) in message and record in message and problem in message and "\n" not in message


def test_reasonseg_missing_json_invalid_json_and_empty_folder(one_image, tmp_path):
    one_image.with_suffix(".json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_reasonseg(one_image.parent)
    one_image.with_suffix(".json").unlink()
    with pytest.raises(InputError, match=r"\.json: annotation of .* not found"):
        read_reasonseg(one_image.parent)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no \\*.jpg images"):
        read_reasonseg(tmp_path / "empty")
    with pytest.raises(InputError, match="split folder not found"):
        read_reasonseg(tmp_path / "absent")


def test_reasonseg_cp1252_text_and_string_text(one_image):
    path = one_image.with_suffix(".json")
    anno = json.loads(path.read_text())
    anno["text"] = ["the caf\u00e9 sign "]
    path.write_bytes(json.dumps(anno, ensure_ascii=False).encode("cp1252"))  # upstream retries with cp1252
    sample = read_reasonseg(one_image.parent)[0]
    assert sample.text == "the caf\u00e9 sign" and sample.gt_issue is None
    anno["text"] = "a whole string"
    path.write_text(json.dumps(anno))
    sample = read_reasonseg(one_image.parent)[0]
    assert sample.text == "a whole string" and "first character" in sample.gt_issue


def test_image_size_follows_exif_orientation(tmp_path):
    from PIL import Image

    image = Image.new("RGB", (30, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90°: cv2.imread returns 30 rows × 20 columns
    image.save(tmp_path / "r.jpg", exif=exif)
    image.save(tmp_path / "p.jpg")
    assert image_size(tmp_path / "r.jpg") == (30, 20) and image_size(tmp_path / "p.jpg") == (20, 30)


# ------------------------------------------------------------------------------------------ gRefCOCO
def gref_paths(root: Path) -> tuple[Path, Path, Path]:
    return root / GREF_FOLDER / "grefs(unc).json", root / GREF_FOLDER / "instances.json", root / IMAGES


@pytest.mark.parametrize("split", ["val", "testA", "testB"])
def test_grefcoco_sample_has_single_multi_and_no_target_expressions(root, split):
    records = read_grefcoco(*gref_paths(root), split)
    refs = json.loads(gref_paths(root)[0].read_text())
    assert all(r["split"] in ("train", "val", "testA", "testB") and isinstance(r["ann_id"], list) for r in refs)
    assert [r.record_id for r in records] == [f"{r['ref_id']}_{s['sent_id']}" for r in refs if r["split"] == split
                                              for s in r["sentences"]]
    no_target = [r for r in records if r.no_target]
    assert no_target and all(r.mask.area() == 0 and r.ann_ids == () for r in no_target)
    multi = [r for r in records if len(r.ann_ids) > 1]
    assert multi and all(r.mask.area() > 0 for r in multi)
    crowd = [r for r in multi if r.crowd_left_out]
    assert crowd and all(r.gt_issue is None for r in records)  # the crowd duplicate is left out, nothing else


def test_grefcoco_union_equals_pycocotools_union_of_non_crowd_annotations(root):
    from pycocotools import mask as mask_utils

    instances = json.loads(gref_paths(root)[1].read_text())
    anns = {a["id"]: a for a in instances["annotations"]}
    for record in read_grefcoco(*gref_paths(root), "val"):
        expected = np.zeros((record.height, record.width), np.uint8)
        for ann_id in record.ann_ids:
            if not anns[ann_id]["iscrowd"]:
                rles = mask_utils.frPyObjects(anns[ann_id]["segmentation"], record.height, record.width)
                expected |= mask_utils.decode(rles).any(axis=2).astype(np.uint8)
        assert np.array_equal(record.mask.decode(), expected)


@pytest.fixture
def gref_copy(root, tmp_path):
    refs, instances, _ = gref_paths(root)
    shutil.copy(refs, tmp_path / refs.name)
    shutil.copy(instances, tmp_path / instances.name)
    return tmp_path / refs.name, tmp_path / instances.name, root / IMAGES


@pytest.mark.parametrize("change,record,problem", [
    (lambda refs: refs[0].update(ann_id="x"), "ref_id 0", "'ann_id' must be"),
    (lambda refs: refs[0].update(ann_id=[-1, refs[0]["ann_id"][0]]), "ref_id 0", "mixes -1"),
    (lambda refs: refs[0].update(ann_id=[123456789]), "annotation 123456789", "not in 'annotations'"),
    (lambda refs: refs[0].update(image_id=5), "image 5", "not in 'images'"),
    (lambda refs: refs[0].update(sentences=[]), "ref_id 0", "'sentences' must be a non-empty list"),
    (lambda refs: refs[0]["sentences"][0].update(sent=None), "sentences[0]", "'sent' must be a string"),
    (lambda refs: refs[1].update(ref_id=refs[0]["ref_id"]), "ref_id 0", "duplicate ref_id"),
])
def test_grefcoco_bad_refs_name_file_record_and_problem(gref_copy, change, record, problem):
    refs_path = gref_copy[0]
    refs = json.loads(refs_path.read_text())
    refs[0]["split"] = refs[1]["split"] = "val"
    change(refs)
    refs_path.write_text(json.dumps(refs))
    with pytest.raises(InputError) as caught:
        read_grefcoco(*gref_copy, "val")
    message = str(caught.value)
    assert record in message and problem in message and "\n" not in message
    assert refs_path.name in message or "instances.json" in message


def test_grefcoco_unknown_split_missing_and_malformed_files(gref_copy, tmp_path):
    with pytest.raises(InputError, match="unknown gRefCOCO split 'test'"):
        read_grefcoco(*gref_copy, "test")
    with pytest.raises(InputError, match="not found"):
        read_grefcoco(tmp_path / "absent.json", *gref_copy[1:], "val")
    gref_copy[0].write_text('{"refs": []}')
    with pytest.raises(InputError, match="expected a list of refs"):
        read_grefcoco(*gref_copy, "val")


def test_grefcoco_ref_naming_only_crowd_objects_keeps_an_empty_truth_and_says_so(gref_copy):
    refs_path, instances_path, _ = gref_copy
    refs, instances = json.loads(refs_path.read_text()), json.loads(instances_path.read_text())
    crowd_ids = [a["id"] for a in instances["annotations"] if a["iscrowd"]]
    crowd = next(a for a in instances["annotations"] if a["id"] == crowd_ids[0])
    ref = next(r for r in refs if r["image_id"] == crowd["image_id"])
    ref.update(ann_id=[crowd["id"]], split="val")
    refs_path.write_text(json.dumps(refs))
    found = [r for r in read_grefcoco(*gref_copy, "val") if r.ref_id == ref["ref_id"]]
    assert found and all(r.mask.area() == 0 and not r.no_target and r.crowd_left_out == 1 for r in found)
    assert "no usable annotation" in found[0].gt_issue
