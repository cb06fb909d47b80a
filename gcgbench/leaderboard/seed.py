"""Published numbers the leaderboards start from, transcribed from the papers' tables (each entry cites its
paper and table) as printed (×100), stored as fractions (value / 100) in `reported` entries.

`python -m gcgbench.leaderboard.seed [DIR]` (re)writes them into DIR (default `leaderboards/`),
replacing the reported entries this module defines and leaving every other entry alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from gcgbench.leaderboard.files import DEFAULT_DIRECTORY, Entry, add_entries

GLAMM_GCG = ("GLaMM (Rasheed et al., CVPR 2024), GCG table: mbzuai-oryx/groundingLMM README "
             "images/tables/GCG_Table.png")
GLAMM_RES = ("GLaMM (Rasheed et al., CVPR 2024), referring segmentation table (cIoU): mbzuai-oryx/groundingLMM "
             "README images/tables/ReferSeg_Table.png")
GLAMM_REGCAP = ("GLaMM (Rasheed et al., CVPR 2024), region captioning table: mbzuai-oryx/groundingLMM README "
                "images/tables/Region_Cap_Table.png")
FLMM = "F-LMM: Grounding Frozen Large Multimodal Models (Wu et al., arXiv 2406.05821, CVPR 2025)"
DIFFLMM = ("Emerging Pixel Grounding in Large Multimodal Models Without Grounding Supervision "
           "(Cao, Gui and Wang, arXiv 2410.08209 v1)")

GCG_METRICS = ("meteor", "cider", "ap50", "miou", "mask_recall")
# model: val (METEOR, CIDEr, AP50, mIoU, Recall), test (same)
GCG_TABLE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "BuboGPT": ((17.2, 3.6, 19.1, 54.0, 29.4), (17.1, 3.5, 17.3, 54.1, 27.0)),
    "Kosmos-2": ((16.1, 27.6, 17.1, 55.6, 28.3), (15.8, 27.2, 17.2, 56.8, 29.0)),
    "LISA*": ((13.0, 33.9, 25.2, 62.0, 36.3), (12.9, 32.2, 24.8, 61.7, 35.5)),
    "GLaMM†": ((15.2, 43.1, 28.9, 65.8, 39.6), (14.6, 37.9, 27.2, 64.6, 38.0)),
    "GLaMM": ((16.2, 47.2, 30.8, 66.3, 41.8), (15.8, 43.5, 29.2, 65.6, 40.8)),
}
GCG_NOTES = {
    "LISA*": "LISA* is a modified LISA adapted for GCG (GLaMM's table)",
    "GLaMM†": "GLaMM† is trained without the 1000 HA images (GLaMM's table)",
}

RES_TASKS = ("res_refcoco_val", "res_refcoco_testA", "res_refcoco_testB", "res_refcoco+_val", "res_refcoco+_testA",
             "res_refcoco+_testB", "res_refcocog_val", "res_refcocog_test")
# cIoU per RES_TASKS column; None where the table prints "-"
RES_TABLE: dict[str, tuple[float | None, ...]] = {
    "CRIS": (70.5, 73.2, 66.1, 65.3, 68.1, 53.7, 59.9, 60.4),
    "LAVT": (72.7, 75.8, 68.8, 62.1, 68.4, 55.1, 61.2, 62.1),
    "GRES": (73.8, 76.5, 70.2, 66.0, 71.0, 57.7, 65.0, 66.0),
    "X-Decoder": (None, None, None, None, None, None, 64.6, None),
    "SEEM": (None, None, None, None, None, None, 65.7, None),
    "LISA-7B (ZS)": (74.1, 76.5, 71.1, 62.4, 67.4, 56.5, 66.4, 68.4),
    "LISA-7B (FT)": (74.9, 79.1, 72.3, 65.1, 70.8, 58.1, 67.9, 70.6),
    "GLaMM (ZS)": (54.7, 58.1, 52.2, 42.5, 47.1, 39.5, 54.8, 55.6),
    "GLaMM (FT)": (79.5, 83.2, 76.9, 72.6, 78.7, 64.6, 74.2, 74.9),
}
RES_NOTE = ("as printed in GLaMM's table (RefCOCOg columns are the UMD val(U)/test(U) splits); numbers of other "
            "methods are GLaMM's transcription of their papers")

# model: (RefCOCOg METEOR, CIDEr), (VG METEOR, CIDEr); None where the table prints "-"
REGCAP_TABLE: dict[str, tuple[tuple[float | None, float | None], tuple[float | None, float | None]]] = {
    "GRIT": ((15.2, 71.6), (17.1, 142.0)),
    "Kosmos-2": ((14.1, 62.3), (None, None)),
    "GPT4RoI": ((None, None), (17.4, 145.2)),
    "GLaMM (ZS)": ((15.7, 104.0), (17.0, 127.0)),
    "GLaMM (FT)": ((16.2, 106.0), (19.7, 180.5)),
}

FLMM_RES = {"res_refcoco_val": 76.1, "res_refcoco+_val": 66.4, "res_refcocog_val": 67.1}
FLMM_NOTE = ("[paper/seed] via a benchmark aggregator (methods.md §1.8), base LMM not named; F-LMM's own protocol "
             "(first sentence per object, mmdet RefSegMetric). The aggregator lists RefCOCOg val 67.1 and val(U) 70.1: "
             "which one is UMD val (this task) is unverified; check arXiv 2406.05821")
DIFFLMM_NOTE = ("[paper/seed] headline GCG mask recall of DiffLMM-7B + attend-and-segment (v1; 46.4 in v2/ICCV 2025); "
                "the reference notes do not name the GranD-f split: assumed test, unverified (methods.md §2.9)")


def fraction(points: float) -> float:
    """A paper's ×100 value as the fraction gcgbench stores (rounded to undo float noise: 16.2 -> 0.162)."""
    return round(points / 100.0, 6)


def reported(model: str, task: str, protocol: str, metrics: dict[str, float], citation: str, date: str,
             notes: Sequence[str] = ()) -> Entry:
    return Entry(model=model, task=task, task_version="1", protocol=protocol, source="reported",
                 metrics={k: fraction(v) for k, v in metrics.items()},
                 fingerprint={"name": model, "citation": citation}, date=date, citation=citation, notes=tuple(notes))


def seed_entries() -> list[Entry]:
    """Every published number above as a reported entry (task versions 1, the tasks' protocols)."""
    entries = []
    for model, splits in GCG_TABLE.items():
        for task, values in zip(("gcg_val", "gcg_test"), splits):
            notes = [GCG_NOTES[model]] if model in GCG_NOTES else []
            entries.append(reported(model, task, "glamm", dict(zip(GCG_METRICS, values)), GLAMM_GCG, "2024-06", notes))
    entries.append(reported("DiffLMM + a&s", "gcg_test", "glamm", {"mask_recall": 44.2}, DIFFLMM, "2024-10",
                            [DIFFLMM_NOTE]))
    for model, row in RES_TABLE.items():
        for task, value in zip(RES_TASKS, row):
            if value is not None:
                entries.append(reported(model, task, "lisa", {"ciou": value}, GLAMM_RES, "2024-06", [RES_NOTE]))
    for task, value in FLMM_RES.items():
        entries.append(reported("F-LMM", task, "flmm", {"ciou": value}, FLMM, "2024-06", [FLMM_NOTE]))
    for model, splits in REGCAP_TABLE.items():
        for task, (meteor, cider) in zip(("regcap_refcocog_val", "regcap_vg_test"), splits):
            metrics = {k: v for k, v in (("meteor", meteor), ("cider", cider)) if v is not None}
            if metrics:
                entries.append(reported(model, task, "glamm", metrics, GLAMM_REGCAP, "2024-06"))
    return entries


def write_seed(directory: Path = DEFAULT_DIRECTORY) -> int:
    """Write the seed entries into `directory` (replacing older copies of them); returns how many."""
    entries = seed_entries()
    add_entries(entries, directory, replace_different=True)
    return len(entries)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIRECTORY
    print(f"wrote {write_seed(target)} reported entries into {target}/")
