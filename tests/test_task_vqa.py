"""The VQA task family through the registry on the bundled sample: task files, LLaVA's prompts, the oracle
scoring perfectly on every locally scored suite, server splits giving the upload files LLaVA's converters
write, predictions in every accepted format, protocols and errors."""

import dataclasses
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from gcgbench.api.errors import InputError
from gcgbench.api.task import DataPaths, ScoringOptions
from gcgbench.api.types import Prediction
from gcgbench.runner.run_dir import write_prediction_jsonl
from gcgbench.data.sample import write_sample
from gcgbench.metrics.vqa_normalize import evalai_normalize, official_vqa_score
from gcgbench.tasks.registry import all_specs, get_task, task_names

OPTIONS = ScoringOptions(bootstrap_resamples=50)
SHORT = "\nAnswer the question using a single word or phrase."
CHOICE = "\nAnswer with the option's letter from the given choices directly."
EVAL = "playground/data/eval"
LOCAL = {"vqav2_val": "accuracy", "gqa_testdev": "accuracy", "textvqa_val": "accuracy", "pope": "f1",
         "mme": "perception", "mmbench_dev": "accuracy", "scienceqa_img": "img_accuracy", "seed_bench": "accuracy"}
SERVER = ("vqav2_testdev", "vizwiz_test", "mmbench_test")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


@pytest.fixture(autouse=True)
def image_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))  # MMBench images land here


def loaded(root, name):
    task = get_task(name)
    return task, task.docs(DataPaths(root))


def oracle(task, docs):
    return {doc.doc_id: task.ground_truth_prediction(doc) for doc in docs}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_task_files_name_every_suite_with_llava_prompts_and_layout():
    assert {n for n in task_names() if all_specs()[n].family == "vqa"} == set(LOCAL) | set(SERVER)
    for name in (*LOCAL, *SERVER):
        spec = all_specs()[name]
        assert spec.version == "1" and spec.description
        assert set(spec.checksums.values()) == {None}  # no upstream release is available offline to pin
        assert all(path.startswith(f"{EVAL}/") for path in spec.files.values())
        suffix = CHOICE if spec.params["suite"] in ("mmbench", "scienceqa", "seed") else SHORT
        if name == "vizwiz_test":
            suffix = "\nWhen the provided information is insufficient, respond with 'Unanswerable'." + SHORT
        assert spec.prompt == "{question}" + suffix
    assert all_specs()["pope"].params["categories"] == ["adversarial", "popular", "random"]


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_oracle_scores_perfectly_on_every_locally_scored_suite(root, name):
    task, docs = loaded(root, name)
    assert docs and len({d.doc_id for d in docs}) == len(docs)
    result = task.score(docs, oracle(task, docs), OPTIONS)
    assert list(result.metrics)[0] == LOCAL[name] == result.metric_config["headline"]
    assert all(re.fullmatch(r"[a-z0-9_]+", key) for key in result.metrics)
    if name == "mme":
        scores = {k: v for k, v in result.metrics.items() if k.endswith("_score")}
        assert set(scores.values()) == {200.0} and result.metrics["perception"] == 200.0 * (len(scores) - 1)
        assert result.metrics["cognition"] == 200.0  # numerical_calculation
    else:
        rates = {k: v for k, v in result.metrics.items() if not k.endswith("yes_ratio")}
        assert set(rates.values()) == {1.0}, rates
    assert set(result.intervals) == set(result.metrics)
    assert result.n_samples == len(docs) == len(result.per_sample)
    assert [row["doc_id"] for row in result.per_sample] == [d.doc_id for d in docs]
    assert all(row["score"] == 1.0 for row in result.per_sample)


def test_vqav2_oracle_answers_match_three_humans_and_wrong_answers_cost(root):
    task, docs = loaded(root, "vqav2_val")
    for doc in docs:
        answer = task.ground_truth_prediction(doc).text
        assert sum(a == answer for a in doc.truth["answers"]) >= 3 and official_vqa_score(answer, doc.truth["answers"]) == 1
    words = {d.doc_id: Prediction(d.doc_id, {"1": "one", "2": "two", "3": "three"}.get(d.truth["multiple_choice_answer"], "")) for d in docs}
    result = task.score(docs, words, OPTIONS)  # number words normalise to digits
    assert result.metrics["answer_type_number"] == 1.0 and result.metrics["answer_type_other"] == 0.0


def test_requests_are_what_llava_sends(root):
    for name, question_file in (("gqa_testdev", "gqa/llava_gqa_testdev_balanced.jsonl"), ("pope", "pope/llava_pope_test.jsonl"),
                                ("mme", "MME/llava_mme.jsonl"), ("seed_bench", "seed_bench/llava-seed-bench.jsonl"),
                                ("textvqa_val", "textvqa/llava_textvqa_val_v051_ocr.jsonl"),
                                ("vqav2_testdev", "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl"),
                                ("vizwiz_test", "vizwiz/llava_test.jsonl")):
        task, docs = loaded(root, name)
        lines = [line for line in read_jsonl(root / EVAL / question_file) if name != "seed_bench" or "video" not in line["image"]]
        requests = [task.requests(doc) for doc in docs]
        assert [r.prompt for r in requests] == [line["text"] for line in lines], name
        assert {r.kind for r in requests} == {"answer"}
        assert [Path(r.image_path).name for r in requests] == [Path(line["image"]).name for line in lines]
        assert all(Path(r.image_path).is_file() and r.height > 0 for r in requests)
    task, docs = loaded(root, "mmbench_dev")
    table = pd.read_table(root / EVAL / "mmbench/mmbench_dev_20230712.tsv")
    for doc, (_, row) in zip(docs, table.iterrows()):  # model_vqa_mmbench.py --single-pred-prompt
        options = [row[c] for c in "ABCD" if not pd.isna(row[c])]
        question = (row["hint"] + "\n" if not pd.isna(row["hint"]) else "") + row["question"]
        question += "".join(f"\n{letter}. {option}" for letter, option in zip("ABCD", options))
        assert task.requests(doc).prompt == question + CHOICE and task.requests(doc).inputs["options"] == dict(zip("ABCD", options))
    task, docs = loaded(root, "scienceqa_img")
    converted = json.loads((root / EVAL / "scienceqa/llava_test_CQM-A.json").read_text())
    asked = [e["conversations"][0]["value"].replace("<image>", "").strip() + CHOICE for e in converted if "image" in e]
    assert [task.requests(doc).prompt for doc in docs] == asked and len(asked) < len(converted)


def llava_answer_lines(task, docs, answers):
    """What llava/eval/model_vqa*.py write: one line per question, `prompt` the question as it was asked."""
    lines = []
    for doc in docs:
        question_id = doc.truth.get("index", doc.truth.get("question_id", doc.doc_id))
        if task.suite.name in ("textvqa", "mme"):
            question_id = doc.truth["image_id"] if task.suite.name == "mme" else json.loads(doc.truth["llava_key"])[0]
        lines.append({"question_id": question_id, "prompt": task.requests(doc).prompt, "text": answers[doc.doc_id].text,
                      "answer_id": "a1", "model_id": "llava-v1.5-7b", "metadata": {}})
    return lines


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_llava_answer_files_and_gcgbench_jsonl_score_like_the_oracle(root, tmp_path, name):
    task, docs = loaded(root, name)
    answers = oracle(task, docs)
    path = tmp_path / "merge.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in reversed(llava_answer_lines(task, docs, answers))))
    from_llava = task.read_predictions(path, docs)
    assert {k: v.text for k, v in from_llava.items()} == {k: v.text for k, v in answers.items()}
    assert task.score(docs, from_llava, OPTIONS).metrics == task.score(docs, answers, OPTIONS).metrics
    write_prediction_jsonl(tmp_path / "p.jsonl", list(answers.values()))
    assert task.read_predictions(tmp_path / "p.jsonl", docs) == answers


def test_official_vqa_results_are_scored_as_the_server_would(root, tmp_path):
    task, docs = loaded(root, "vqav2_val")
    results = [{"question_id": int(d.doc_id), "answer": task.ground_truth_prediction(d).text} for d in docs]
    (tmp_path / "results.json").write_text(json.dumps(results))
    predictions = task.read_predictions(tmp_path / "results.json", docs)
    result = task.score(docs, predictions, OPTIONS)
    assert result.metric_config["protocol"] == "official" and result.metrics["accuracy"] == 1.0
    llava = task.score(docs, predictions, dataclasses.replace(OPTIONS, protocol="llava"))
    assert llava.metric_config["protocol"] == "llava"
    with pytest.raises(InputError, match=r"--protocol: vqav2 is scored under llava, official, lmms_eval, not 'flmm'"):
        task.score(docs, predictions, dataclasses.replace(OPTIONS, protocol="flmm"))
    pope, pope_docs = loaded(root, "pope")
    with pytest.raises(InputError, match=r"--protocol: pope is scored under llava, not 'official'"):
        pope.score(pope_docs, oracle(pope, pope_docs), dataclasses.replace(OPTIONS, protocol="official"))


def test_pope_always_yes_and_a_broken_mmbench_rotation(root):
    task, docs = loaded(root, "pope")
    result = task.score(docs, {d.doc_id: Prediction(d.doc_id, "Yes, there is.") for d in docs}, OPTIONS)
    assert result.metrics["recall"] == 1.0 and result.metrics["precision"] == 0.5 and result.metrics["yes_ratio"] == 1.0
    task, docs = loaded(root, "mmbench_dev")
    answers = oracle(task, docs)
    copy = next(d for d in docs if d.truth["index"] >= 1_000_000)  # one wrong rotation fails its whole group
    answers[copy.doc_id] = Prediction(copy.doc_id, next(letter for letter in copy.inputs["options"] if letter != copy.truth["answer"]))
    result = task.score(docs, answers, OPTIONS)
    groups = {d.truth["index"] % 1_000_000 for d in docs}
    assert result.metrics["accuracy"] == pytest.approx(1 - 1 / len(groups))
    assert [row["correct"] for row in result.per_sample if row["doc_id"] == copy.doc_id] == [False]


def test_mme_subset_that_cuts_a_pair_is_scored_with_a_note(root):
    task, docs = loaded(root, "mme")
    result = task.score(docs[:3], oracle(task, docs[:3]), OPTIONS)
    assert result.n_samples == 2 and "1 question(s) whose image pair is incomplete" in result.notes[0]


@pytest.mark.parametrize("name", SERVER)
def test_server_splits_score_nothing_and_say_where_to_upload(root, name):
    task, docs = loaded(root, name)
    result = task.score(docs, oracle(task, docs), OPTIONS)
    assert result.metrics == {} and result.n_samples == len(docs) and "evaluation server" in result.notes[0]
    assert task.upload_name() in result.notes[0] and result.metric_config["scoring"] == "server"
    assert set(task.submission_files(docs, oracle(task, docs))) == {task.upload_name()}
    pope, pope_docs = loaded(root, "pope")
    assert pope.submission_files(pope_docs, oracle(pope, pope_docs)) == {}  # scored locally: no upload


def test_vqav2_upload_is_what_convert_vqav2_for_submission_writes(root):
    task, docs = loaded(root, "vqav2_testdev")
    answers = {d.doc_id: Prediction(d.doc_id, f"Two {d.doc_id[-1]}.") for d in docs}
    upload = task.submission_files(docs, answers)["vqav2_testdev_upload.json"]
    results = {line["question_id"]: line["text"] for line in llava_answer_lines(task, docs, answers)}
    test_split = read_jsonl(root / EVAL / "vqav2/llava_vqav2_mscoco_test2015.jsonl")
    expected = [{"question_id": x["question_id"], "answer": evalai_normalize(results[x["question_id"]]) if x["question_id"] in results else ""}
                for x in test_split]
    assert upload == json.dumps(expected).encode()
    assert len(expected) > len(docs) and {row["answer"] for row in expected} >= {"", "2 0"}


def test_vizwiz_upload_is_what_convert_vizwiz_for_submission_writes(root):
    task, docs = loaded(root, "vizwiz_test")
    answers = {d.doc_id: Prediction(d.doc_id, "Unanswerable" if int(d.doc_id) % 3 == 2 else "Three.") for d in docs}
    upload = task.submission_files(docs, answers)["vizwiz_test_upload.json"]
    expected = [{"image": x["image"], "answer": evalai_normalize(answers[str(x["question_id"])].text)}
                for x in read_jsonl(root / EVAL / "vizwiz/llava_test.jsonl")]
    assert upload == json.dumps(expected).encode() and expected[2]["answer"] == "unanswerable"


def test_mmbench_upload_has_the_columns_convert_mmbench_for_submission_writes(root):
    task, docs = loaded(root, "mmbench_test")
    answers = {d.doc_id: Prediction(d.doc_id, f"The answer is {d.doc_id[:1]}") for d in docs}
    (name, content), = task.submission_files(docs, answers).items()
    tsv = root / EVAL / "mmbench/mmbench_test_20230712.tsv"
    df = pd.read_table(tsv)  # the converter, step by step
    expected = df.copy().drop(columns=["hint", "category", "source", "image", "comment", "l2-category"])
    expected.insert(6, "prediction", None)
    for line in llava_answer_lines(task, docs, answers):
        expected.loc[df["index"] == line["question_id"], "prediction"] = line["text"]
    if name.endswith(".xlsx"):
        found = pd.read_excel(io.BytesIO(content), engine="openpyxl")
    else:  # openpyxl missing: the same table as TSV
        assert name == "mmbench_test_upload.tsv"
        found = pd.read_table(io.BytesIO(content))
    assert list(found.columns) == ["index", "question", "A", "B", "C", "D", "prediction", "split"]
    pd.testing.assert_frame_equal(found, expected.astype(found.dtypes.to_dict()), check_dtype=False)


def test_unknown_suite_and_empty_split_are_errors(root):
    task = get_task("pope")
    broken = type(task)(dataclasses.replace(task.spec, params={"suite": "okvqa"}))
    with pytest.raises(InputError, match=r"pope\.yaml: params\.suite: unknown VQA suite 'okvqa'"):
        broken.docs(DataPaths(root))
    with pytest.raises(InputError, match="no questions to score"):
        task.score([], {}, OPTIONS)
    with pytest.raises(InputError, match=r"nowhere/playground/data/eval/gqa/data/testdev_balanced_questions\.json: GQA questions not found"):
        get_task("gqa_testdev").docs(DataPaths(root / "nowhere"))
