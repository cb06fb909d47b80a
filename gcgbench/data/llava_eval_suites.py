"""MME, MMBench, ScienceQA-IMG and SEED-Bench in LLaVA-1.5's evaluation layout, read into Docs (the
conventions of `gcgbench.data.llava_eval`: `inputs["question"]` without the prompt suffix, multiple-choice
options in `inputs["options"]` as {letter: text}, `truth["llava_key"]` to match LLaVA answer lines).

- MME (docs/Evaluation.md; convert_answer_to_mme.py from LLaVA's eval.zip): `MME/llava_mme.jsonl`
  `{question_id: "<subtask>/<image file>", image, text, category}`, two lines per image and so two per
  question_id; GT in `MME_Benchmark_release_version/<subtask>/<stem>.txt`, or `<subtask>/questions_answers_YN/
  <stem>.txt` where the subtask has an `images/` folder, lines `question<TAB>Yes|No`. A line's GT question is
  its text minus "Answer the question using a single word or phrase.", stripped, plus " Please answer yes
  or no." when absent (the two-space variant when that is what the file has), as the converter looks it up.
  Doc id `<question_id>#<1|2>`; answers are matched by (question_id, prompt). Each image needs exactly its
  two questions (MME's acc+ pairs them).
- MMBench (llava/eval/model_vqa_mmbench.py --single-pred-prompt): a TSV read with pandas' defaults (so
  `None`, `nan`, "" are missing values), columns index, question, hint, A..D, answer (not in test),
  category, l2-category, split, image (base64; VLMEvalKit TSVs may give another row's index instead). A row's
  options are A.. up to the first missing one; the question is `hint\\n` (when present) + question +
  `\\nA. option` per option. Images are decoded once into a content-addressed cache folder. Doc id: index.
- ScienceQA-IMG (llava/eval/model_vqa_science.py, eval_science_qa.py): `scienceqa/llava_test_CQM-A.json`
  `[{id, image?, conversations: [{value: "…\\n<image>"}, …]}]` for the prompts (`<image>` removed, stripped);
  GT `problems.json` `{pid: {choices, answer (index), image, …}}` and `pid_splits.json`. Only problems with an
  image (LLaVA's IMG subset) are docs, and every such problem of the split must be asked.
- SEED-Bench (scripts/convert_seed_for_submission.py): `seed_bench/llava-seed-bench.jsonl` `{image, text,
  category, question_id}` + `SEED-Bench.json` `{question_type: {name: id}, questions: [{question_id (str),
  answer, choice_a..choice_d, data_type, data_id, question_type_id}]}`; the task's data type (image) only,
  every GT question of that type must be asked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from gcgbench.api.errors import InputError
from gcgbench.api.types import Doc
from gcgbench.runner.store import default_cache_dir
from gcgbench.api.jsonio import load_json, require
from gcgbench.data.llava_eval import ImageSizes, make_doc, question_lines, unique_ids, without_suffix

MME_SHORT_ANSWER = "Answer the question using a single word or phrase."
MME_YES_NO = "Please answer yes or no."
MMBENCH_LETTERS = ("A", "B", "C", "D")
MMBENCH_DROPPED = ("hint", "category", "source", "image", "comment", "l2-category")  # convert_mmbench_for_submission.py
SCIENCEQA_LETTERS = ("A", "B", "C", "D", "E")


# ---------------------------------------------------------------- MME

def mme_key(question_id: Any, prompt: str) -> str:
    return json.dumps([str(question_id), prompt])


def _mme_answers(benchmark: Path, subtask: str, stem: str, cache: dict[Path, dict[str, str]]) -> tuple[Path, dict[str, str]]:
    folder = benchmark / subtask
    qa_folder = folder / "questions_answers_YN" if (folder / "images").exists() else folder
    path = qa_folder / f"{stem}.txt"
    if path not in cache:
        if not path.is_file():
            raise InputError(path, None, "MME ground-truth file not found")
        answers: dict[str, str] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.strip().split("\t")
            require(len(parts) == 2, path, f"line {number}", "expected 'question<TAB>answer'")
            answers[parts[0]] = parts[1]
        cache[path] = answers
    return path, cache[path]


def read_mme(question_path: Path, benchmark: Path, suffix: str) -> list[Doc]:
    sizes, cache, docs, records = ImageSizes(), {}, [], []
    seen: Counter[str] = Counter()
    for record, line in question_lines(question_path, "LLaVA MME question file"):
        question_id = line["question_id"]
        require(isinstance(question_id, str) and "/" in question_id, question_path, record,
                "'question_id' must be '<subtask>/<image file>'")
        subtask, file_name = question_id.split("/")[0], question_id.split("/")[-1]
        gt_path, answers = _mme_answers(benchmark, subtask, file_name.split(".")[0], cache)
        asked = line["text"].replace(MME_SHORT_ANSWER, "").strip()
        candidates = [asked] if MME_YES_NO in asked else [f"{asked} {MME_YES_NO}", f"{asked}  {MME_YES_NO}"]
        question = next((candidate for candidate in candidates if candidate in answers), candidates[0])
        require(question in answers, gt_path, None, f"no line for {question!r} ({question_path.name} {record})")
        require(answers[question] in ("Yes", "No"), gt_path, question, f"answer must be Yes or No, got {answers[question]!r}")
        seen[question_id] += 1
        truth = {"image_id": question_id, "subtask": subtask, "answer": answers[question],
                 "llava_key": mme_key(question_id, line["text"])}
        inputs = {"question": without_suffix(line["text"], suffix), "category": subtask}
        docs.append(make_doc(f"{question_id}#{seen[question_id]}", benchmark / line["image"], sizes, inputs, truth))
        records.append(record)
    unpaired = [question_id for question_id, count in seen.items() if count != 2]
    require(not unpaired, question_path, None, f"MME asks exactly two questions per image; {unpaired[0] if unpaired else ''!r} "
                                               f"has {seen[unpaired[0]] if unpaired else 0}")
    return unique_ids(docs, question_path, records)


# ---------------------------------------------------------------- MMBench

def mmbench_is_none(value: Any) -> bool:
    """model_vqa_mmbench.py `is_none`: None, NaN, or the strings nan / none in any case."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and value.lower() in ("nan", "none"))


def default_image_cache() -> Path:
    """`<gcgbench cache>/tsv-images`: where images embedded in TSVs are decoded to."""
    return default_cache_dir() / "tsv-images"


def _extract_image(encoded: str, cache: Path, tsv: Path, record: str) -> Path:
    """Decode a base64 image once into `cache/<sha256>.<ext>` (content-addressed, written atomically)."""
    extension = ".png" if encoded.startswith("iVBOR") else ".jpg" if encoded.startswith("/9j/") else ".img"
    target = cache / (hashlib.sha256(encoded.encode("ascii", "replace")).hexdigest()[:32] + extension)
    if not target.is_file():
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise InputError(tsv, record, "'image' is not base64") from None
        cache.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=cache, prefix=".extract-")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    return target


def _json_value(value: Any) -> Any:
    """A pandas cell as JSON: missing -> None, numpy scalars -> Python."""
    if mmbench_is_none(value) and not isinstance(value, str):
        return None
    return value.item() if hasattr(value, "item") else value


def read_mmbench(tsv: Path, image_cache: Path | None = None) -> list[Doc]:
    import pandas as pd

    if not tsv.is_file():
        raise InputError(tsv, None, "MMBench TSV not found")
    try:
        table = pd.read_table(tsv, dtype=str)
    except (ValueError, pd.errors.ParserError) as error:
        raise InputError(tsv, None, f"not a readable TSV ({str(error).splitlines()[0]})") from None
    for column in ("index", "question", "A", "B", "image"):
        require(column in table.columns, tsv, None, f"no '{column}' column")
    rows = table.to_dict("records")
    images = {str(row["index"]): row["image"] for row in rows}
    cache, sizes, docs, records = image_cache or default_image_cache(), ImageSizes(), [], []
    for number, row in enumerate(rows):
        record = f"row {number + 2}"  # the header is line 1
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise InputError(tsv, record, f"'index' must be an integer, got {row['index']!r}") from None
        options = {}
        for letter in MMBENCH_LETTERS:
            if letter not in row or mmbench_is_none(row[letter]):
                break
            options[letter] = row[letter]
        question = row["question"] if isinstance(row["question"], str) else ""
        hint = row.get("hint")
        prompt_question = (f"{hint}\n{question}" if not mmbench_is_none(hint) else question) + \
            "".join(f"\n{letter}. {text}" for letter, text in options.items())
        answer = row.get("answer")
        answer = None if mmbench_is_none(answer) else answer
        require(answer is None or answer in options, tsv, record, f"answer {answer!r} is not one of the options {list(options)}")
        image = row["image"]
        if isinstance(image, str) and len(image) <= 64 and image in images:  # VLMEvalKit: another row's image
            image = images[image]
        require(isinstance(image, str) and len(image) > 64, tsv, record, "'image' must be a base64 image")
        upload = {column: (index if column == "index" else _json_value(value))
                  for column, value in row.items() if column not in MMBENCH_DROPPED}
        truth = {"image_id": f"mmbench-{index % 1_000_000}", "index": index, "answer": answer,
                 "category": _json_value(row.get("category")) or "", "l2_category": _json_value(row.get("l2-category")) or "",
                 "split": _json_value(row.get("split")) or "", "question": question, "upload_row": upload,
                 "llava_key": str(index)}
        docs.append(make_doc(str(index), _extract_image(image, cache, tsv, record), sizes,
                             {"question": prompt_question, "options": options, "category": truth["category"]}, truth))
        records.append(record)
    return unique_ids(docs, tsv, records)


# ---------------------------------------------------------------- ScienceQA-IMG

def read_scienceqa(question_path: Path, problems_path: Path, splits_path: Path, image_dir: Path, suffix: str,
                   split: str = "test") -> list[Doc]:
    questions = load_json(question_path, "LLaVA ScienceQA question file")
    problems = load_json(problems_path, "ScienceQA problems")
    splits = load_json(splits_path, "ScienceQA pid splits")
    require(isinstance(questions, list), question_path, None, "expected a JSON list")
    require(isinstance(problems, dict), problems_path, None, "expected a JSON object {pid: problem}")
    require(isinstance(splits, dict) and isinstance(splits.get(split), list), splits_path, split, "missing or not a list")
    in_split = set(map(str, splits[split]))
    sizes, docs, records = ImageSizes(), [], []
    for position, entry in enumerate(questions):
        record = f"[{position}]"
        require(isinstance(entry, dict) and "id" in entry, question_path, record, "missing 'id'")
        if "image" not in entry:  # a text-only problem: not part of ScienceQA-IMG
            continue
        pid = str(entry["id"])
        conversations = entry.get("conversations")
        require(isinstance(conversations, list) and conversations and isinstance(conversations[0], dict)
                and isinstance(conversations[0].get("value"), str), question_path, record,
                "needs conversations[0].value, the question")
        require(pid in in_split, splits_path, split, f"has no problem {pid!r} ({question_path.name} {record})")
        problem = problems.get(pid)
        require(isinstance(problem, dict) and isinstance(problem.get("choices"), list)
                and isinstance(problem.get("answer"), int), problems_path, pid, "needs a list 'choices' and an int 'answer'")
        require(2 <= len(problem["choices"]) <= len(SCIENCEQA_LETTERS) and 0 <= problem["answer"] < len(problem["choices"]),
                problems_path, pid, "answer or number of choices out of range")
        question = conversations[0]["value"].replace("<image>", "").strip()
        truth = {"image_id": pid, "answer": problem["answer"], "num_choices": len(problem["choices"]),
                 "has_image": True, "llava_key": pid}
        inputs = {"question": without_suffix(question, suffix),
                  "options": dict(zip(SCIENCEQA_LETTERS, map(str, problem["choices"])))}
        docs.append(make_doc(pid, image_dir / entry["image"], sizes, inputs, truth))
        records.append(record)
    asked = {doc.doc_id for doc in docs}
    unasked = [pid for pid in map(str, splits[split])
               if isinstance(problems.get(pid), dict) and problems[pid].get("image") and pid not in asked]
    require(not unasked, question_path, None, f"{len(unasked)} image problem(s) of the {split} split are not asked "
                                              f"(first: {unasked[0] if unasked else None!r})")
    return unique_ids(docs, question_path, records)


# ---------------------------------------------------------------- SEED-Bench

def read_seed(question_path: Path, annotations_path: Path, root: Path, suffix: str, data_type: str = "image") -> list[Doc]:
    annotations = load_json(annotations_path, "SEED-Bench annotations")
    require(isinstance(annotations, dict) and isinstance(annotations.get("questions"), list)
            and isinstance(annotations.get("question_type"), dict), annotations_path, None,
            "expected {question_type: {name: id}, questions: [...]}")
    type_names = {type_id: name for name, type_id in annotations["question_type"].items()}
    by_id: dict[str, dict] = {}
    for index, question in enumerate(annotations["questions"]):
        require(isinstance(question, dict) and "question_id" in question and isinstance(question.get("answer"), str),
                annotations_path, f"questions[{index}]", "needs 'question_id' and a string 'answer'")
        by_id[str(question["question_id"])] = question
    sizes, docs, records = ImageSizes(), [], []
    for record, line in question_lines(question_path, "LLaVA SEED-Bench question file"):
        question_id = str(line["question_id"])
        gt = by_id.get(question_id)
        require(gt is not None, annotations_path, None, f"no question {question_id!r} ({question_path.name} {record})")
        if gt.get("data_type") != data_type:  # e.g. the video questions LLaVA asks on their middle frame
            continue
        options = {letter: str(gt[f"choice_{letter.lower()}"]) for letter in MMBENCH_LETTERS if f"choice_{letter.lower()}" in gt}
        require(gt["answer"] in options, annotations_path, question_id, f"answer {gt['answer']!r} is not one of {list(options)}")
        truth = {"image_id": gt.get("data_id", question_id), "answer": gt["answer"], "data_type": data_type,
                 "question_type": type_names.get(gt.get("question_type_id"), str(gt.get("question_type_id"))),
                 "llava_key": question_id}
        docs.append(make_doc(question_id, root / line["image"], sizes,
                             {"question": without_suffix(line["text"], suffix), "options": options,
                              "category": truth["question_type"]}, truth))
        records.append(record)
    asked = {doc.doc_id for doc in docs}
    unasked = [qid for qid, gt in by_id.items() if gt.get("data_type") == data_type and qid not in asked]
    require(not unasked, question_path, None, f"{len(unasked)} {data_type} question(s) of {annotations_path.name} are "
                                              f"not asked (first: {unasked[0] if unasked else None!r})")
    return unique_ids(docs, question_path, records)

