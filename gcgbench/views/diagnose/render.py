"""The diagnosis page of one task: tables and matplotlib charts (`templates/diagnose.html.j2`, autoescaped).

A page is a list of sections, each a title, an optional chart (data-URI PNG), a table (columns, rows of
strings) and a note; the family modules' summaries become sections here, so the template knows no family.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from gcgbench.html.pages import render
from gcgbench.views.diagnose.gcg import BUCKETS
from gcgbench.views.diagnose.plots import bars

TOP_IMAGES = 40


def points(value: float | None, signed: bool = False) -> str:
    """A fraction as the papers print it (×100, one decimal); None/NaN as n/a."""
    if value is None or value != value:
        return "n/a"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def section(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], chart: str | None = None,
            note: str | None = None, key: str | None = None) -> dict[str, Any]:
    return {"title": title, "columns": list(columns), "rows": [[str(cell) for cell in row] for row in rows],
            "chart": chart, "note": note, "key": key or title.lower().replace(" ", "_")}


def gcg_sections(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    buckets = summary["buckets"]
    names = [name for name in BUCKETS if buckets[name]["count"] or name in ("not_mentioned", "not_grounded",
                                                                            "wrong_place", "right_place_other_words",
                                                                            "early_stop")]
    chart = bars("Missed GT phrases by bucket", [name.replace("_", " ") for name in names],
                 {"share of GT phrases (%)": [100 * buckets[n]["share"] for n in names],
                  "recall its fix adds (points)": [None if buckets[n]["delta_recall"] is None
                                                   else 100 * buckets[n]["delta_recall"] for n in names]},
                 "points", horizontal=True)
    sections = [section(
        "Where the misses went", ["bucket", "what it means", "GT phrases", "share", "recall if fixed alone"],
        [[name, buckets[name]["description"], buckets[name]["count"], points(buckets[name]["share"]),
          points(buckets[name]["delta_recall"], signed=True)] for name in BUCKETS],
        chart, f"{summary['misses']} of {summary['labels']} GT phrases missed (mask recall "
               f"{points(summary['mask_recall'])}); the counts sum to the misses. 'Recall if fixed alone' reruns "
               "the official metric with that error oracle-fixed (as TIDE's ΔAP).", key="buckets")]
    titles = {"object_size": "Recall by object size (COCO areas: small < 32², medium < 96² px)",
              "objects_in_image": "Recall by number of GT phrases in the image",
              "phrase_frequency": "Recall by how often the phrase occurs in the split"}
    for name, groups in summary["breakdowns"].items():
        chart = bars(titles[name], [g["group"] for g in groups], {"recall (%)": [100 * g["recall"] for g in groups]},
                     "mask recall (%)", counts=[f"n={g['labels']}" for g in groups])
        sections.append(section(titles[name], ["group", "GT phrases", "matched", "recall", "misses by bucket"],
                                [[g["group"], g["labels"], g["matched"], points(g["recall"]),
                                  ", ".join(f"{b.replace('_', ' ')} {c}" for b, c in g["buckets"].items())]
                                 for g in groups], chart, key=name))
    hallucinated = summary["hallucinated"]
    histogram = hallucinated["images_by_count"]
    chart = bars("Images by number of hallucinated phrases", list(histogram), {"images": list(histogram.values())},
                 "images") if histogram else None
    sections.append(section(
        "Hallucinated phrases", ["hallucinated phrases in the image", "images"], list(histogram.items()), chart,
        f"{hallucinated['total']} of {hallucinated['predicted_phrases']} predicted phrases have similarity < 0.5 to "
        f"every GT phrase of their image ({hallucinated['per_image_mean']:.2f} per image).", key="hallucinated"))
    worst = sorted(summary["per_image"], key=lambda image: -(len(image["labels"]) - image["official_matches"]))
    rows = [[image["doc_id"], f"{image['official_matches']}/{len(image['labels'])}",
             "; ".join(f"{label['text']} → {label['bucket'] or 'matched'}" for label in image["labels"]),
             ", ".join(image["hallucinated"]) or "-"] for image in worst[:TOP_IMAGES]]
    sections.append(section(f"Images with the most misses (top {min(TOP_IMAGES, len(worst))})",
                            ["image", "matched", "GT phrases → bucket", "hallucinated"], rows, key="images"))
    return sections


def res_sections(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    titles = {"expression_length": "IoU by expression length", "object_size": "IoU by object size (COCO areas)",
              "location_word": "IoU with and without a location word (left, right, top, behind, …)"}
    sections = []
    for name, groups in summary["breakdowns"].items():
        chart = bars(titles[name], [g["group"] for g in groups],
                     {"mean IoU (%)": [100 * g["mean_iou"] for g in groups], "cIoU (%)": [100 * g["ciou"] for g in groups]},
                     "%", counts=[f"n={g['n']}" for g in groups])
        sections.append(section(titles[name], ["group", "expressions", "mean IoU", "cIoU", "IoU ≥ 0.5"],
                                [[g["group"], g["n"], points(g["mean_iou"]), points(g["ciou"]),
                                  points(g["share_iou_50"])] for g in groups], chart, key=name))
    failures = summary["failures"]
    sections.append(section("Failures (IoU < 0.5)", ["failures", "empty masks", "share empty", "area unknown"],
                            [[failures["count"], failures["empty_masks"], points(failures["empty_share"]),
                              failures["unknown_predicted_area"]]], key="failures",
                            note="Location words used: " + (", ".join(f"{w} ({n})" for w, n in
                                                                      summary["location_words_used"].items()) or "none")))
    return sections


def png_sections(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    titles = {"bucket": "AR by bucket", "segment_count": "AR by number of GT segments",
              "object_size": "AR by GT area (COCO areas)"}
    sections = []
    for name, groups in summary["breakdowns"].items():
        chart = bars(titles[name], [g["group"] for g in groups], {"AR (%)": [100 * g["ar"] for g in groups]},
                     "average recall (%)", counts=[f"n={g['n']}" for g in groups])
        sections.append(section(titles[name], ["group", "phrases", "AR", "mean IoU"],
                                [[g["group"], g["n"], points(g["ar"]), points(g["mean_iou"])] for g in groups],
                                chart, key=name))
    return sections


SECTIONS = {"gcg": gcg_sections, "res": res_sections, "png": png_sections}


def headline(family: str, summary: Mapping[str, Any], stored: Mapping[str, float]) -> list[str]:
    if family == "gcg":
        return [f"mask recall {points(summary['mask_recall'])} (run: {points(stored.get('mask_recall'))})",
                f"max-matching recall {points(summary['mask_recall_max_matching'])}", f"AP50 {points(summary['ap50'])}",
                f"mIoU {points(summary['miou'])}", f"{summary['labels']} GT phrases"]
    if family == "res" and summary.get("overall"):
        overall = summary["overall"]
        return [f"cIoU {points(overall['ciou'])} (run: {points(stored.get('ciou'))})",
                f"mean IoU {points(overall['mean_iou'])}", f"{overall['n']} expressions"]
    if family == "png" and summary.get("overall"):
        overall = summary["overall"][0]
        return [f"AR {points(overall['ar'])} (run: {points(stored.get('ar'))})", f"{overall['n']} phrases"]
    return []


def diagnosis_page(reader, diagnosis) -> str:
    """The HTML page of one `TaskDiagnosis` of the run `reader` reads."""
    return render("diagnose.html.j2", title=f"gcgbench diagnose: {reader.label} · {diagnosis.task}",
                  run=str(reader.path), model=reader.label, task=diagnosis.task, version=reader.version(diagnosis.task),
                  protocol=reader.protocol(diagnosis.task), notes=diagnosis.notes,
                  headline=headline(diagnosis.family, diagnosis.summary, reader.metrics(diagnosis.task)),
                  sections=SECTIONS[diagnosis.family](diagnosis.summary))
