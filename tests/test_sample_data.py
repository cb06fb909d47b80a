"""The bundled sample data: byte-identical across runs, and readable exactly as the upstream tools read
the real datasets (pycocotools COCO/COCOeval for GranD-f, plain pickle for refer, rgb2id for panoptic
PNGs, json/jsonl with the official fields for the VQA suites)."""

import base64
import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from gcgbench.data.sample import sample_root, write_sample
from gcgbench.data.sample.coco import LAYOUT, sa_image_id
from gcgbench.data.sample.files import coco_image_id
from gcgbench.data.sample.root import MARKER_NAME, default_cache_dir, is_complete_sample
from gcgbench.data.sample.vqa import gqa_image_id, textvqa_image_id
from gcgbench.data.sample.scenes import COLORS, TEXT_BOX, TEXT_RGB, make_scenes

N_IMAGES = 24
REF_FIELDS = {"sent_ids", "file_name", "ann_id", "ref_id", "image_id", "split", "sentences", "category_id"}
SENTENCE_FIELDS = {"tokens", "raw", "sent_id", "sent"}
EVAL = LAYOUT.llava_eval


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample"), N_IMAGES)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(N_IMAGES)


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rgb_of(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_two_runs_into_different_folders_are_byte_identical(root, tmp_path):
    again = write_sample(tmp_path / "elsewhere", N_IMAGES)
    first = file_hashes(root)
    assert len(first) > 150
    assert first == file_hashes(again)


def test_scenes_vary_size_aspect_count_and_plurality_and_never_overlap(scenes):
    assert {(s.height > s.width, s.height < s.width) for s in scenes} == {(True, False), (False, True), (False, False)}
    assert {len(s.shapes) for s in scenes} == {1, 2, 3}
    plural_indices = {s.index % 2 for s in scenes if any(g.plural for g in s.groups())}
    assert plural_indices == {0, 1}  # both GranD-f splits hold a plural phrase
    for scene in scenes:
        stack = np.stack(scene.shape_masks)
        assert stack.sum(axis=(1, 2)).min() > 50 and stack.sum(axis=0).max() == 1
        assert not stack[:, TEXT_BOX[1]:TEXT_BOX[3], TEXT_BOX[0]:TEXT_BOX[2]].any()
        centers = [shape.center_x for shape in scene.shapes]
        assert centers == sorted(centers)


def test_grandf_loads_with_pycocotools_and_every_mask_is_the_drawn_shape(root, scenes):
    by_stem = {sa_image_id(s): s for s in scenes}
    folder = root / LAYOUT.grandf_annotations
    seen = []
    for split in ("val", "test"):
        captions = COCO(str(folder / f"{split}_gcg_coco_caption_gt.json"))
        masks = COCO(str(folder / f"{split}_gcg_coco_mask_gt.json"))
        assert masks.getCatIds() == [1]
        for image_id in captions.getImgIds():
            seen.append(image_id)
            scene, info = by_stem[image_id], captions.imgs[image_id]
            assert isinstance(image_id, str) and info["file_name"] == f"{image_id}.jpg"
            assert (info["height"], info["width"]) == (scene.height, scene.width)
            (caption,) = captions.loadAnns(captions.getAnnIds(imgIds=[image_id]))
            mask_anns = [a for a in masks.dataset["annotations"] if a["image_id"] == image_id]
            assert len(mask_anns) == len(caption["labels"]) >= 1
            photo = rgb_of(root / LAYOUT.grandf_images / info["file_name"])
            assert photo.shape == (scene.height, scene.width, 3)
            drawn = scene.render()
            _, phrases = scene.caption()
            for label, ann, phrase in zip(caption["labels"], mask_anns, phrases):
                assert label == phrase.text and caption["caption"][phrase.start:phrase.end] == label
                assert isinstance(ann["segmentation"]["counts"], str) and ann["iscrowd"] == 0
                decoded = mask_utils.decode(ann["segmentation"])
                assert decoded.shape == (scene.height, scene.width) and decoded.sum() == ann["area"]
                assert np.array_equal(decoded, scene.union_mask(phrase.members))
                color = COLORS[scene.shapes[phrase.members[0]].color]
                assert (drawn[decoded.astype(bool)] == color).all()
                jpeg_error = np.abs(photo[decoded.astype(bool)].astype(int) - color).mean()
                assert jpeg_error < 12
    assert sorted(seen) == sorted(by_stem)


def test_grandf_gt_scored_against_itself_gives_ap50_of_one_as_glamm_computes_it(root):
    gt = COCO(str(root / LAYOUT.grandf_annotations / "val_gcg_coco_mask_gt.json"))
    predictions = [{"image_id": a["image_id"], "category_id": 1, "segmentation": a["segmentation"], "score": 1.0}
                   for a in gt.dataset["annotations"]]
    evaluation = COCOeval(gt, gt.loadRes(predictions), "segm")
    evaluation.params.catIds = [1]
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[1] == pytest.approx(1.0)


@pytest.mark.parametrize("dataset,split_by,splits", [
    ("refcoco", "unc", {"train", "val", "testA", "testB"}),
    ("refcoco+", "unc", {"train", "val", "testA", "testB"}),
    ("refcocog", "umd", {"train", "val", "test"}),
    ("refcocog", "google", {"train", "val"}),
])
def test_refer_pickles_load_with_plain_pickle_and_polygons_rasterise_to_the_shapes(root, scenes, dataset, split_by,
                                                                                    splits):
    folder = root / LAYOUT.refer_root / dataset
    with open(folder / f"refs({split_by}).p", "rb") as handle:
        refs = pickle.load(handle)
    instances = json.loads((folder / "instances.json").read_text())
    anns = {a["id"]: a for a in instances["annotations"]}
    images = {i["id"]: i for i in instances["images"]}
    by_id = {coco_image_id(s): s for s in scenes}
    assert isinstance(refs, list) and {ref["split"] for ref in refs} == splits
    assert len({ref["ref_id"] for ref in refs}) == len(refs)
    for ref in refs:
        assert set(ref) == REF_FIELDS
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]] and ref["sentences"]
        for sentence in ref["sentences"]:
            assert set(sentence) == SENTENCE_FIELDS
            assert sentence["tokens"] == sentence["sent"].split() and sentence["sent"] == sentence["sent"].lower()
            assert sentence["raw"].lower().rstrip(".") == sentence["sent"]
            if dataset == "refcoco+":
                assert not {"left", "right", "middle", "leftmost", "rightmost"} & set(sentence["tokens"])
        ann, image = anns[ref["ann_id"]], images[ref["image_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] == ref["category_id"]
        assert ref["file_name"].startswith(image["file_name"][:-4] + "_")
        scene = by_id[ref["image_id"]]
        polygons = ann["segmentation"]
        assert isinstance(polygons, list) and all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
        raster = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, image["height"], image["width"])))
        assert np.array_equal(raster, scene.shape_masks[ref["ann_id"] % 10 - 1])
        assert rgb_of(root / LAYOUT.refer_images / image["file_name"]).shape == (image["height"], image["width"], 3)


def test_panoptic_pngs_decode_with_rgb2id_to_the_segment_ids_of_the_json(root, scenes):
    panoptic = json.loads((root / LAYOUT.panoptic_json).read_text())
    categories = {c["id"]: c for c in panoptic["categories"]}
    images = {i["id"]: i for i in panoptic["images"]}
    segments = {}
    for ann in panoptic["annotations"]:
        rgb = rgb_of(root / LAYOUT.panoptic_pngs / ann["file_name"]).astype(np.int32)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 ** 2 * rgb[..., 2]
        info = images[ann["image_id"]]
        assert ids.shape == (info["height"], info["width"])
        assert set(np.unique(ids).tolist()) == {s["id"] for s in ann["segments_info"]}
        assert sum(categories[s["category_id"]]["isthing"] == 0 for s in ann["segments_info"]) == 1
        for segment in ann["segments_info"]:
            pixels = ids == segment["id"]
            assert pixels.sum() == segment["area"]
            ys, xs = np.nonzero(pixels)
            assert segment["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        segments[ann["image_id"]] = (ids, {s["id"]: s for s in ann["segments_info"]})
        assert (root / LAYOUT.png_images / info["file_name"]).is_file()
    by_id = {coco_image_id(s): s for s in scenes}
    narratives = json.loads((root / LAYOUT.png_narratives).read_text())
    plural_seen = stuff_seen = ungrounded_noun_seen = False
    for narrative in narratives:
        ids, infos = segments[int(narrative["image_id"])]
        scene = by_id[int(narrative["image_id"])]
        assert " ".join(s["utterance"] for s in narrative["segments"]) == narrative["caption"]
        assert len(narrative["segments"]) == len(scene.narrative())
        for segment, planned in zip(narrative["segments"], scene.narrative()):
            assert set(segment) == {"utterance", "segment_ids", "plural", "noun"}
            assert segment["utterance"] == planned.utterance
            grounded = [int(i) for i in segment["segment_ids"]]
            ungrounded_noun_seen |= segment["noun"] and not grounded
            if not grounded:
                continue
            assert segment["noun"] and len(grounded) == (2 if segment["plural"] else 1)
            things = {categories[infos[i]["category_id"]]["isthing"] for i in grounded}
            stuff_seen |= things == {0}
            plural_seen |= segment["plural"] and things == {1}
            union = np.isin(ids, grounded).astype(np.uint8)
            expected = scene.background_mask() if planned.background else scene.union_mask(planned.members)
            assert np.array_equal(union, expected) and things == ({0} if planned.background else {1})
    assert plural_seen and stuff_seen and ungrounded_noun_seen


def test_vqav2_files_have_the_official_fields(root):
    folder = root / EVAL / "vqav2"
    questions = json.loads((folder / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    annotations = json.loads((folder / "v2_mscoco_val2014_annotations.json").read_text())
    assert {"info", "task_type", "data_type", "license", "data_subtype", "questions"} <= set(questions)
    assert {"info", "license", "data_subtype", "annotations", "data_type"} <= set(annotations)
    for question in questions["questions"]:
        assert set(question) == {"image_id", "question", "question_id"}
        assert (folder / "val2014" / f"COCO_val2014_{question['image_id']:012d}.jpg").is_file()
    assert {a["answer_type"] for a in annotations["annotations"]} == {"yes/no", "number", "other"}
    for ann in annotations["annotations"]:
        assert set(ann) == {"question_type", "multiple_choice_answer", "answers", "image_id", "answer_type",
                            "question_id"}
        assert [a["answer_id"] for a in ann["answers"]] == list(range(1, 11))
        assert all(set(a) == {"answer", "answer_confidence", "answer_id"} for a in ann["answers"])
    assert [q["question_id"] for q in questions["questions"]] == [a["question_id"] for a in annotations["annotations"]]
    test_dev = read_jsonl(folder / "llava_vqav2_mscoco_test-dev2015.jsonl")
    assert all(set(line) == {"question_id", "image", "text"} and (folder / "test2015" / line["image"]).is_file()
               for line in test_dev)


def test_pope_label_files_pair_with_the_llava_question_file_by_order_within_a_category(root):
    folder = root / EVAL / "pope"
    questions = read_jsonl(folder / "llava_pope_test.jsonl")
    assert len({q["question_id"] for q in questions}) == len(questions)
    for category in ("adversarial", "popular", "random"):
        labels = read_jsonl(folder / "coco" / f"coco_pope_{category}.json")
        asked = [q for q in questions if q["category"] == category]
        assert [q["text"].split("\n")[0] for q in asked] == [label["text"] for label in labels]
        assert [q["image"] for q in asked] == [label["image"] for label in labels]
        assert all(set(label) == {"question_id", "image", "image_id", "text", "label"} for label in labels)
        assert sorted(label["label"] for label in labels) == ["no"] * (len(labels) // 2) + ["yes"] * (len(labels) // 2)
        assert all((folder / "val2014" / label["image"]).is_file() for label in labels)


def test_gqa_and_textvqa_files_have_the_official_fields(root, scenes):
    gqa = root / EVAL / "gqa"
    questions = json.loads((gqa / "data" / "testdev_balanced_questions.json").read_text())
    for question_id, question in questions.items():
        assert {"question", "imageId", "answer", "fullAnswer", "isBalanced", "types", "semantic", "semanticStr",
                "groups", "entailed", "equivalent", "annotations"} <= set(question) and question["isBalanced"]
        assert (gqa / "data" / "images" / f"{question['imageId']}.jpg").is_file()
    lines = read_jsonl(gqa / "llava_gqa_testdev_balanced.jsonl")
    assert [line["question_id"] for line in lines] == list(questions)
    assert {line["image"] for line in lines} <= {f"{gqa_image_id(s)}.jpg" for s in scenes}

    textvqa = root / EVAL / "textvqa"
    data = json.loads((textvqa / "TextVQA_0.5.1_val.json").read_text())
    assert data["dataset_version"] == "0.5.1" and data["dataset_type"] == "val"
    by_key = {(d["image_id"], d["question"].lower()): d for d in data["data"]}
    assert len(by_key) == len(data["data"])
    for entry in data["data"]:
        assert len(entry["answers"]) == 10 and isinstance(entry["question_id"], int)
    by_image = {textvqa_image_id(s): s for s in scenes}
    for line in read_jsonl(textvqa / "llava_textvqa_val_v051_ocr.jsonl"):
        question, ocr, prompt = line["text"].split("\n")  # eval_textvqa.prompt_processor's 3-line form
        entry = by_key[(line["question_id"], question.lower())]
        assert ocr == f"Reference OCR token: {entry['answers'][0]}" and prompt.startswith("Answer the question")
        image = rgb_of(textvqa / "train_images" / line["image"])
        scene = by_image[line["question_id"]]
        corner = image[TEXT_BOX[1]:TEXT_BOX[3], TEXT_BOX[0]:TEXT_BOX[2]].astype(int)
        assert (np.abs(corner - TEXT_RGB).sum(axis=-1) < 60).sum() >= 20 and str(scene.number) == entry["answers"][0]


def test_sample_root_builds_once_then_reuses_and_rebuilds_when_altered(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "gcgbench" / "sample-v1"
    target = tmp_path / "cache" / "sample-v1"
    assert sample_root(target, n_images=3) == target and is_complete_sample(target, 3)
    marker = target / MARKER_NAME
    built_at = marker.stat().st_mtime_ns
    assert sample_root(target, n_images=3) == target and marker.stat().st_mtime_ns == built_at
    next(target.rglob("*.jpg")).unlink()
    assert not is_complete_sample(target, 3)
    assert sample_root(target, n_images=3) == target and is_complete_sample(target, 3)
    assert sorted(p.name for p in target.parent.iterdir()) == ["sample-v1"]  # no staging left behind


def test_vqav2_test2015_holds_every_test_dev_question_and_more(root):
    folder = root / EVAL / "vqav2"
    test_dev = read_jsonl(folder / "llava_vqav2_mscoco_test-dev2015.jsonl")
    test_all = read_jsonl(folder / "llava_vqav2_mscoco_test2015.jsonl")
    assert {q["question_id"] for q in test_dev} < {q["question_id"] for q in test_all}
    assert all(set(line) == {"question_id", "image", "text"} for line in test_all)


def test_vizwiz_and_mme_files_have_llava_fields_and_mme_pairs(root):
    vizwiz = root / EVAL / "vizwiz"
    lines = read_jsonl(vizwiz / "llava_test.jsonl")
    assert [{"image": line["image"], "question": line["text"].split("\n")[0]} for line in lines] == \
        json.loads((vizwiz / "test.json").read_text())
    assert all(line["text"].endswith("respond with 'Unanswerable'.\nAnswer the question using a single word or phrase.")
               and (vizwiz / "test" / line["image"]).is_file() for line in lines)
    mme = root / EVAL / "MME"
    lines = read_jsonl(mme / "llava_mme.jsonl")
    per_image: dict[str, list[dict]] = {}
    for line in lines:
        assert set(line) == {"question_id", "image", "text", "category"}
        assert line["question_id"].split("/")[0] == line["category"] and "Please answer yes or no" not in line["text"]
        assert (mme / "MME_Benchmark_release_version" / line["image"]).is_file()
        per_image.setdefault(line["question_id"], []).append(line)
    assert {len(pair) for pair in per_image.values()} == {2}
    subtasks = {line["category"] for line in lines}
    assert {"existence", "count", "position", "color", "OCR", "scene", "numerical_calculation"} == subtasks
    for question_id in per_image:
        subtask, file_name = question_id.split("/")
        folder = mme / "MME_Benchmark_release_version" / subtask
        qa = folder / "questions_answers_YN" if subtask == "scene" else folder
        rows = [line.split("\t") for line in (qa / f"{file_name[:-4]}.txt").read_text().splitlines()]
        assert [answer for _, answer in rows] == ["Yes", "No"]
        assert all(q.endswith(" Please answer yes or no.") for q, _ in rows)


def test_mmbench_tsvs_have_circular_copies_with_rotated_options(root):
    import pandas as pd

    for split in ("dev", "test"):
        table = pd.read_table(root / EVAL / "mmbench" / f"mmbench_{split}_20230712.tsv")
        assert ("answer" in table.columns) == (split == "dev") and set(table["split"]) == {split}
        mains = table[table["index"] < 1_000_000].set_index("index")
        for _, row in table[table["index"] >= 1_000_000].iterrows():
            main = mains.loc[row["index"] % 1_000_000]
            rotation = row["index"] // 1_000_000
            options = [main[c] for c in "ABCD" if not pd.isna(main[c])]
            assert [row[c] for c in "ABCD"][:len(options)] == options[rotation:] + options[:rotation]
            if split == "dev":
                assert row[row["answer"]] == main[main["answer"]]
        assert table["D"].isna().any() and table["hint"].notna().any() and table["hint"].isna().any()
        Image.open(io.BytesIO(base64.b64decode(table["image"][0]))).verify()


def test_scienceqa_and_seed_files_have_the_upstream_fields(root):
    sqa = root / EVAL / "scienceqa"
    problems = json.loads((sqa / "problems.json").read_text())
    splits = json.loads((sqa / "pid_splits.json").read_text())
    converted = json.loads((sqa / "llava_test_CQM-A.json").read_text())
    assert [entry["id"] for entry in converted] == splits["test"]
    for entry in converted:
        problem = problems[entry["id"]]
        human, gpt = entry["conversations"]
        assert human["value"].startswith("Context: ") and "\nQuestion: " in human["value"]
        assert gpt["value"] == f"The answer is {'ABCDE'[problem['answer']]}."
        assert ("image" in entry) == (problem["image"] is not None) == human["value"].endswith("\n<image>")
        if "image" in entry:
            assert (sqa / "images" / "test" / entry["image"]).is_file()
    seed = root / EVAL / "seed_bench"
    annotations = json.loads((seed / "SEED-Bench.json").read_text())
    by_id = {q["question_id"]: q for q in annotations["questions"]}
    assert {q["data_type"] for q in by_id.values()} == {"image", "video"}
    for line in read_jsonl(seed / "llava-seed-bench.jsonl"):
        question = by_id[str(line["question_id"])]
        assert isinstance(question["question_id"], str) and isinstance(line["question_id"], int)
        assert line["text"].startswith(question["question"] + "\nA. " + question["choice_a"])
        assert question["answer"] in "ABCD" and (seed / line["image"]).is_file()
