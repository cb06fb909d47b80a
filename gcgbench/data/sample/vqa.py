"""The VQA-style suites of the bundled sample, in LLaVA-1.5's evaluation layout (haotian-liu/LLaVA
docs/Evaluation.md, scripts/v1_5/eval/*.sh), under `playground/data/eval/`; read by
`gcgbench.data.llava_eval`. `write_llava_eval(eval_root, scenes)` writes every suite for the given scenes.

LLaVA question files are JSONL `{question_id, image, text}` whose text ends with LLaVA's prompt suffix:
SHORT_ANSWER_PROMPT for short answers, VIZWIZ_PROMPT for VizWiz, CHOICE_PROMPT for multiple choice.

    vqav2/v2_OpenEnded_mscoco_val2014_questions.json, vqav2/v2_mscoco_val2014_annotations.json,
        vqav2/val2014/COCO_val2014_<id>.jpg   official VQA v2 (GT-Vision-Lab/VQA vqaTools/vqa.py):
        questions[{image_id, question, question_id}], annotations[{question_type, multiple_choice_answer,
        answers ×10 [{answer, answer_confidence, answer_id}], image_id, answer_type, question_id}]
    vqav2/llava_vqav2_mscoco_test-dev2015.jsonl, vqav2/llava_vqav2_mscoco_test2015.jsonl (test-dev plus
        one test-std-only question per image, as test2015 ⊃ test-dev), vqav2/test2015/COCO_test2015_<id>.jpg
    pope/llava_pope_test.jsonl (+ category), pope/coco/coco_pope_{adversarial,popular,random}.json
        (JSONL {question_id, image, image_id, text, label}, AoiDragon/POPE output/coco; eval_pope.py
        pairs answers with labels by order within a category), pope/val2014/COCO_val2014_<id>.jpg
    gqa/llava_gqa_testdev_balanced.jsonl, gqa/data/testdev_balanced_questions.json ({qid: {question,
        imageId, answer, fullAnswer, isBalanced, types, semantic, semanticStr, groups, entailed,
        equivalent, annotations}}), gqa/data/images/n9….jpg
    textvqa/llava_textvqa_val_v051_ocr.jsonl (question_id = TextVQA image_id, text "question\\n
        Reference OCR token: …\\n<prompt>", eval_textvqa.py), textvqa/TextVQA_0.5.1_val.json ({dataset_type,
        dataset_name, dataset_version, data: [{question, image_id, image_classes, flickr_original_url,
        flickr_300k_url, image_width, image_height, answers ×10, question_tokens, question_id, set_name}]}),
        textvqa/train_images/<hex16>.jpg (these carry the printed number the question asks for)
    vizwiz/llava_test.jsonl, vizwiz/test.json ([{image, question}], VizWiz Annotations.zip),
        vizwiz/test/VizWiz_test_<8 digits>.jpg
    MME/llava_mme.jsonl ({question_id: "<subtask>/<file>", image, text (MME question without " Please
        answer yes or no." + SHORT_ANSWER_PROMPT), category}), MME/MME_Benchmark_release_version/<subtask>/
        <file> + <stem>.txt, or for `scene` images/<file> + questions_answers_YN/<stem>.txt: lines
        "question\\tYes|No", the Yes question first (numerical_calculation keeps MME's two-space variant)
    mmbench/mmbench_{dev,test}_20230712.tsv   columns index, question, hint, A, B, C, D, answer (dev only),
        category, image (base64 JPEG), source, l2-category, comment, split; main rows 0..n-1, then circular
        copies index + k·1_000_000 with the options rotated k places (a 3-option question leaves D empty)
    scienceqa/problems.json ({pid: {question, choices, answer, hint, image, task, grade, subject, topic,
        category, skill, lecture, solution, split}}), scienceqa/pid_splits.json, scienceqa/llava_test_CQM-A.json
        (LLaVA scripts/convert_sqa_to_llava.py, format CQM-A: [{id, image: "<pid>/image.png", conversations:
        [{from: human, value: "Context: …\\nQuestion: …\\nOptions: (A) … (B) …\\n<image>"}, {from: gpt,
        value: "The answer is B."}]}]; text-only problems have no image), scienceqa/images/test/<pid>/image.png
    seed_bench/SEED-Bench.json ({question_type: {name: id}, questions: [{answer, choice_a..choice_d, data_id,
        data_type, question, question_id (str), question_type_id}]}), seed_bench/llava-seed-bench.jsonl
        ({image, text, category, question_id (int)}), seed_bench/SEED-Bench-image/<data_id>, and one video
        question whose middle frame is seed_bench/SEED-Bench-video-image/<question_id>.png
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from gcgbench.data.sample.files import (
    INFO, LICENSES, PNG_SETTINGS, coco_image_id, encode_image, write_image, write_json, write_jsonl, write_text,
)
from gcgbench.data.sample.scenes import COLOR_NAMES, KINDS, Scene, human_answers

SHORT_ANSWER_PROMPT = "\nAnswer the question using a single word or phrase."
VIZWIZ_PROMPT = "\nWhen the provided information is insufficient, respond with 'Unanswerable'." + SHORT_ANSWER_PROMPT
CHOICE_PROMPT = "\nAnswer with the option's letter from the given choices directly."
POPE_CATEGORIES = ("adversarial", "popular", "random")
LETTERS = "ABCD"
CIRCULAR_OFFSET = 1_000_000


def gqa_image_id(scene: Scene) -> str:
    return f"n{900_000 + scene.index}"


def textvqa_image_id(scene: Scene) -> str:
    return hashlib.sha1(f"gcgbench-sample-{scene.index}".encode()).hexdigest()[:16]


def seed_data_id(scene: Scene) -> str:
    return f"{9_000_000 + scene.index}_{20240611 + scene.index}"


def write_llava_eval(eval_root: Path, scenes: list[Scene]) -> None:
    """Every suite under `eval_root` (`playground/data/eval`), for `scenes`."""
    _write_vqav2(eval_root / "vqav2", scenes)
    _write_pope(eval_root / "pope", scenes)
    _write_gqa(eval_root / "gqa", scenes)
    _write_textvqa(eval_root / "textvqa", scenes)
    _write_vizwiz(eval_root / "vizwiz", scenes)
    _write_mme(eval_root / "MME", scenes)
    for split in ("dev", "test"):
        _write_mmbench(eval_root / "mmbench" / f"mmbench_{split}_20230712.tsv", scenes, split)
    _write_scienceqa(eval_root / "scienceqa", scenes)
    _write_seed(eval_root / "seed_bench", scenes)


def _capitalised(text: str) -> str:
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------- open-ended suites

def _write_vqav2(folder: Path, scenes: list[Scene]) -> None:
    questions, annotations, test_dev, test_all = [], [], [], []
    for scene in scenes:
        image_id = coco_image_id(scene)
        asked = scene.questions()
        test_image = f"COCO_test2015_{image_id:012d}.jpg"
        lines = []
        for number, key in enumerate(k for k in ("count", "color", "presence") if k in asked):
            question, question_id = asked[key], image_id * 1000 + number
            text = _capitalised(question.text)
            answers = human_answers(question)
            questions.append({"image_id": image_id, "question": text, "question_id": question_id})
            annotations.append({
                "question_type": question.question_type,
                "multiple_choice_answer": max(answers, key=answers.count),
                "answers": [{"answer": a, "answer_confidence": "yes" if a == question.answer else "maybe",
                             "answer_id": i + 1} for i, a in enumerate(answers)],
                "image_id": image_id, "answer_type": question.answer_type, "question_id": question_id,
            })
            lines.append({"question_id": question_id, "image": test_image, "text": text + SHORT_ANSWER_PROMPT})
        test_dev += lines
        test_all += lines + [{"question_id": image_id * 1000 + 9, "image": test_image,
                              "text": "What color is the background?" + SHORT_ANSWER_PROMPT}]
        image = scene.render()
        write_image(folder / "val2014" / f"COCO_val2014_{image_id:012d}.jpg", image)
        write_image(folder / "test2015" / test_image, image)
    header = {"info": INFO, "license": LICENSES[0], "data_subtype": "val2014", "data_type": "mscoco"}
    write_json(folder / "v2_OpenEnded_mscoco_val2014_questions.json",
               {**header, "task_type": "Open-Ended", "questions": questions})
    write_json(folder / "v2_mscoco_val2014_annotations.json", {**header, "annotations": annotations})
    write_jsonl(folder / "llava_vqav2_mscoco_test-dev2015.jsonl", test_dev)
    write_jsonl(folder / "llava_vqav2_mscoco_test2015.jsonl", test_all)


def _write_pope(folder: Path, scenes: list[Scene]) -> None:
    frequency: dict[tuple[str, str], int] = {}
    for shape in (shape for scene in scenes for shape in scene.shapes):
        frequency[(shape.color, shape.kind)] = frequency.get((shape.color, shape.kind), 0) + 1
    llava_lines = []
    for category in POPE_CATEGORIES:
        labels = []
        for scene in scenes:
            image_id = coco_image_id(scene)
            image = f"COCO_val2014_{image_id:012d}.jpg"
            pairs = [((scene.shapes[0].color, scene.shapes[0].kind), "yes"),
                     (scene.pope_negative(category, frequency), "no")]
            for (color, kind), label in (pairs if scene.index % 2 == 0 else pairs[::-1]):
                text = f"Is there a {color} {kind} in the image?"
                labels.append({"question_id": len(labels), "image": image, "image_id": image_id, "text": text,
                               "label": label})
                llava_lines.append({"question_id": len(llava_lines), "image": image,
                                    "text": text + SHORT_ANSWER_PROMPT, "category": category})
        write_jsonl(folder / "coco" / f"coco_pope_{category}.json", labels)
    for scene in scenes:
        write_image(folder / "val2014" / f"COCO_val2014_{coco_image_id(scene):012d}.jpg", scene.render())
    write_jsonl(folder / "llava_pope_test.jsonl", llava_lines)


GQA_TYPES = {
    "color": {"detailed": "objColor", "semantic": "attr", "structural": "query"},
    "relation": {"detailed": "relVerify", "semantic": "rel", "structural": "verify"},
    "side": {"detailed": "positionQuery", "semantic": "attr", "structural": "query"},
}


def _write_gqa(folder: Path, scenes: list[Scene]) -> None:
    questions: dict[str, dict[str, Any]] = {}
    llava_lines = []
    for scene in scenes:
        image_id = gqa_image_id(scene)
        asked = scene.questions()
        for number, key in enumerate(k for k in GQA_TYPES if k in asked):
            question, question_id = asked[key], str(9_000_000 + scene.index * 10 + number)
            text = _capitalised(question.text)
            subject = text.rstrip("?").split(" the ", 1)[-1]
            semantic = [{"operation": "select", "dependencies": [], "argument": f"{subject} (0)"},
                        {"operation": "verify rel" if key == "relation" else "query", "dependencies": [0],
                         "argument": key}]
            questions[question_id] = {
                "semantic": semantic, "entailed": [], "equivalent": [question_id], "question": text,
                "imageId": image_id, "isBalanced": True, "groups": {"global": None, "local": f"{key}-{subject}"},
                "answer": question.answer,
                "semanticStr": f"select: {subject} (0)->{semantic[1]['operation']}: {key} [0]",
                "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
                "types": GQA_TYPES[key], "fullAnswer": question.full_answer,
            }
            llava_lines.append({"question_id": question_id, "image": f"{image_id}.jpg",
                                "text": text + SHORT_ANSWER_PROMPT})
        write_image(folder / "data" / "images" / f"{image_id}.jpg", scene.render())
    write_json(folder / "data" / "testdev_balanced_questions.json", questions)
    write_jsonl(folder / "llava_gqa_testdev_balanced.jsonl", llava_lines)


def _write_textvqa(folder: Path, scenes: list[Scene]) -> None:
    data, llava_lines = [], []
    for scene in scenes:
        image_id = textvqa_image_id(scene)
        question = scene.questions()["number"]
        answers = [question.answer] * 9 + [question.answer + "."]
        data.append({
            "question": question.text, "image_id": image_id, "image_classes": ["Poster"],
            "flickr_original_url": "", "flickr_300k_url": "", "image_width": scene.width,
            "image_height": scene.height, "answers": answers,
            "question_tokens": question.text.rstrip("?").split(), "question_id": 90_000 + scene.index,
            "set_name": "val",
        })
        llava_lines.append({"question_id": image_id, "image": f"{image_id}.jpg",
                            "text": f"{question.text}\nReference OCR token: {question.answer}{SHORT_ANSWER_PROMPT}"})
        write_image(folder / "train_images" / f"{image_id}.jpg", scene.render(with_number=True))
    write_json(folder / "TextVQA_0.5.1_val.json",
               {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1", "data": data})
    write_jsonl(folder / "llava_textvqa_val_v051_ocr.jsonl", llava_lines)


def _write_vizwiz(folder: Path, scenes: list[Scene]) -> None:
    official, llava_lines = [], []
    for scene in scenes:
        image = f"VizWiz_test_{scene.index:08d}.jpg"
        # every third photo is "unanswerable": the question asks about something the picture lacks
        text = "What is written on the label?" if scene.index % 3 == 2 else _capitalised(scene.questions()["count"].text)
        official.append({"image": image, "question": text})
        llava_lines.append({"question_id": scene.index, "image": image, "text": text + VIZWIZ_PROMPT})
        write_image(folder / "test" / image, scene.render())
    write_json(folder / "test.json", official)
    write_jsonl(folder / "llava_test.jsonl", llava_lines)


# ---------------------------------------------------------------- MME (yes/no pairs)

def _mme_pairs(scene: Scene) -> dict[str, tuple[str, str]]:
    """MME subtask -> (question whose answer is Yes, question whose answer is No), without the suffix."""
    asked, first, count = scene.questions(), scene.shapes[0], len(scene.shapes)
    absent_color, absent_kind = scene.absent_objects()[0]
    pairs = {
        "existence": (f"Is there a {first.name} in this image?", f"Is there a {absent_color} {absent_kind} in this image?"),
        "count": (f"Is the number of shapes in the image {count}?", f"Is the number of shapes in the image {count + 1}?"),
        "OCR": (f"Is the number {scene.number} written in the corner of the image?",
                f"Is the number {scene.number + 1} written in the corner of the image?"),
        "numerical_calculation": (f"Is the number in the corner plus 1 equal to {scene.number + 1}?",
                                  f"Is the number in the corner plus 1 equal to {scene.number + 2}?"),
        "scene": (f"Does this image have a {scene.background_name} background?",
                  "Does this image have a black background?"),
    }
    if "color" in asked:
        kind, color = asked["color"].text.split()[-1].rstrip("?"), asked["color"].answer
        other = next(c for c in COLOR_NAMES if c != color)
        pairs["color"] = (f"Is the {kind} in the image {color}?", f"Is the {kind} in the image {other}?")
    singular = [group for group in scene.groups() if not group.plural]
    if len(singular) >= 2:  # groups run left to right, so the first is left of the second
        left, right = (scene.shapes[group.members[0]].name for group in singular[:2])
        pairs["position"] = (f"Is the {left} on the left of the {right}?", f"Is the {left} on the right of the {right}?")
    return pairs


MME_IMAGES_LAYOUT = ("scene",)  # MME keeps these subtasks as images/ + questions_answers_YN/


def _write_mme(folder: Path, scenes: list[Scene]) -> None:
    benchmark = folder / "MME_Benchmark_release_version"
    lines: list[tuple[str, dict[str, Any]]] = []
    for scene in scenes:
        for subtask, (yes, no) in _mme_pairs(scene).items():
            file_name = f"{coco_image_id(scene):012d}.jpg"
            layout = subtask in MME_IMAGES_LAYOUT
            image_path = f"{subtask}/images/{file_name}" if layout else f"{subtask}/{file_name}"
            qa_folder = benchmark / subtask / ("questions_answers_YN" if layout else "")
            suffix = "  Please answer yes or no." if subtask == "numerical_calculation" else " Please answer yes or no."
            write_text(qa_folder / f"{file_name[:-4]}.txt", f"{yes}{suffix}\tYes\n{no}{suffix}\tNo\n")
            write_image(benchmark / image_path, scene.render(with_number=subtask in ("OCR", "numerical_calculation")))
            for question in (yes, no):
                lines.append((subtask, {"question_id": f"{subtask}/{file_name}", "image": image_path,
                                        "text": question + SHORT_ANSWER_PROMPT, "category": subtask}))
    order = ["existence", "count", "position", "color", "OCR", "scene", "numerical_calculation"]
    write_jsonl(folder / "llava_mme.jsonl", [line for _, line in sorted(lines, key=lambda item: order.index(item[0]))])


# ---------------------------------------------------------------- multiple choice

def _mmbench_questions(scene: Scene) -> list[dict[str, Any]]:
    """Main MMBench questions of a scene: options (3 or 4), the right option, category, l2-category, hint."""
    background = scene.background_name
    wrong = [name for name in ("gray", "beige", "white", "black") if name != background]
    found = [{"question": "What color is the background of the image?",
              "options": [background, *wrong][scene.index % 4:] + [background, *wrong][:scene.index % 4],
              "answer_text": background, "category": "image_scene", "l2": "coarse_perception",
              "hint": "The image shows simple shapes." if scene.index % 2 else None}]
    counts = ["1", "2", "3"]
    found.append({"question": "How many shapes are in the image?", "options": counts,
                  "answer_text": str(len(scene.shapes)), "category": "attribute_recognition",
                  "l2": "finegrained_perception (instance-level)", "hint": None})
    return found


def _write_mmbench(path: Path, scenes: list[Scene], split: str) -> None:
    columns = ["index", "question", "hint", "A", "B", "C", "D"] + (["answer"] if split == "dev" else []) + \
        ["category", "image", "source", "l2-category", "comment", "split"]
    mains = [(scene, q) for scene in scenes for q in _mmbench_questions(scene)]
    rows = []
    for rotation in range(len(LETTERS)):
        for number, (scene, q) in enumerate(mains):
            if rotation >= len(q["options"]):
                continue
            options = q["options"][rotation:] + q["options"][:rotation]
            image = base64.b64encode(encode_image(scene.render())).decode("ascii")
            row = {"index": number + rotation * CIRCULAR_OFFSET, "question": q["question"], "hint": q["hint"] or "",
                   **{letter: options[i] if i < len(options) else "" for i, letter in enumerate(LETTERS)},
                   "answer": LETTERS[options.index(q["answer_text"])], "category": q["category"], "image": image,
                   "source": "gcgbench", "l2-category": q["l2"], "comment": "", "split": split}
            rows.append("\t".join(str(row[column]) for column in columns))
    write_text(path, "\n".join(["\t".join(columns), *rows]) + "\n")


def _scienceqa_problem(scene: Scene) -> dict[str, Any] | None:
    asked = scene.questions()
    if "color" not in asked:
        return None
    color = asked["color"].answer
    choices = [c for c in COLOR_NAMES if c != color][: 1 + scene.index % 3]
    choices.insert(scene.index % (len(choices) + 1), color)
    return {"question": _capitalised(asked["color"].text), "choices": choices, "answer": choices.index(color),
            "hint": "Look at the shapes in the picture." if scene.index % 2 else "", "image": "image.png",
            "task": "closed choice", "grade": "grade2", "subject": "natural science", "topic": "shapes",
            "category": "Colors", "skill": "Identify colors", "lecture": "Shapes have colors.",
            "solution": f"The shape is {color}.", "split": "test"}


def _write_scienceqa(folder: Path, scenes: list[Scene]) -> None:
    problems: dict[str, dict[str, Any]] = {}
    for scene in scenes:
        problem = _scienceqa_problem(scene)
        if problem is not None:
            problems[str(scene.index + 1)] = problem
            write_image(folder / "images" / "test" / str(scene.index + 1) / "image.png", scene.render(), PNG_SETTINGS)
    # a text-only test problem (outside the IMG subset) and an image problem of the val split
    problems["100"] = {"question": "Which shape has three sides?", "choices": list(KINDS), "answer": 2, "hint": "",
                       "image": None, "task": "closed choice", "grade": "grade1", "subject": "natural science",
                       "topic": "shapes", "category": "Shapes", "skill": "Identify shapes", "lecture": "",
                       "solution": "A triangle has three sides.", "split": "test"}
    problems["101"] = {**problems["100"], "question": "Which shape is round?", "answer": 0, "image": "image.png",
                       "split": "val"}
    write_image(folder / "images" / "val" / "101" / "image.png", scenes[0].render(), PNG_SETTINGS)
    test = [pid for pid, problem in problems.items() if problem["split"] == "test"]
    write_json(folder / "pid_splits.json", {"train": [], "val": ["101"], "test": test, "minival": ["101"],
                                            "minitest": test})
    write_json(folder / "problems.json", problems)
    converted = []
    for pid in test:  # LLaVA scripts/convert_sqa_to_llava.py, prompt format CQM-A
        problem = problems[pid]
        choice = " ".join(f"({'ABCDE'[i]}) {c}" for i, c in enumerate(problem["choices"]))
        text = f"Context: {problem['hint'] or 'N/A'}\nQuestion: {problem['question']}\nOptions: {choice}\n"
        text = text.replace("  ", " ").strip()
        entry: dict[str, Any] = {"id": pid}
        if problem["image"] is not None:
            entry["image"] = f"{pid}/{problem['image']}"
            text += "\n<image>"
        entry["conversations"] = [{"from": "human", "value": text},
                                  {"from": "gpt", "value": f"The answer is {'ABCDE'[problem['answer']]}."}]
        converted.append(entry)
    write_text(folder / "llava_test_CQM-A.json", json.dumps(converted, indent=2))


SEED_TYPES = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3, "Instance Location": 4,
              "Instances Counting": 5, "Spatial Relation": 6, "Instance Interaction": 7, "Visual Reasoning": 8,
              "Text Understanding": 9, "Action Recognition": 10, "Action Prediction": 11,
              "Procedure Understanding": 12}


def _write_seed(folder: Path, scenes: list[Scene]) -> None:
    questions, llava_lines = [], []

    def add(scene: Scene, question: str, right: str, wrong: list[str], type_name: str, data_type: str) -> None:
        choices = wrong[:3]
        choices.insert((scene.index + len(questions)) % 4, right)
        question_id = 90_000 + len(questions)
        data_id = seed_data_id(scene) if data_type == "image" else f"sample_{scene.index}.mp4"
        questions.append({"answer": LETTERS[choices.index(right)],
                          **{f"choice_{letter.lower()}": c for letter, c in zip(LETTERS, choices)},
                          "data_id": data_id, "data_type": data_type, "question": question,
                          "question_id": str(question_id), "question_type_id": SEED_TYPES[type_name]})
        image = f"SEED-Bench-image/{data_id}" if data_type == "image" else f"SEED-Bench-video-image/{question_id}.png"
        options = "".join(f"\n{letter}. {c}" for letter, c in zip(LETTERS, choices))
        llava_lines.append({"image": image, "text": question + options + CHOICE_PROMPT, "category": type_name,
                            "question_id": question_id})
        if data_type == "image":
            write_image(folder / image, scene.render())
        else:
            write_image(folder / image, scene.render(), PNG_SETTINGS)

    for scene in scenes:
        count = len(scene.shapes)
        add(scene, "How many shapes are in the image?", str(count), [str(n) for n in range(1, 6) if n != count],
            "Instances Counting", "image")
        asked = scene.questions()
        if "color" in asked:
            add(scene, _capitalised(asked["color"].text), asked["color"].answer,
                [c for c in COLOR_NAMES if c != asked["color"].answer], "Instance Attributes", "image")
    add(scenes[0], "What is the shape doing?", "standing still", ["rolling", "jumping", "flying"],
        "Action Recognition", "video")
    write_json(folder / "SEED-Bench.json", {"question_type": SEED_TYPES, "questions": questions})
    write_jsonl(folder / "llava-seed-bench.jsonl", llava_lines)

