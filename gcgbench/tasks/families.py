"""The task families: which class implements each, and which metrics each computes (light: no family code is
imported here, so task files are checked, and tasks listed, without numpy, pycocotools or Java).

A task file's `metrics:` must name metrics of its family (for VQA, of its suite); `higher_is_better` says how
each reads (None: neither, e.g. POPE's yes ratio), and is recorded in results.json for publishing.
"""

from __future__ import annotations

from typing import Mapping

from gcgbench.api.errors import InputError

FAMILIES = {
    "gcg": "gcgbench.tasks.gcg:GcgTask",
    "res": "gcgbench.tasks.res:ResTask",
    "reasonseg": "gcgbench.tasks.reasonseg:ReasonSegTask",
    "gres": "gcgbench.tasks.gres:GresTask",
    "png": "gcgbench.tasks.png:PngTask",
    "instances": "gcgbench.tasks.instances:InstancesTask",
    "captioning": "gcgbench.tasks.captioning:CaptioningTask",
    "vqa": "gcgbench.tasks.vqa:VqaTask",
}

RES_PRECISIONS = tuple(f"precision_{threshold}" for threshold in ("0.5", "0.6", "0.7", "0.8", "0.9"))
FAMILY_METRICS: dict[str, tuple[str, ...]] = {
    "gcg": ("meteor", "cider", "ap50", "miou", "mask_recall", "mask_recall_max_matching"),
    "res": ("ciou", "giou", *RES_PRECISIONS),
    "reasonseg": ("giou", "ciou"),
    "gres": ("giou", "ciou", "n_acc", "t_acc", "precision_0.7", "precision_0.8", "precision_0.9"),
    "png": ("ar", "ar_things", "ar_stuff", "ar_singular", "ar_plural", "acc_0.5"),
    "instances": ("ap", "ap50", "ap75", "point_accuracy"),
    "captioning": ("meteor", "cider"),
}
POPE_CATEGORIES = ("adversarial", "popular", "random")
POPE_METRICS = ("f1", "accuracy", "precision", "recall", "yes_ratio")
VQA_SUITE_METRICS: dict[str, tuple[str, ...]] = {
    "vqav2": ("accuracy", "answer_type_yes_no", "answer_type_number", "answer_type_other"),
    "textvqa": ("accuracy",),
    "gqa": ("accuracy", "binary", "open"),
    "vizwiz": ("accuracy",),
    "pope": (*POPE_METRICS, *(f"{category}_{metric}" for category in POPE_CATEGORIES for metric in POPE_METRICS)),
    "mme": ("perception", "cognition"),
    "mmbench": ("accuracy",),
    "scienceqa": ("img_accuracy", "accuracy"),
    "seed": ("accuracy",),
}
NEITHER_DIRECTION = ("yes_ratio",)   # a bias indicator: 0.5 is balanced, neither end is better


def family_metrics(family: str, params: Mapping[str, object]) -> tuple[str, ...]:
    """The metrics a task of `family` (with these params) can report."""
    if family == "vqa":
        return VQA_SUITE_METRICS.get(str(params.get("suite")), ())
    return FAMILY_METRICS.get(family, ())


def higher_is_better(metric: str) -> bool | None:
    return None if metric.endswith(NEITHER_DIRECTION) else True


def check_metrics(source: str, family: str, params: Mapping[str, object], metrics: tuple[str, ...]) -> None:
    """Every listed metric is one the family computes, listed once; else an InputError naming the file."""
    if family not in FAMILIES:
        raise InputError(source, "family", f"unknown family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    known = family_metrics(family, params)
    what = f"suite {params.get('suite')!r}" if family == "vqa" else f"family {family}"
    if not known:
        raise InputError(source, "params.suite", f"unknown VQA suite {params.get('suite')!r}; known: "
                                                 f"{', '.join(sorted(VQA_SUITE_METRICS))}")
    unknown = [metric for metric in metrics if metric not in known]
    if unknown:
        raise InputError(source, "metrics", f"{', '.join(unknown)} not computed by {what}; it computes {', '.join(known)}")
    if len(set(metrics)) != len(metrics):
        raise InputError(source, "metrics", "a metric is listed twice")
    if not metrics:
        raise InputError(source, "metrics", "list at least the headline metric")
