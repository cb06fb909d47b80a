"""VQA-style suites in LLaVA-1.5's evaluation layout (haotian-liu/LLaVA docs/Evaluation.md,
scripts/v1_5/eval/*.sh, llava/eval/*.py) read into Docs, and the prediction files those scripts write.

One doc per question. `doc.inputs["question"]` is the question as LLaVA sends it minus the task's prompt
suffix (LLaVA question files carry the suffix inside `text`; the task prompt `{question}<suffix>` puts it
back, so the request prompt equals LLaVA's `text`). `doc.truth` holds what the metric record needs,
`image_id` (the bootstrap cluster) and `llava_key`, the key LLaVA's own eval script matches an answer
line with. Image sizes come from the image file headers (0 × 0 where the image is not on disk: scoring
needs no pixels; `gcgbench validate` reports missing images).

Files (under `playground/data/eval/`; the sample writes them all, `gcgbench.data.sample.vqa`):
- VQAv2 val: the official `v2_OpenEnded_mscoco_val2014_questions.json` (`questions[{image_id, question,
  question_id}]`, `data_subtype`) and `v2_mscoco_val2014_annotations.json` (`annotations[{question_id,
  image_id, question_type, answer_type, multiple_choice_answer, answers[{answer, answer_confidence,
  answer_id}] ×10}]`), images `COCO_<data_subtype>_<image_id:012d>.jpg` (GT-Vision-Lab/VQA vqaTools/vqa.py).
- VQAv2 test-dev: `llava_vqav2_mscoco_test-dev2015.jsonl` `{question_id, image, text}`; its upload lists every
  question of `llava_vqav2_mscoco_test2015.jsonl` (scripts/convert_vqav2_for_submission.py).
- GQA: `llava_gqa_testdev_balanced.jsonl` + `data/testdev_balanced_questions.json` (`{qid: {question,
  imageId, answer, isBalanced, types: {structural, semantic}, …}}`).
- TextVQA: `llava_textvqa_val_v051_ocr.jsonl` (question_id = TextVQA *image* id, so not unique) +
  `TextVQA_0.5.1_val.json` (`data[{question_id, image_id, question, answers ×10, image_width,
  image_height}]`), matched as llava/eval/eval_textvqa.py does: (image id, question parsed from the prompt,
  lowercased). Doc id: the TextVQA question_id.
- VizWiz test: `llava_test.jsonl`; upload `[{image, answer}]` (scripts/convert_vizwiz_for_submission.py).
- POPE: `llava_pope_test.jsonl` (`+ category`) and `coco/coco_pope_<category>.json` (JSONL `{question_id,
  image, text, label}`), paired by order within a category as llava/eval/eval_pope.py does; we also
  check that each pair names the same image and question.
Predictions: a gcgbench JSONL or run directory (`data/predictions.py`), a LLaVA answers JSONL
`{question_id, prompt, text, answer_id, model_id, metadata}` (llava/eval/model_vqa_loader.py), or the
official VQA results JSON `[{question_id, answer}]` (keyed by doc id).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc, Prediction
from gcgbench.api.jsonio import iter_jsonl, load_json, require
from gcgbench.data.predictions import beyond_docs_allowed, read_prediction_jsonl, read_predictions

QUESTION_FIELD = "{question}"
LLAVA_ANSWERS = "llava_answers"
VQA_RESULTS = "vqa_results"


# ---------------------------------------------------------------- shared helpers

def prompt_suffix(template: str) -> str:
    """What a task prompt appends to the question: `{question}<suffix>` -> `<suffix>`."""
    head, marker, tail = template.partition(QUESTION_FIELD)
    if not marker or head or "{" in tail:
        raise ValueError(f"a VQA prompt must be '{QUESTION_FIELD}' followed by a literal suffix, got {template!r}")
    return tail


def without_suffix(text: str, suffix: str) -> str:
    """LLaVA's question text minus the prompt suffix it carries (unchanged when it carries none)."""
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


class ImageSizes:
    """(height, width) from image headers, cached per path; (0, 0) for an image that is not on disk."""

    def __init__(self) -> None:
        self._known: dict[Path, tuple[int, int]] = {}

    def __call__(self, path: Path) -> tuple[int, int]:
        if path not in self._known:
            from PIL import Image, UnidentifiedImageError

            try:
                with Image.open(path) as image:
                    self._known[path] = (image.height, image.width)
            except (OSError, UnidentifiedImageError):
                self._known[path] = (0, 0)
        return self._known[path]


def make_doc(doc_id: str, image_path: Path | None, sizes: ImageSizes, inputs: Mapping[str, Any],
             truth: Mapping[str, Any], known_size: tuple[int, int] | None = None) -> Doc:
    height, width = known_size or (sizes(image_path) if image_path is not None else (0, 0))
    return Doc(doc_id=doc_id, image_path=None if image_path is None else str(image_path), height=height,
               width=width, inputs=dict(inputs), truth=dict(truth))


def question_lines(path: Path, what: str, fields: Iterable[str] = ("question_id", "image", "text")) -> list[tuple[str, dict]]:
    """(record, object) for each line of a LLaVA question JSONL; `text` and `image` must be strings."""
    lines = []
    for line_number, obj in iter_jsonl(path, what):
        record = f"line {line_number}"
        require(isinstance(obj, dict), path, record, "expected a JSON object")
        for name in fields:
            require(name in obj, path, record, f"missing '{name}'")
            if name in ("image", "text"):
                require(isinstance(obj[name], str), path, record, f"'{name}' must be a string")
        lines.append((record, obj))
    return lines


def unique_ids(docs: Sequence[Doc], path: Path, records: Sequence[str]) -> list[Doc]:
    """`docs` unless two share a doc id (the error names the second's record)."""
    seen: set[str] = set()
    for doc, record in zip(docs, records):
        require(doc.doc_id not in seen, path, record, f"question id {doc.doc_id!r} appears more than once")
        seen.add(doc.doc_id)
    return list(docs)


def _records_of(data: Any, key: str, path: Path) -> list[dict]:
    require(isinstance(data, dict) and isinstance(data.get(key), list), path, key, "missing or not a list")
    for index, item in enumerate(data[key]):
        require(isinstance(item, dict), path, f"{key}[{index}]", "expected a JSON object")
    return data[key]


# ---------------------------------------------------------------- VQAv2

def read_vqav2_val(questions_path: Path, annotations_path: Path, image_dir: Path) -> list[Doc]:
    """VQAv2 val in the official layout; every question needs its annotation and vice versa (vqa.py asserts it)."""
    questions = load_json(questions_path, "VQAv2 questions")
    annotations = _records_of(load_json(annotations_path, "VQAv2 annotations"), "annotations", annotations_path)
    subtype = questions.get("data_subtype", "val2014") if isinstance(questions, dict) else "val2014"
    by_id: dict[Any, dict] = {}
    for index, ann in enumerate(annotations):
        record = f"annotations[{index}]"
        require(ann.get("question_id") not in by_id, annotations_path, record,
                f"question_id {ann.get('question_id')!r} appears more than once")
        answers = ann.get("answers")
        require(isinstance(answers, list) and answers and all(isinstance(a, dict) and isinstance(a.get("answer"), str)
                                                              for a in answers),
                annotations_path, record, "'answers' must be a non-empty list of {answer: str, ...}")
        by_id[ann.get("question_id")] = ann
    sizes, docs, records, asked = ImageSizes(), [], [], set()
    for index, question in enumerate(_records_of(questions, "questions", questions_path)):
        record = f"questions[{index}]"
        require(isinstance(question.get("question"), str) and isinstance(question.get("image_id"), int),
                questions_path, record, "needs a string 'question' and an integer 'image_id'")
        require(question.get("question_id") not in asked, questions_path, record,
                f"question_id {question.get('question_id')!r} appears more than once")
        asked.add(question.get("question_id"))
        ann = by_id.pop(question.get("question_id"), None)
        require(ann is not None, annotations_path, None, f"no annotation for question_id {question.get('question_id')!r}")
        require(ann.get("image_id") == question["image_id"], annotations_path, f"question_id {question['question_id']!r}",
                f"image_id {ann.get('image_id')!r} differs from the questions file's {question['image_id']!r}")
        image = image_dir / f"COCO_{subtype}_{question['image_id']:012d}.jpg"
        truth = {"image_id": question["image_id"], "question_id": question["question_id"],
                 "answers": [a["answer"] for a in ann["answers"]], "answer_type": ann.get("answer_type", ""),
                 "question_type": ann.get("question_type", ""),
                 "multiple_choice_answer": ann.get("multiple_choice_answer", ""),
                 "llava_key": str(question["question_id"])}
        docs.append(make_doc(str(question["question_id"]), image, sizes, {"question": question["question"]}, truth))
        records.append(record)
    require(not by_id, annotations_path, None,
            f"{len(by_id)} annotation(s) have no question in {questions_path.name} (first: {next(iter(by_id), None)!r})")
    return unique_ids(docs, questions_path, records)


def read_llava_questions(path: Path, image_dir: Path, suffix: str, what: str,
                         extra_truth: Mapping[str, Any] | None = None) -> list[Doc]:
    """A LLaVA question file whose answers only a server holds (VQAv2 test-dev, VizWiz test)."""
    sizes, docs, records = ImageSizes(), [], []
    for record, line in question_lines(path, what):
        truth = {"image_id": line["image"], "image": line["image"], "question_id": line["question_id"],
                 "llava_key": str(line["question_id"]), **(extra_truth or {})}
        docs.append(make_doc(str(line["question_id"]), image_dir / line["image"], sizes,
                             {"question": without_suffix(line["text"], suffix)}, truth))
        records.append(record)
    return unique_ids(docs, path, records)


# ---------------------------------------------------------------- GQA, TextVQA, POPE

def read_gqa(question_path: Path, gt_path: Path, image_dir: Path, suffix: str) -> list[Doc]:
    """GQA testdev-balanced; every balanced GT question must be asked (the official eval.py needs them all)."""
    gt = load_json(gt_path, "GQA questions")
    require(isinstance(gt, dict), gt_path, None, "expected a JSON object {question id: question}")
    sizes, docs, records = ImageSizes(), [], []
    for record, line in question_lines(question_path, "LLaVA GQA question file"):
        question_id = str(line["question_id"])
        entry = gt.get(question_id)
        require(isinstance(entry, dict), gt_path, None, f"no question {question_id!r} (asked in {question_path.name} {record})")
        require(isinstance(entry.get("answer"), str), gt_path, question_id, "'answer' must be a string")
        types = entry.get("types") if isinstance(entry.get("types"), dict) else {}
        truth = {"image_id": entry.get("imageId", line["image"]), "answer": entry["answer"],
                 "is_balanced": bool(entry.get("isBalanced", True)), "structural": types.get("structural", ""),
                 "semantic": types.get("semantic", ""), "llava_key": question_id}
        docs.append(make_doc(question_id, image_dir / line["image"], sizes,
                             {"question": without_suffix(line["text"], suffix)}, truth))
        records.append(record)
    asked = {doc.doc_id for doc in docs}
    unasked = [qid for qid, entry in gt.items() if isinstance(entry, dict) and entry.get("isBalanced") and qid not in asked]
    require(not unasked, question_path, None,
            f"{len(unasked)} balanced question(s) of {gt_path.name} are not asked (first: {unasked[0] if unasked else None!r})")
    return unique_ids(docs, question_path, records)


def textvqa_question_of_prompt(prompt: str) -> str:
    """llava/eval/eval_textvqa.py `prompt_processor`: the question inside a LLaVA TextVQA prompt, lowercased."""
    lines = prompt.split("\n")
    if prompt.startswith("OCR tokens: "):
        found = re.search(r"Question: (.*?) Short answer:", prompt, re.DOTALL)
        if found is None:
            raise ValueError("an 'OCR tokens: ' prompt without 'Question: … Short answer:'")
        question = found.group(1)
    elif "Reference OCR token: " in prompt and len(lines) == 3:
        question = lines[1] if prompt.startswith("Reference OCR token:") else lines[0]
    elif len(lines) == 2:
        question = lines[0]
    else:
        raise ValueError("not one of the prompt forms eval_textvqa.py knows")
    return question.lower()


def textvqa_key(question_id: Any, prompt: str) -> str:
    return json.dumps([str(question_id), textvqa_question_of_prompt(prompt)])


def occurrence_key(key: str, occurrence: int) -> str:
    """A LLaVA matching key made unique: the k-th line with the same key is `key#k` (k > 1)."""
    return key if occurrence == 1 else f"{key}#{occurrence}"


def read_textvqa(question_path: Path, gt_path: Path, image_dir: Path, suffix: str) -> list[Doc]:
    data = _records_of(load_json(gt_path, "TextVQA annotations"), "data", gt_path)
    by_key: dict[str, list[dict]] = {}
    for index, entry in enumerate(data):
        require(isinstance(entry.get("question"), str) and isinstance(entry.get("answers"), list),
                gt_path, f"data[{index}]", "needs a string 'question' and a list 'answers'")
        by_key.setdefault(json.dumps([str(entry.get("image_id")), entry["question"].lower()]), []).append(entry)
    sizes, docs, records, asked = ImageSizes(), [], [], Counter()
    for record, line in question_lines(question_path, "LLaVA TextVQA question file"):
        try:
            key = textvqa_key(line["question_id"], line["text"])
        except ValueError as error:
            raise InputError(question_path, record, f"text: {error}") from None
        # the same question on the same image twice: the k-th asking is the k-th annotation (eval_textvqa.py
        # would score every asking against the last one)
        occurrence, entries = asked[key], by_key.get(key, [])
        asked[key] += 1
        require(occurrence < len(entries), gt_path, None, f"no {'' if not occurrence else 'further '}question for image "
                f"{line['question_id']!r} reading {json.loads(key)[1]!r} ({question_path.name} {record})")
        entry, key = entries[occurrence], occurrence_key(key, occurrence + 1)
        known = (entry["image_height"], entry["image_width"]) if isinstance(entry.get("image_height"), int) \
            and isinstance(entry.get("image_width"), int) else None
        truth = {"image_id": entry.get("image_id"), "answers": list(entry["answers"]), "llava_key": key}
        docs.append(make_doc(str(entry.get("question_id")), image_dir / line["image"], sizes,
                             {"question": without_suffix(line["text"], suffix)}, truth, known))
        records.append(record)
    return unique_ids(docs, question_path, records)


def read_pope(question_path: Path, label_paths: Mapping[str, Path], image_dir: Path, suffix: str) -> list[Doc]:
    """POPE: the i-th question of a category pairs with the i-th line of its label file."""
    lines = question_lines(question_path, "LLaVA POPE question file", ("question_id", "image", "text", "category"))
    labels: dict[str, list[tuple[str, dict]]] = {}
    for category, label_path in label_paths.items():
        labels[category] = [(f"line {n}", obj) for n, obj in iter_jsonl(label_path, f"POPE {category} labels")]
    used = {category: 0 for category in labels}
    sizes, docs, records = ImageSizes(), [], []
    for record, line in lines:
        category = line["category"]
        require(category in labels, question_path, record,
                f"category {category!r} has no label file in this task (categories: {', '.join(labels)})")
        require(used[category] < len(labels[category]), label_paths[category], None,
                f"fewer labels than {category} questions in {question_path.name}")
        label_record, label = labels[category][used[category]]
        used[category] += 1
        question = without_suffix(line["text"], suffix)
        require(isinstance(label, dict) and label.get("label") in ("yes", "no"), label_paths[category], label_record,
                "expected an object with 'label' yes or no")
        require(label.get("image", line["image"]) == line["image"] and label.get("text", question) == question,
                label_paths[category], label_record,
                f"pairs by order with {question_path.name} {record}, which asks about another image or question")
        truth = {"image_id": line["image"], "label": label["label"], "category": category,
                 "llava_key": str(line["question_id"])}
        docs.append(make_doc(str(line["question_id"]), image_dir / line["image"], sizes,
                             {"question": question, "category": category}, truth))
        records.append(record)
    for category, count in used.items():
        require(count == len(labels[category]), label_paths[category], None,
                f"{len(labels[category])} labels but {count} {category} questions in {question_path.name}")
    return unique_ids(docs, question_path, records)


# ---------------------------------------------------------------- predictions

def read_vqa_predictions(path: Path, docs: Sequence[Doc], task_name: str,
                         llava_key: Callable[[dict], str] | None = None) -> dict[str, Prediction]:
    """Predictions from a gcgbench JSONL / run directory, a LLaVA answers JSONL or VQA results JSON."""
    path = Path(path)
    if not path.is_file():
        return read_predictions(path, docs, task_name)
    try:
        with path.open("r", encoding="utf-8") as handle:
            first = next((line for line in handle if line.strip()), "")
    except UnicodeDecodeError as error:
        raise InputError(path, None, f"not UTF-8 text (byte {error.start} of the bad chunk)") from None
    if first.lstrip().startswith("["):
        return read_vqa_results(path, docs)
    try:
        head = json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        head = None
    if isinstance(head, dict) and "question_id" in head and "doc_id" not in head:
        return read_llava_answers(path, docs, llava_key or default_llava_key)
    return read_prediction_jsonl(path, docs)


def default_llava_key(row: dict) -> str:
    return str(row["question_id"])


def _collect(path: Path, docs: Sequence[Doc], rows: Iterable[tuple[str, str, Any]], format_name: str) -> dict[str, Prediction]:
    """(record, doc id, text) rows -> predictions; unknown ids, repeats, non-string text and gaps are errors."""
    known = {doc.doc_id for doc in docs}
    found: dict[str, Prediction] = {}
    for record, doc_id, text in rows:
        if doc_id not in known and beyond_docs_allowed():
            continue
        require(doc_id in known, path, record, f"question {doc_id!r} is not a question of this task")
        require(doc_id not in found, path, record, f"second answer for question {doc_id!r}")
        require(isinstance(text, str), path, record, "the answer must be a string")
        found[doc_id] = Prediction(doc_id=doc_id, text=text, extras={"format": format_name})
    missing = [doc.doc_id for doc in docs if doc.doc_id not in found]
    require(not missing, path, None, f"{len(missing)} of {len(docs)} questions have no answer "
                                     f"(first: {missing[0] if missing else None!r})")
    return found


def read_llava_answers(path: Path, docs: Sequence[Doc], llava_key: Callable[[dict], str]) -> dict[str, Prediction]:
    """A LLaVA answers JSONL; lines are matched to docs by `doc.truth["llava_key"]` as LLaVA's scripts do."""
    by_key = {doc.truth["llava_key"]: doc.doc_id for doc in docs}
    seen: Counter[str] = Counter()

    def rows() -> Iterable[tuple[str, str, Any]]:
        for line_number, obj in iter_jsonl(path, "LLaVA answers file"):
            record = f"line {line_number}"
            require(isinstance(obj, dict) and "question_id" in obj, path, record, "missing 'question_id'")
            require("text" in obj, path, record, "missing 'text' (the answer)")
            require(obj.get("round_id", 0) == 0, path, record,
                    "answers of --all-rounds runs are not read: the TSV's circular copies are separate questions")
            try:
                key = llava_key(obj)
            except (KeyError, ValueError) as error:
                raise InputError(path, record, f"cannot match the line to a question ({error})") from None
            seen[key] += 1
            require(seen[key] == 1 or occurrence_key(key, seen[key]) in by_key, path, record,
                    f"second answer for question_id {obj['question_id']!r}")
            key = occurrence_key(key, seen[key])
            if key not in by_key and beyond_docs_allowed():
                continue  # a question the run did not ask (replay of a subset)
            require(key in by_key, path, record, f"question_id {obj['question_id']!r} is not a question of this task"
                    + ("" if str(obj["question_id"]) == key else " (matched with its prompt, as LLaVA's script does)"))
            yield record, by_key[key], obj["text"]

    return _collect(path, docs, rows(), LLAVA_ANSWERS)


def read_vqa_results(path: Path, docs: Sequence[Doc]) -> dict[str, Prediction]:
    """The official VQA results format `[{question_id, answer}]`, keyed by doc id."""
    data = load_json(path, "VQA results file")
    require(isinstance(data, list), path, None, "expected a JSON list of {question_id, answer}")

    def rows() -> Iterable[tuple[str, str, Any]]:
        for index, item in enumerate(data):
            record = f"[{index}]"
            require(isinstance(item, dict) and "question_id" in item, path, record, "missing 'question_id'")
            require("answer" in item, path, record, "missing 'answer'")
            yield record, str(item["question_id"]), item["answer"]

    return _collect(path, docs, rows(), VQA_RESULTS)
