"""PNG narratives, COCO panoptic json and panoptic PNGs written by hand to the upstream specification
(BCV-Uniandes/PNG README + data/pre_process.py, F-LMM flmm/datasets/png.py, panopticapi rgb2id), read
back as Docs; malformed input is one InputError naming the file and the record."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcgbench.api.errors import InputError
from gcgbench.data.png import locate_utterances, panoptic_ids, read_png_docs

# image 1 is 4x6; ids 5 (R only), 300 = 44 + 256·1 (G matters), 70000 = 112 + 256·17 + 256²·1 (B matters)
MAN, WOMAN, GRASS = 5, 300, 70000
ID_MAP = np.array([
    [5, 5, 5, 300, 300, 0],
    [5, 5, 5, 300, 300, 0],
    [70000] * 6,
    [70000] * 6,
])
RGB_OF = {0: (0, 0, 0), 5: (5, 0, 0), 300: (44, 1, 0), 70000: (112, 17, 1)}

NARRATIVES = [
    {"image_id": "1", "annotator_id": 7, "caption": "A man and a woman stand on the grass.",
     "segments": [
         {"utterance": "A man", "segment_ids": ["5"], "plural": False, "noun": True},
         {"utterance": "and", "segment_ids": [], "plural": False, "noun": False},
         {"utterance": "a woman", "segment_ids": [300], "plural": False, "noun": True},
         {"utterance": "stand on", "segment_ids": [], "plural": False, "noun": False},
         {"utterance": "the grass.", "segment_ids": ["70000"], "plural": False, "noun": True},
     ]},
    {"image_id": "1", "annotator_id": 8, "caption": "Two  people on grass .",
     "segments": [
         {"utterance": "Two people", "segment_ids": ["5", "300"], "plural": True, "noun": True},
         {"utterance": "on", "segment_ids": [], "plural": False, "noun": False},
         {"utterance": "grass", "segment_ids": ["70000"], "plural": False, "noun": True},
         {"utterance": ".", "segment_ids": [], "plural": False, "noun": False},
     ]},
    {"image_id": 2, "annotator_id": 7, "caption": "Nothing to see here.",
     "segments": [{"utterance": "Nothing to see here.", "segment_ids": [], "plural": False, "noun": False}]},
]


def panoptic_json():
    return {
        "info": {}, "licenses": [],
        "images": [
            {"id": 1, "file_name": "000000000001.jpg", "height": 4, "width": 6},
            {"id": 2, "file_name": "000000000002.jpg", "height": 2, "width": 3},
        ],
        "annotations": [
            {"image_id": 1, "file_name": "000000000001.png", "segments_info": [
                {"id": MAN, "category_id": 1, "iscrowd": 0, "bbox": [0, 0, 3, 2], "area": 6},
                {"id": WOMAN, "category_id": 1, "iscrowd": 0, "bbox": [3, 0, 2, 2], "area": 4},
                {"id": GRASS, "category_id": 184, "iscrowd": 0, "bbox": [0, 2, 6, 2], "area": 12},
            ]},
            {"image_id": 2, "file_name": "000000000002.png", "segments_info": [
                {"id": 9, "category_id": 184, "iscrowd": 0, "bbox": [0, 0, 3, 2], "area": 6},
            ]},
        ],
        "categories": [
            {"supercategory": "person", "isthing": 1, "id": 1, "name": "person"},
            {"supercategory": "plant", "isthing": 0, "id": 184, "name": "grass-merged"},
        ],
    }


def write_png(path: Path, id_map: np.ndarray) -> None:
    rgb = np.zeros(id_map.shape + (3,), dtype=np.uint8)
    for segment_id, color in RGB_OF.items():
        rgb[id_map == segment_id] = color
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, mode="RGB").save(path, format="PNG")


def write_fixture(root: Path, narratives=None, panoptic=None, id_map=ID_MAP) -> Path:
    """The F-LMM layout under `root`; returns root."""
    annotations = root / "coco/annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    (annotations / "png_coco_val2017.json").write_text(json.dumps(NARRATIVES if narratives is None else narratives))
    (annotations / "panoptic_val2017.json").write_text(json.dumps(panoptic_json() if panoptic is None else panoptic))
    write_png(annotations / "panoptic_val2017/000000000001.png", id_map)
    write_png(annotations / "panoptic_val2017/000000000002.png", np.zeros((2, 3), dtype=np.int64))
    return root


def fixture_paths(root: Path) -> tuple[Path, Path, Path, Path]:
    annotations = root / "coco/annotations"
    return (annotations / "png_coco_val2017.json", annotations / "panoptic_val2017.json",
            annotations / "panoptic_val2017", root / "coco/val2017")


def read(root: Path):
    return read_png_docs(*fixture_paths(root))


def test_rgb2id_uses_all_three_channels(tmp_path):
    write_png(tmp_path / "ids.png", ID_MAP)
    decoded = panoptic_ids(tmp_path / "ids.png")
    assert decoded.tolist() == ID_MAP.tolist()


def test_one_doc_per_narrative_in_file_order_with_annotator_ids_when_an_image_has_several(tmp_path):
    docs = read(write_fixture(tmp_path))
    assert [d.doc_id for d in docs] == ["1_7", "1_8", "2"]
    assert [d.truth["image_id"] for d in docs] == [1, 1, 2]
    assert [d.truth["narrative_index"] for d in docs] == [0, 1, 2]
    assert (docs[0].height, docs[0].width) == (4, 6)
    assert docs[0].image_path == str(tmp_path / "coco/val2017/000000000001.jpg")


def test_grounded_utterances_become_phrases_with_spans_in_the_caption(tmp_path):
    first = read(write_fixture(tmp_path))[0]
    caption = first.inputs["caption"]
    assert caption == "A man and a woman stand on the grass."
    assert [p.text for p in first.phrases] == ["A man", "a woman", "the grass."]
    assert [(p["start"], p["end"]) for p in first.inputs["phrases"]] == [(0, 5), (10, 17), (27, 37)]
    for phrase in first.inputs["phrases"]:
        assert caption[phrase["start"]:phrase["end"]] == phrase["text"]
    assert [p["utterance_index"] for p in first.truth["phrases"]] == [0, 2, 4]
    assert first.truth["caption_rebuilt"] is False


def test_requests_carry_every_utterance_verbatim_as_upstream_encodes_them(tmp_path):
    from gcgbench.tasks.registry import get_task

    docs = read(write_fixture(tmp_path))
    assert docs[1].inputs["utterances"] == ["Two people", "on", "grass", "."]   # ungrounded ones included
    assert [p["utterance"] for p in docs[1].inputs["phrases"]] == [0, 2]
    assert docs[2].inputs["utterances"] == ["Nothing to see here."] and docs[2].inputs["phrases"] == []
    request = get_task("png_val").requests(docs[0])
    assert request.inputs["utterances"] == [s["utterance"] for s in NARRATIVES[0]["segments"]]
    assert [p["utterance"] for p in request.inputs["phrases"]] == [0, 2, 4]


def test_masks_are_the_segments_and_plural_phrases_their_union(tmp_path):
    first, second, _ = read(write_fixture(tmp_path))
    assert first.phrases[0].masks[0].decode().tolist() == (ID_MAP == MAN).astype(int).tolist()
    assert first.phrases[1].masks[0].decode().tolist() == (ID_MAP == WOMAN).astype(int).tolist()
    assert first.phrases[2].masks[0].decode().tolist() == (ID_MAP == GRASS).astype(int).tolist()
    people = second.phrases[0].masks[0]
    assert people.size == (4, 6)
    assert people.decode().tolist() == np.isin(ID_MAP, [MAN, WOMAN]).astype(int).tolist()


def test_thing_and_plural_flags_per_segment(tmp_path):
    first, second, _ = read(write_fixture(tmp_path))
    assert [p["segment_is_thing"] for p in first.truth["phrases"]] == [[True], [True], [False]]
    assert [p["segment_ids"] for p in second.truth["phrases"]] == [[MAN, WOMAN], [GRASS]]
    assert [p["plural"] for p in second.truth["phrases"]] == [True, False]
    assert [p["segment_is_thing"] for p in second.truth["phrases"]] == [[True, True], [False]]


def test_narrative_without_grounded_phrase_is_a_doc_with_no_phrases(tmp_path):
    last = read(write_fixture(tmp_path))[2]
    assert last.doc_id == "2"
    assert last.phrases == () and last.inputs["phrases"] == [] and last.truth["phrases"] == []
    assert last.inputs["caption"] == "Nothing to see here."


def test_caption_is_rebuilt_from_utterances_when_they_cannot_be_located(tmp_path):
    narratives = json.loads(json.dumps(NARRATIVES[:1]))
    narratives[0]["caption"] = "Somebody else wrote this."
    doc = read(write_fixture(tmp_path, narratives=narratives))[0]
    assert doc.truth["caption_rebuilt"] is True
    assert doc.inputs["caption"] == "A man and a woman stand on the grass."
    assert doc.doc_id == "1"  # the image's only narrative


def test_locate_utterances_allows_only_whitespace_or_punctuation_between():
    assert locate_utterances("a cat , a dog", ["a cat", "a dog"]) == ("a cat , a dog", [(0, 5), (8, 13)], False)
    caption, spans, rebuilt = locate_utterances("a cat sat by a dog", ["a cat", "a dog"])
    assert rebuilt and caption == "a cat a dog" and spans == [(0, 5), (6, 11)]


def test_repeated_annotator_ids_fall_back_to_positions(tmp_path):
    narratives = json.loads(json.dumps(NARRATIVES[:2]))
    narratives[1]["annotator_id"] = 7
    assert [d.doc_id for d in read(write_fixture(tmp_path, narratives=narratives))] == ["1_n0", "1_n1"]


# ------------------------------------------------------------------------------------------ errors
def test_missing_files_name_the_file(tmp_path):
    with pytest.raises(InputError, match="png_coco_val2017.json: PNG narratives .* not found"):
        read(tmp_path)
    write_fixture(tmp_path)
    (tmp_path / "coco/annotations/panoptic_val2017/000000000001.png").unlink()
    with pytest.raises(InputError, match=r"000000000001\.png: panoptic PNG not found"):
        read(tmp_path)


def test_image_id_without_panoptic_annotation(tmp_path):
    narratives = json.loads(json.dumps(NARRATIVES))
    narratives[1]["image_id"] = "77"
    with pytest.raises(InputError, match=r"png_coco_val2017.json: \[1\]: image_id 77 has no panoptic annotation"):
        read(write_fixture(tmp_path, narratives=narratives))


def test_segment_id_not_in_segments_info(tmp_path):
    narratives = json.loads(json.dumps(NARRATIVES))
    narratives[0]["segments"][2]["segment_ids"] = ["301"]
    with pytest.raises(InputError, match=r"\[0\]\.segments\[2\]: segment id 301 is not in segments_info of image 1"):
        read(write_fixture(tmp_path, narratives=narratives))


def test_segment_id_absent_from_the_png(tmp_path):
    id_map = np.where(ID_MAP == WOMAN, 0, ID_MAP)
    with pytest.raises(InputError, match=r"000000000001\.png: segment id 300: not present in this panoptic PNG "
                                         r"\(referenced by png_coco_val2017.json \[0\]\.segments\[2\]\)"):
        read(write_fixture(tmp_path, id_map=id_map))


def test_png_size_must_match_the_image_entry(tmp_path):
    with pytest.raises(InputError, match=r"000000000001\.png: PNG size \[3, 6\] != image size \[4, 6\]"):
        read(write_fixture(tmp_path, id_map=ID_MAP[:3]))


@pytest.mark.parametrize("narratives, record, problem", [
    ({"image_id": "1"}, None, "expected a JSON list of narratives"),
    ([{"image_id": "x1", "caption": "", "segments": []}], r"\[0\]", "'image_id' must be an integer"),
    ([{"image_id": "1", "caption": 3, "segments": []}], r"\[0\]", "'caption' must be a string"),
    ([{"image_id": "1", "caption": "a", "segments": {}}], r"\[0\]", "'segments' missing or not a list"),
    ([{"image_id": "1", "caption": "a", "segments": [{"utterance": "a", "segment_ids": ["five"]}]}],
     r"\[0\]\.segments\[0\]", "'segment_ids' must be integers"),
    ([{"image_id": "1", "caption": "a", "segments": [{"utterance": "a", "segment_ids": ["5"], "noun": True}]}],
     r"\[0\]\.segments\[0\]", "a grounded segment needs a boolean 'plural'"),
])
def test_malformed_narratives(tmp_path, narratives, record, problem):
    expected = "png_coco_val2017.json: " + (record + ": " if record else "") + problem
    with pytest.raises(InputError, match=expected):
        read(write_fixture(tmp_path, narratives=narratives))


def test_malformed_panoptic_json(tmp_path):
    panoptic = panoptic_json()
    panoptic["annotations"][0]["segments_info"][2]["category_id"] = 999
    with pytest.raises(InputError, match=r"panoptic_val2017.json: annotations\[0\]\.segments_info\[2\]: category_id 999"):
        read(write_fixture(tmp_path, panoptic=panoptic))
    del panoptic["categories"]
    with pytest.raises(InputError, match="panoptic_val2017.json: categories: missing or not a list"):
        read(write_fixture(tmp_path, panoptic=panoptic))
