"""`replay` of a prediction file that covers more docs than the run asks for (`--limit`, a torchrun
rank's shard) works; `score` stays strict: every doc exactly one prediction, unknown doc ids an error
(issue 15, item 5)."""

from __future__ import annotations

import json

import pytest

from gcgbench.api.errors import InputError
from gcgbench.cli.app import main
from gcgbench.data.predictions import predictions_beyond_docs, read_prediction_jsonl
from gcgbench.data.sample import write_sample
from gcgbench.runner.shard import Shard
from gcgbench.tasks.registry import get_task
from gcgbench.api.task import DataPaths

TASK = "res_refcoco_val"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("sample"), n_images=8)


@pytest.fixture(scope="module")
def full_run(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    assert main(["infer", "--model", "oracle", "--task", TASK, "--data-root", str(sample), "--output", str(out),
                 "--no-cache"]) == 0
    return out


def lines(folder):
    return (folder / "predictions" / f"{TASK}.jsonl").read_text().splitlines()


def test_replay_with_limit_takes_the_docs_it_asks_for(sample, full_run, tmp_path):
    assert len(lines(full_run)) > 2
    assert main(["infer", "--model", "replay", "--model-args", f"predictions={full_run}", "--task", TASK,
                 "--data-root", str(sample), "--limit", "2", "--output", str(tmp_path), "--no-cache"]) == 0
    assert lines(tmp_path) == lines(full_run)[:2]


def test_replay_serves_a_torchrun_shard(sample, full_run):
    from gcgbench.models.replay import ReplayBackend

    task = get_task(TASK)
    docs = task.docs(DataPaths(sample))
    mine = Shard(1, 2, 0).take(docs)
    backend = ReplayBackend(full_run)
    backend.prepare(task, mine)
    assert set(backend._answers) == {doc.doc_id for doc in mine} and len(mine) < len(docs)


def test_score_still_refuses_unknown_doc_ids_and_missing_docs(sample, full_run, tmp_path, capsys):
    extra = json.loads(lines(full_run)[0])
    extra["doc_id"] = "no_such_doc"
    path = tmp_path / "extra.jsonl"
    path.write_text("\n".join(lines(full_run) + [json.dumps(extra)]) + "\n")
    assert main(["score", "--task", TASK, "--predictions", str(path), "--data-root", str(sample),
                 "--bootstrap", "0"]) == 2
    assert "'no_such_doc' is not a doc of this task" in capsys.readouterr().err
    docs = get_task(TASK).docs(DataPaths(sample))
    with pytest.raises(InputError, match="is not a doc of this task"):
        read_prediction_jsonl(path, docs)
    with predictions_beyond_docs():  # the replay relaxation: skipped, but every doc asked for is needed
        assert len(read_prediction_jsonl(path, docs)) == len(docs)
        short = tmp_path / "short.jsonl"
        short.write_text("\n".join(lines(full_run)[1:]) + "\n")
        with pytest.raises(InputError, match="have no prediction"):
            read_prediction_jsonl(short, docs)
    with pytest.raises(InputError, match="is not a doc of this task"):  # the relaxation ends with the block
        read_prediction_jsonl(path, docs[:1])
