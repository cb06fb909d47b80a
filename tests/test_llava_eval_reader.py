"""The LLaVA-1.5 evaluation layout, written by hand to the upstream formats (official VQA v2 files, LLaVA
question JSONL, GQA/TextVQA/POPE/MME/MMBench/ScienceQA/SEED ground truth, LLaVA answer lines, VQA results),
read back as Docs and Predictions; malformed input is one error naming the file and the record."""

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from gcgbench.api.errors import InputError
from gcgbench.data import llava_eval as le
from gcgbench.data import llava_eval_suites as les
from gcgbench.runner.run_dir import write_prediction_jsonl

SHORT = "\nAnswer the question using a single word or phrase."
CHOICE = "\nAnswer with the option's letter from the given choices directly."


def jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def dump(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def jpeg(height=6, width=10) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def answers_of(*texts):
    return [{"answer": text, "answer_confidence": "yes", "answer_id": i + 1} for i, text in enumerate(texts)]


# ---------------------------------------------------------------- VQAv2

def vqav2_files(tmp_path, annotations=None):
    questions = {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "license": {}, "data_subtype": "val2014",
                 "questions": [{"image_id": 42, "question": "What color is the cat?", "question_id": 42000},
                               {"image_id": 7, "question": "How many dogs?", "question_id": 7001}]}
    annotations = annotations or [
        {"question_type": "how many", "multiple_choice_answer": "2", "answers": answers_of(*["2"] * 9, "two"),
         "image_id": 7, "answer_type": "number", "question_id": 7001},
        {"question_type": "what color is the", "multiple_choice_answer": "black", "answers": answers_of(*["black"] * 10),
         "image_id": 42, "answer_type": "other", "question_id": 42000},
    ]
    return (dump(tmp_path / "q.json", questions),
            dump(tmp_path / "a.json", {"info": {}, "license": {}, "data_subtype": "val2014", "annotations": annotations}))


def test_vqav2_val_docs_join_questions_and_annotations(tmp_path):
    (tmp_path / "val2014").mkdir()
    (tmp_path / "val2014" / "COCO_val2014_000000000042.jpg").write_bytes(jpeg(6, 10))
    docs = le.read_vqav2_val(*vqav2_files(tmp_path), tmp_path / "val2014")
    assert [doc.doc_id for doc in docs] == ["42000", "7001"]  # questions-file order
    cat, dogs = docs
    assert cat.inputs == {"question": "What color is the cat?"}
    assert cat.image_path == str(tmp_path / "val2014" / "COCO_val2014_000000000042.jpg")
    assert (cat.height, cat.width) == (6, 10) and (dogs.height, dogs.width) == (0, 0)  # dogs' image is absent
    assert dogs.truth["answers"] == ["2"] * 9 + ["two"] and dogs.truth["answer_type"] == "number"
    assert dogs.truth["image_id"] == 7 and dogs.truth["multiple_choice_answer"] == "2"


@pytest.mark.parametrize("annotations,problem", [
    ([{"question_id": 7001, "image_id": 7, "answers": answers_of("2")}], "no annotation for question_id 42000"),
    ([{"question_id": 42000, "image_id": 42, "answers": answers_of("x")}, {"question_id": 7001, "image_id": 7, "answers": []}],
     "annotations[1]: 'answers' must be a non-empty list"),
    ([{"question_id": 42000, "image_id": 42, "answers": answers_of("x")}] * 2, "annotations[1]: question_id 42000 appears more"),
    ([{"question_id": 42000, "image_id": 43, "answers": answers_of("x")}, {"question_id": 7001, "image_id": 7, "answers": answers_of("2")}],
     "question_id 42000: image_id 43 differs"),
    ([{"question_id": q, "image_id": i, "answers": answers_of("x")} for q, i in ((42000, 42), (7001, 7), (5, 5))],
     "1 annotation(s) have no question"),
])
def test_vqav2_val_errors_name_file_and_record(tmp_path, annotations, problem):
    with pytest.raises(InputError, match=rf"a\.json.*{re.escape(problem)}"):
        le.read_vqav2_val(*vqav2_files(tmp_path, annotations), tmp_path)


def test_llava_question_files_strip_the_suffix_and_reject_repeats(tmp_path):
    path = jsonl(tmp_path / "llava_vqav2_mscoco_test-dev2015.jsonl", [
        {"question_id": 11, "image": "COCO_test2015_000000000001.jpg", "text": "Is it red?" + SHORT},
        {"question_id": 12, "image": "COCO_test2015_000000000001.jpg", "text": "No suffix here?"}])
    docs = le.read_llava_questions(path, tmp_path, SHORT, "test-dev", {"upload_questions": "all.jsonl"})
    assert [d.inputs["question"] for d in docs] == ["Is it red?", "No suffix here?"]
    assert docs[0].truth == {"image_id": "COCO_test2015_000000000001.jpg", "image": "COCO_test2015_000000000001.jpg",
                             "question_id": 11, "llava_key": "11", "upload_questions": "all.jsonl"}
    jsonl(path, [{"question_id": 11, "image": "a.jpg", "text": "q"}, {"question_id": 11, "image": "b.jpg", "text": "q"}])
    with pytest.raises(InputError, match=r"test-dev2015\.jsonl: line 2: question id '11' appears more than once"):
        le.read_llava_questions(path, tmp_path, SHORT, "test-dev")
    jsonl(path, [{"question_id": 11, "image": "a.jpg"}])
    with pytest.raises(InputError, match=r"line 1: missing 'text'"):
        le.read_llava_questions(path, tmp_path, SHORT, "test-dev")


# ---------------------------------------------------------------- GQA, TextVQA, POPE

def test_gqa_reads_types_and_requires_every_balanced_question(tmp_path):
    gt = {"201": {"question": "Is the cup red?", "imageId": "n1", "answer": "yes", "fullAnswer": "Yes.", "isBalanced": True,
                  "types": {"structural": "verify", "semantic": "attr", "detailed": "verifyAttr"}},
          "202": {"question": "What is it?", "imageId": "n1", "answer": "cup", "isBalanced": False, "types": {}}}
    gt_path = dump(tmp_path / "testdev_balanced_questions.json", gt)
    questions = jsonl(tmp_path / "llava_gqa.jsonl", [{"question_id": "201", "image": "n1.jpg", "text": "Is the cup red?" + SHORT}])
    (doc,) = le.read_gqa(questions, gt_path, tmp_path, SHORT)
    assert doc.doc_id == "201" and doc.truth["structural"] == "verify" and doc.truth["image_id"] == "n1"
    jsonl(questions, [{"question_id": "999", "image": "n1.jpg", "text": "?"}])
    with pytest.raises(InputError, match=r"testdev_balanced_questions\.json: no question '999' \(asked in llava_gqa\.jsonl line 1\)"):
        le.read_gqa(questions, gt_path, tmp_path, SHORT)
    jsonl(questions, [{"question_id": "202", "image": "n1.jpg", "text": "?"}])
    with pytest.raises(InputError, match=r"1 balanced question\(s\) .* are not asked \(first: '201'\)"):
        le.read_gqa(questions, gt_path, tmp_path, SHORT)


def test_textvqa_matches_questions_by_image_and_prompt_as_eval_textvqa(tmp_path):
    data = [{"question": "What brand is this?", "image_id": "abc", "answers": ["nike"] * 10, "question_id": 5,
             "image_width": 30, "image_height": 20},
            {"question": "What number is on it?", "image_id": "abc", "answers": ["7"] * 10, "question_id": 6}]
    gt_path = dump(tmp_path / "TextVQA_0.5.1_val.json", {"dataset_version": "0.5.1", "data": data})
    questions = jsonl(tmp_path / "llava_textvqa.jsonl", [  # LLaVA uses the image id as question_id: not unique
        {"question_id": "abc", "image": "abc.jpg", "text": "What number is on it?\nReference OCR token: 7, 8" + SHORT},
        {"question_id": "abc", "image": "abc.jpg", "text": "OCR tokens: nike Question: What brand is this? Short answer:"}])
    docs = le.read_textvqa(questions, gt_path, tmp_path, SHORT)
    assert [d.doc_id for d in docs] == ["6", "5"]
    assert docs[0].inputs["question"] == "What number is on it?\nReference OCR token: 7, 8"
    assert (docs[1].height, docs[1].width) == (20, 30)  # TextVQA records the image size
    assert docs[0].truth["llava_key"] == le.textvqa_key("abc", docs[0].inputs["question"] + SHORT)
    answers = jsonl(tmp_path / "answers.jsonl", [
        {"question_id": "abc", "prompt": "OCR tokens: nike Question: What brand is this? Short answer:", "text": "Nike"},
        {"question_id": "abc", "prompt": "What number is on it?\nReference OCR token: 7, 8" + SHORT, "text": "7"}])
    found = le.read_vqa_predictions(answers, docs, "textvqa_val", lambda row: le.textvqa_key(row["question_id"], row["prompt"]))
    assert {k: v.text for k, v in found.items()} == {"5": "Nike", "6": "7"}
    jsonl(questions, [{"question_id": "abc", "image": "abc.jpg", "text": "one\ntwo\nthree\nfour"}])
    with pytest.raises(InputError, match=r"llava_textvqa\.jsonl: line 1: text: not one of the prompt forms"):
        le.read_textvqa(questions, gt_path, tmp_path, SHORT)


def pope_files(tmp_path, labels=None):
    labels = labels or [{"question_id": 1, "image": "COCO_val2014_1.jpg", "text": "Is there a cat in the image?", "label": "yes"},
                        {"question_id": 2, "image": "COCO_val2014_1.jpg", "text": "Is there a dog in the image?", "label": "no"}]
    label_path = jsonl(tmp_path / "coco" / "coco_pope_random.json", labels)
    questions = jsonl(tmp_path / "llava_pope_test.jsonl", [
        {"question_id": 100 + i, "image": label["image"], "text": label["text"] + SHORT, "category": "random"}
        for i, label in enumerate([{"image": "COCO_val2014_1.jpg", "text": "Is there a cat in the image?"},
                                   {"image": "COCO_val2014_1.jpg", "text": "Is there a dog in the image?"}])])
    return questions, {"random": label_path}


def test_pope_pairs_labels_by_order_within_a_category(tmp_path):
    docs = le.read_pope(*pope_files(tmp_path), tmp_path, SHORT)
    assert [(d.doc_id, d.truth["label"], d.truth["category"]) for d in docs] == [("100", "yes", "random"), ("101", "no", "random")]
    swapped = [{"question_id": 2, "image": "COCO_val2014_1.jpg", "text": "Is there a dog in the image?", "label": "no"},
               {"question_id": 1, "image": "COCO_val2014_1.jpg", "text": "Is there a cat in the image?", "label": "yes"}]
    with pytest.raises(InputError, match=r"coco_pope_random\.json: line 1: pairs by order with llava_pope_test\.jsonl line 1"):
        le.read_pope(*pope_files(tmp_path, swapped), tmp_path, SHORT)
    questions, labels = pope_files(tmp_path, swapped[:1] * 3)
    with pytest.raises(InputError, match="pairs by order"):
        le.read_pope(questions, labels, tmp_path, SHORT)
    questions, _ = pope_files(tmp_path)
    with pytest.raises(InputError, match=r"line 1: category 'random' has no label file in this task"):
        le.read_pope(questions, {"popular": tmp_path / "coco" / "coco_pope_random.json"}, tmp_path, SHORT)


# ---------------------------------------------------------------- MME

def mme_files(tmp_path):
    bench = tmp_path / "MME_Benchmark_release_version"
    (bench / "count").mkdir(parents=True)
    (bench / "count" / "001.txt").write_text("Are there two dogs? Please answer yes or no.\tYes\n"
                                            "Are there three dogs? Please answer yes or no.\tNo\n")
    (bench / "artwork" / "images").mkdir(parents=True)
    (bench / "artwork" / "questions_answers_YN").mkdir()
    (bench / "artwork" / "questions_answers_YN" / "10002.txt").write_text(
        "Is this artwork created by Monet?  Please answer yes or no.\tNo\n"
        "Is this artwork created by Manet?  Please answer yes or no.\tYes\n")
    lines = [{"question_id": "count/001.jpg", "image": "count/001.jpg", "text": "Are there two dogs?" + SHORT, "category": "count"},
             {"question_id": "count/001.jpg", "image": "count/001.jpg", "text": "Are there three dogs?" + SHORT, "category": "count"},
             {"question_id": "artwork/10002.jpg", "image": "artwork/images/10002.jpg",
              "text": "Is this artwork created by Monet?" + SHORT, "category": "artwork"},
             {"question_id": "artwork/10002.jpg", "image": "artwork/images/10002.jpg",
              "text": "Is this artwork created by Manet?" + SHORT, "category": "artwork"}]
    return jsonl(tmp_path / "llava_mme.jsonl", lines), bench


def test_mme_finds_answers_in_both_layouts_and_the_two_space_variant(tmp_path):
    questions, bench = mme_files(tmp_path)
    docs = les.read_mme(questions, bench, SHORT)
    assert [d.doc_id for d in docs] == ["count/001.jpg#1", "count/001.jpg#2", "artwork/10002.jpg#1", "artwork/10002.jpg#2"]
    assert [d.truth["answer"] for d in docs] == ["Yes", "No", "No", "Yes"]
    assert docs[2].image_path == str(bench / "artwork/images/10002.jpg") and docs[2].truth["subtask"] == "artwork"
    assert docs[0].inputs == {"question": "Are there two dogs?", "category": "count"}


def test_mme_errors(tmp_path):
    questions, bench = mme_files(tmp_path)
    rows = [json.loads(line) for line in questions.read_text().splitlines()]
    jsonl(questions, rows[:3])
    with pytest.raises(InputError, match=r"llava_mme\.jsonl: MME asks exactly two questions per image; 'artwork/10002\.jpg' has 1"):
        les.read_mme(questions, bench, SHORT)
    jsonl(questions, [{**rows[0], "text": "Are there four dogs?" + SHORT}])
    with pytest.raises(InputError, match=r"001\.txt: no line for 'Are there four dogs\? Please answer yes or no\.' \(llava_mme\.jsonl line 1\)"):
        les.read_mme(questions, bench, SHORT)
    jsonl(questions, [{**rows[0], "question_id": "count/009.jpg"}])
    with pytest.raises(InputError, match=r"count/009\.txt: MME ground-truth file not found"):
        les.read_mme(questions, bench, SHORT)


# ---------------------------------------------------------------- MMBench

MMBENCH_HEADER = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source", "l2-category",
                  "comment", "split"]


def mmbench_tsv(path: Path, rows, header=MMBENCH_HEADER) -> Path:
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(str(row.get(c, "")) for c in header) for row in rows]) + "\n")
    return path


def test_mmbench_rows_options_hints_and_circular_image_references(tmp_path):
    image = base64.b64encode(jpeg(6, 10)).decode()
    rows = [{"index": 0, "question": "Which color?", "hint": "Look closely.", "A": "red", "B": "blue", "C": "None",
             "answer": "A", "category": "attribute_recognition", "image": image, "l2-category": "finegrained", "split": "dev"},
            {"index": 1000000, "question": "Which color?", "hint": "Look closely.", "A": "blue", "B": "red", "answer": "B",
             "category": "attribute_recognition", "image": "0", "split": "dev"}]  # VLMEvalKit: the image of row 0
    docs = les.read_mmbench(mmbench_tsv(tmp_path / "mmbench_dev.tsv", rows), tmp_path / "cache")
    main, copy = docs
    assert main.inputs == {"question": "Look closely.\nWhich color?\nA. red\nB. blue", "options": {"A": "red", "B": "blue"},
                           "category": "attribute_recognition"}
    assert copy.doc_id == "1000000" and copy.truth["answer"] == "B" and copy.truth["image_id"] == main.truth["image_id"]
    assert main.image_path == copy.image_path and Path(main.image_path).read_bytes() == jpeg(6, 10)
    assert (main.height, main.width) == (6, 10)
    assert main.truth["upload_row"] == {"index": 0, "question": "Which color?", "A": "red", "B": "blue", "C": None, "D": None,
                                        "answer": "A", "split": "dev"}
    test_header = [c for c in MMBENCH_HEADER if c != "answer"]
    (test_doc,) = les.read_mmbench(mmbench_tsv(tmp_path / "test.tsv", rows[:1], test_header), tmp_path / "cache")
    assert test_doc.truth["answer"] is None and "answer" not in test_doc.truth["upload_row"]


@pytest.mark.parametrize("change,problem", [
    ({"answer": "C"}, r"row 2: answer 'C' is not one of the options \['A', 'B'\]"),
    ({"index": "x1"}, r"row 2: 'index' must be an integer"),
    ({"image": "12"}, r"row 2: 'image' must be a base64 image"),
])
def test_mmbench_errors(tmp_path, change, problem):
    row = {"index": 0, "question": "Q?", "A": "a", "B": "b", "answer": "A", "image": base64.b64encode(jpeg()).decode(), **change}
    with pytest.raises(InputError, match=rf"m\.tsv: {problem}"):
        les.read_mmbench(mmbench_tsv(tmp_path / "m.tsv", [row]), tmp_path / "cache")


# ---------------------------------------------------------------- ScienceQA, SEED

def scienceqa_files(tmp_path, extra_test=()):
    problems = {"5": {"question": "Which is red?", "choices": ["apple", "sky", "grass"], "answer": 0, "hint": "",
                      "image": "image.png", "split": "test"},
                "6": {"question": "Which is a mammal?", "choices": ["cat", "fish"], "answer": 0, "hint": "", "image": None,
                      "split": "test"}}
    converted = [{"id": "5", "image": "5/image.png", "conversations": [
                     {"from": "human", "value": "Context: N/A\nQuestion: Which is red?\nOptions: (A) apple (B) sky (C) grass\n<image>"},
                     {"from": "gpt", "value": "The answer is A."}]},
                 {"id": "6", "conversations": [{"from": "human", "value": "Context: N/A\nQuestion: Which is a mammal?"},
                                               {"from": "gpt", "value": "The answer is A."}]}]
    return (dump(tmp_path / "llava_test_CQM-A.json", converted), dump(tmp_path / "problems.json", problems),
            dump(tmp_path / "pid_splits.json", {"test": ["5", "6", *extra_test], "val": []}))


def test_scienceqa_keeps_the_image_problems_of_the_split(tmp_path):
    (doc,) = les.read_scienceqa(*scienceqa_files(tmp_path), tmp_path / "images", CHOICE)
    assert doc.doc_id == "5" and doc.image_path == str(tmp_path / "images" / "5" / "image.png")
    assert doc.inputs == {"question": "Context: N/A\nQuestion: Which is red?\nOptions: (A) apple (B) sky (C) grass",
                          "options": {"A": "apple", "B": "sky", "C": "grass"}}
    assert doc.truth["answer"] == 0 and doc.truth["num_choices"] == 3
    questions, problems, _ = scienceqa_files(tmp_path)
    dump(problems, {**json.loads(problems.read_text()), "7": {"choices": ["a", "b"], "answer": 1, "image": "image.png"}})
    with pytest.raises(InputError, match=r"1 image problem\(s\) of the test split are not asked \(first: '7'\)"):
        les.read_scienceqa(questions, problems, dump(tmp_path / "s.json", {"test": ["5", "7"]}), tmp_path, CHOICE)
    with pytest.raises(InputError, match=r"s\.json: test: has no problem '5'"):
        les.read_scienceqa(questions, problems, dump(tmp_path / "s.json", {"test": []}), tmp_path, CHOICE)


def test_seed_keeps_image_questions_and_matches_string_and_int_ids(tmp_path):
    gt = {"question_type": {"Instances Counting": 5, "Action Recognition": 10}, "questions": [
        {"answer": "B", "choice_a": "One", "choice_b": "Two", "choice_c": "Three", "choice_d": "Four", "data_id": "1454_25",
         "data_type": "image", "question": "How many towels?", "question_id": "101669", "question_type_id": 5},
        {"answer": "A", "choice_a": "run", "choice_b": "sit", "choice_c": "eat", "choice_d": "fly", "data_id": "v.mp4",
         "data_type": "video", "question": "What happens?", "question_id": "v7", "question_type_id": 10}]}
    gt_path = dump(tmp_path / "SEED-Bench.json", gt)
    text = "How many towels?\nA. One\nB. Two\nC. Three\nD. Four" + CHOICE
    questions = jsonl(tmp_path / "llava-seed-bench.jsonl", [
        {"image": "SEED-Bench-image/1454_25", "text": text, "category": "Instances Counting", "question_id": 101669},
        {"image": "SEED-Bench-video-image/v7.png", "text": "What happens?" + CHOICE, "question_id": "v7"}])
    (doc,) = les.read_seed(questions, gt_path, tmp_path, CHOICE)
    assert doc.doc_id == "101669" and doc.truth["question_type"] == "Instances Counting" and doc.truth["answer"] == "B"
    assert doc.inputs["options"] == {"A": "One", "B": "Two", "C": "Three", "D": "Four"}
    assert doc.inputs["category"] == "Instances Counting"
    assert doc.image_path == str(tmp_path / "SEED-Bench-image/1454_25")
    jsonl(questions, [{"image": "x", "text": "?", "question_id": "v7"}])
    with pytest.raises(InputError, match=r"1 image question\(s\) of SEED-Bench\.json are not asked \(first: '101669'\)"):
        les.read_seed(questions, gt_path, tmp_path, CHOICE)


# ---------------------------------------------------------------- predictions

@pytest.fixture
def vqav2_docs(tmp_path):
    return le.read_vqav2_val(*vqav2_files(tmp_path), tmp_path)


def test_llava_answers_official_results_and_gcgbench_jsonl_are_all_read(tmp_path, vqav2_docs):
    llava = jsonl(tmp_path / "merge.jsonl", [
        {"question_id": 7001, "prompt": "How many dogs?" + SHORT, "text": "Two", "answer_id": "x", "model_id": "m", "metadata": {}},
        {"question_id": 42000, "prompt": "p", "text": "Black.", "answer_id": "y", "model_id": "m", "metadata": {}}])
    found = le.read_vqa_predictions(llava, vqav2_docs, "vqav2_val")
    assert {k: (v.text, v.extras["format"]) for k, v in found.items()} == {"7001": ("Two", "llava_answers"),
                                                                          "42000": ("Black.", "llava_answers")}
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"question_id": 42000, "answer": "black"}, {"question_id": 7001, "answer": "2"}], indent=1))
    found = le.read_vqa_predictions(results, vqav2_docs, "vqav2_val")
    assert found["7001"].text == "2" and found["7001"].extras == {"format": "vqa_results"}
    write_prediction_jsonl(tmp_path / "run" / "predictions" / "vqav2_val.jsonl", list(found.values()))
    assert le.read_vqa_predictions(tmp_path / "run", vqav2_docs, "vqav2_val") == found


@pytest.mark.parametrize("rows,problem", [
    ([{"question_id": 7001, "text": "2"}, {"question_id": 42000, "text": "x"}, {"question_id": 5, "text": "x"}],
     r"line 3: question_id 5 is not a question of this task"),
    ([{"question_id": 7001, "text": "2"}, {"question_id": 7001, "text": "x"}], r"line 2: second answer for question_id 7001"),
    ([{"question_id": 7001, "answer": "2"}], r"line 1: missing 'text' \(the answer\)"),
    ([{"question_id": 7001, "text": "2"}], r"1 of 2 questions have no answer \(first: '42000'\)"),
    ([{"question_id": 7001, "text": 2}, {"question_id": 42000, "text": "x"}], r"line 1: the answer must be a string"),
])
def test_llava_answer_errors(tmp_path, vqav2_docs, rows, problem):
    with pytest.raises(InputError, match=rf"answers\.jsonl: {problem}"):
        le.read_vqa_predictions(jsonl(tmp_path / "answers.jsonl", rows), vqav2_docs, "vqav2_val")


@pytest.mark.parametrize("data,problem", [
    ([{"question_id": 7001, "answer": "2"}, {"question_id": 42000}], r"\[1\]: missing 'answer'"),
    ([{"question_id": 7001, "answer": "2"}, {"question_id": 7001, "answer": "2"}], r"\[1\]: second answer for question '7001'"),
    ([{"question_id": 1, "answer": "2"}], r"\[0\]: question '1' is not a question of this task"),
])
def test_vqa_results_errors(tmp_path, vqav2_docs, data, problem):
    with pytest.raises(InputError, match=rf"results\.json: {problem}"):
        le.read_vqa_predictions(dump(tmp_path / "results.json", data), vqav2_docs, "vqav2_val")


def test_mme_answers_match_by_question_id_and_prompt(tmp_path):
    docs = les.read_mme(*mme_files(tmp_path), SHORT)
    rows = [{"question_id": d.truth["image_id"], "prompt": d.inputs["question"] + SHORT, "text": d.truth["answer"]}
            for d in reversed(docs)]
    found = le.read_vqa_predictions(jsonl(tmp_path / "a.jsonl", rows), docs, "mme",
                                    lambda row: les.mme_key(row["question_id"], row["prompt"]))
    assert {k: v.text for k, v in found.items()} == {d.doc_id: d.truth["answer"] for d in docs}


def test_textvqa_question_asked_twice_on_one_image_pairs_with_its_annotations_in_order(tmp_path):
    data = [{"question": "What is written?", "image_id": "img", "answers": [answer] * 10, "question_id": number}
            for number, answer in ((1, "stop"), (2, "go"))]
    gt_path = dump(tmp_path / "gt.json", {"data": data})
    line = {"question_id": "img", "image": "img.jpg", "text": "What is written?\nReference OCR token: stop" + SHORT}
    docs = le.read_textvqa(jsonl(tmp_path / "q.jsonl", [line, line]), gt_path, tmp_path, SHORT)
    assert [(d.doc_id, d.truth["answers"][0]) for d in docs] == [("1", "stop"), ("2", "go")]
    key = lambda row: le.textvqa_key(row["question_id"], row["prompt"])  # noqa: E731
    rows = [{"question_id": "img", "prompt": line["text"], "text": text} for text in ("stop", "go")]
    found = le.read_vqa_predictions(jsonl(tmp_path / "a.jsonl", rows), docs, "textvqa_val", key)
    assert {k: v.text for k, v in found.items()} == {"1": "stop", "2": "go"}
    with pytest.raises(InputError, match=r"a\.jsonl: line 3: second answer for question_id 'img'"):
        le.read_vqa_predictions(jsonl(tmp_path / "a.jsonl", rows + rows[:1]), docs, "textvqa_val", key)
    with pytest.raises(InputError, match=r"gt\.json: no further question for image 'img' reading 'what is written\?' "
                                         r"\(q\.jsonl line 3\)"):
        le.read_textvqa(jsonl(tmp_path / "q.jsonl", [line] * 3), gt_path, tmp_path, SHORT)
