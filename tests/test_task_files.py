"""Task files: `include:` templates, the meaning of `metrics:` checked at load, `higher_is_better` in results."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcgbench.api.errors import InputError
from gcgbench.tasks.families import FAMILY_METRICS, VQA_SUITE_METRICS, higher_is_better
from gcgbench.tasks.registry import all_specs
from gcgbench.tasks.spec import iter_task_files, load_spec, merge_over, task_folder

BASE = """family: res
version: "1"
files: {images: coco_2014/train2014, refs: a.p}
checksums: {refs: null}
prompt: "What is {expression}?"
metrics: [ciou, giou]
params: {protocol: lisa, dataset: refcoco, split_by: unc}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_merge_over_merges_mappings_and_replaces_the_rest():
    base = {"files": {"images": "a", "refs": "b"}, "metrics": ["x", "y"], "params": {"p": {"q": 1, "r": 2}}}
    own = {"files": {"refs": "c"}, "metrics": ["z"], "params": {"p": {"r": 3}}}
    assert merge_over(base, own) == {"files": {"images": "a", "refs": "c"}, "metrics": ["z"],
                                     "params": {"p": {"q": 1, "r": 3}}}
    assert base["files"] == {"images": "a", "refs": "b"}   # inputs untouched


def test_include_chain_gives_the_task_its_template_keys_and_its_own_overrides(tmp_path):
    write(tmp_path, "_base.yaml", BASE)
    write(tmp_path, "_mid.yaml", "include: _base.yaml\nfiles: {refs: Refer_Segm/refcoco+/refs(unc).p}\nparams: {dataset: refcoco+}\n")
    path = write(tmp_path, "task.yaml", "name: t\ninclude: _mid.yaml\ndescription: d\nparams: {split: testA}\n")
    spec = load_spec(path)
    assert spec.files == {"images": "coco_2014/train2014", "refs": "Refer_Segm/refcoco+/refs(unc).p"}
    assert spec.params == {"protocol": "lisa", "dataset": "refcoco+", "split_by": "unc", "split": "testA"}
    assert spec.metrics == ("ciou", "giou") and spec.higher_is_better == {"ciou": True, "giou": True}
    assert [p.name for p in iter_task_files([tmp_path])] == ["task.yaml"]   # templates are not tasks


@pytest.mark.parametrize("text, record, problem", [
    ("name: t\ninclude: _missing.yaml\n", "include", "not found"),
    ("name: t\ninclude: [a]\n", "include", "relative"),
    ("name: t\ninclude: t.yaml\n", "include", "itself"),
])
def test_bad_includes_are_one_line_errors(tmp_path, text, record, problem):
    path = write(tmp_path, "t.yaml", text)
    with pytest.raises(InputError) as caught:
        load_spec(path)
    assert caught.value.record == record and problem in str(caught.value)


def test_circular_includes_are_refused(tmp_path):
    write(tmp_path, "_a.yaml", "include: _b.yaml\n")
    write(tmp_path, "_b.yaml", "include: _a.yaml\n")
    path = write(tmp_path, "t.yaml", "name: t\ninclude: _a.yaml\n")
    with pytest.raises(InputError, match="includes itself"):
        load_spec(path)


@pytest.mark.parametrize("metrics, problem", [
    ("[ciou, mask_recall]", "mask_recall not computed by family res"),
    ("[ciou, ciou]", "listed twice"),
    ("[]", "headline"),
])
def test_metrics_must_be_the_familys(tmp_path, metrics, problem):
    write(tmp_path, "_base.yaml", BASE)
    path = write(tmp_path, "t.yaml", f"name: t\ninclude: _base.yaml\nmetrics: {metrics}\n")
    with pytest.raises(InputError) as caught:
        load_spec(path)
    assert caught.value.record == "metrics" and problem in str(caught.value)


def test_vqa_metrics_are_checked_per_suite(tmp_path):
    text = ("name: t\nfamily: vqa\nversion: '1'\nfiles: {questions: q.jsonl}\nprompt: '{question}'\n"
            "metrics: [accuracy, perception]\nparams: {suite: textvqa}\n")
    with pytest.raises(InputError, match="perception not computed by suite 'textvqa'"):
        load_spec(write(tmp_path, "t.yaml", text))
    with pytest.raises(InputError, match="unknown VQA suite"):
        load_spec(write(tmp_path, "u.yaml", text.replace("textvqa", "nosuch")))


def test_every_builtin_task_lists_its_familys_metrics_headline_first():
    specs = {spec.name: spec for spec in all_specs().values()}
    for spec in specs.values():
        known = VQA_SUITE_METRICS[spec.params["suite"]] if spec.family == "vqa" else FAMILY_METRICS[spec.family]
        assert set(spec.metrics) <= set(known), spec.name
    assert specs["res_refcoco+_testA"].params == {"protocol": "lisa", "dataset": "refcoco+", "split_by": "unc",
                                                  "split": "testA"}
    assert not any(path.name.startswith("_") for path in iter_task_files([task_folder()]))
    assert higher_is_better("yes_ratio") is None and higher_is_better("adversarial_yes_ratio") is None
    assert higher_is_better("ciou") is True


def test_results_record_higher_is_better_of_the_listed_metrics():
    from gcgbench.api.task import TaskResult
    from gcgbench.runner.results import build_results
    from gcgbench.tasks.registry import get_task

    pope = get_task("pope")
    result = TaskResult("pope", "1", {"f1": 0.5, "yes_ratio": 0.4}, 2, {})
    payload = build_results([result], {}, {}, {"pope": pope.spec})
    assert payload["higher_is_better"]["pope"]["f1"] is True
    assert payload["higher_is_better"]["pope"]["yes_ratio"] is None
    assert list(payload["higher_is_better"]["pope"]) == list(pope.spec.metrics)


def test_a_task_list_names_each_task_once_in_order_and_an_empty_one_is_refused():
    from gcgbench.tasks.registry import get_tasks

    chosen = get_tasks(" res_refcoco_val, gcg ,gcg_val,, png_val,res_refcoco_val ")
    assert [task.name for task in chosen] == ["res_refcoco_val", "gcg_val", "png_val"]
    for empty in ("", " , ,"):
        with pytest.raises(InputError, match="names no task"):
            get_tasks(empty)
    with pytest.raises(InputError, match="unknown task 'gcg_vall'"):
        get_tasks("gcg_val,gcg_vall")


def test_run_of_a_task_and_its_alias_generates_and_scores_once(tmp_path, capsys):
    from gcgbench.cli.app import main

    assert main(["run", "--model", "oracle", "--task", "gcg,gcg_val", "--bootstrap", "0", "--no-cache",
                 "--output", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert err.count("gcg_val: 0 of 12 predictions from the cache") == 1, err
    assert err.count("12/12") == 1, err   # one progress bar: the split was generated once (twice before)
    assert (tmp_path / "run" / "predictions" / "gcg_val.jsonl").read_text().count("\n") == 12
