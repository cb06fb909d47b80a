"""Published numbers the leaderboards start from, transcribed from the papers' tables and the sources cited
below (each entry cites its paper and table) as printed (×100), stored as fractions (value / 100) in `reported`
entries; MME scores stay in MME's points (perception 0-2000, cognition 0-800), as the task reports them.
A number we could not check against its paper or repository carries a note starting "[unconfirmed]".
F-LMM and GLaMM ReasonSeg / gRefCOCO numbers are not seeded: none could be confirmed offline (GLaMM's paper
reports neither benchmark).

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
DIFFLMM_V2 = ("Emergent Visual Grounding in Large Multimodal Models Without Grounding Supervision "
              "(Cao, Gui and Wang, ICCV 2025, arXiv 2410.08209 v2), abstract")
AAS = "attend-and-segment"   # fingerprint `method` of the emergent-grounding rows (leaderboard/emergent.py)

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
             "which one is UMD val (this task) is unverified; check arXiv 2406.05821. A secondary transcription of "
             "F-LMM's Table 1 gives RefCOCO val 76.1 for F-LMM on DeepSeek-VL-7B (75.7 on LLaVA-NeXT-Mistral-7B), so "
             "these are probably DeepSeek-VL-7B's numbers, a base LMM gcgbench's flmm backend does not load")
DIFFLMM_NOTE = ("[paper/seed] headline GCG mask recall of DiffLMM-7B + attend-and-segment (v1; 46.4 in v2/ICCV 2025); "
                "the reference notes do not name the GranD-f split: assumed test, unverified (methods.md §2.9)")
DIFFLMM_V2_NOTE = ("[paper abstract] headline GCG mask recall of DiffLMM + attend-and-segment in the ICCV 2025 version "
                   "(the v2 abstract: 46.4); the GranD-f split is not named in the abstract: assumed test, unverified")
# The a&s paper's per-LMM rows (a&s on off-the-shelf LMMs, arXiv 2410.08209 v1/v2 GCG and RES tables; the
# groundLMM README lists Cambrian-1, LLaVA-NeXT, InternVL-2.5, Qwen2.5-VL under aas/more_models) could not be
# read from this workplace (the tables are images / not in the stored text): NOT seeded, no number invented.
# Transcribe them from the PDF into `reported(..., method=AAS)` entries; docs/leaderboards.md lists them.
AAS_UNCONFIRMED = ("LLaVA-1.5 + a&s", "LLaVA-NeXT + a&s", "Cambrian-1 + a&s", "InternVL2.5 + a&s",
                   "Qwen2.5-VL + a&s")


LISA_REASONSEG = ("LISA: Reasoning Segmentation via Large Language Model (Lai et al., arXiv 2308.00692, CVPR 2024), "
                  "Table 1 (reasoning segmentation)")
REASONSEG_TASKS = ("reasonseg_val", "reasonseg_test_short", "reasonseg_test_long", "reasonseg_test")
# (gIoU, cIoU) per REASONSEG_TASKS column: val, test short-query, test long-query, test overall
REASONSEG_TABLE: dict[str, tuple[tuple[float, float], ...]] = {
    "LISA-7B": ((44.4, 46.0), (37.6, 34.4), (36.6, 34.7), (36.8, 34.1)),
    "LISA-7B (ft)": ((52.9, 54.0), (40.6, 40.6), (49.4, 51.0), (47.3, 48.4)),
    "LISA-13B": ((48.9, 46.9), (39.9, 43.3), (46.4, 46.5), (44.8, 45.8)),
    "LISA-13B (ft)": ((56.2, 62.9), (44.3, 42.0), (54.0, 54.3), (51.7, 51.1)),
    "LISA-7B-LLaVA1.5": ((53.6, 52.3), (47.1, 48.5), (49.2, 48.9), (48.7, 48.8)),
    "LISA-7B-LLaVA1.5 (ft)": ((61.3, 62.9), (48.3, 46.3), (57.9, 59.7), (55.6, 56.9)),
    "LISA-13B-LLaVA1.5": ((57.7, 60.3), (50.8, 50.0), (54.7, 50.9), (53.8, 50.8)),
    "LISA-13B-LLaVA1.5 (ft)": ((65.0, 72.9), (55.4, 50.6), (63.2, 65.3), (61.3, 62.2)),
}
REASONSEG_NOTE = ("[paper/seed] LISA's Table 1 (CVPR 2024 version; 'ft': fine-tuned on the 239 ReasonSeg train samples), "
                  "checked against a markdown transcription of the paper, not against the PDF itself")
GSVA_GRES = ("GSVA: Generalized Segmentation via Multimodal Large Language Models (Xia et al., CVPR 2024): "
             "LeapLabTHU/GSVA README 'Evaluation' logs (fp32 re-runs of Table 1 lines 8 and 10)")
GRES_TASKS = ("gres_grefcoco_val", "gres_grefcoco_testA", "gres_grefcoco_testB")
# (gIoU, cIoU, N-acc, T-acc) ×100 per GRES_TASKS column, as the README's logs print them (fractions there)
GSVA_TABLE: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "GSVA-7B": ((63.47, 61.65, 56.98, 99.54), (69.99, 69.17, 63.39, 98.46), (61.34, 60.26, 58.68, 98.95)),
    "GSVA-7B (ft)": ((66.43, 63.19, 62.56, 99.62), (71.06, 69.87, 65.72, 98.69), (62.20, 60.35, 60.72, 99.10)),
}
GSVA_NOTE = ("scored by GSVA's own solver.py::eval_gres (protocol 'gsva'), not ReLA's evaluator: 'no target' is the "
             "[REJ] token, a target expression answered with [REJ] keeps its mask's I and IoU, IoU = I / (U + 1e-8) "
             "and gIoU = sum / (N + 1e-5); the README says the paper's Table 1 differs slightly (inference precision). "
             "Checkpoints gsva-7b-pt.bin and gsva-7b-ft-gres.bin")

# PNG (png_val) and VQA (LLaVA-1.5's suites). `FLMM_NOTES_SRC` is a secondary source: a paper note summarising
# F-LMM's Table 1 (MME, MMBench, RefCOCO cIoU, PNG AR; one row per base LMM), stored in a public repository
# (en.papernotes.org "CVPR2025/segmentation/f-lmm_grounding_frozen_large_multimodal_models"); not the PDF.
FLMM_NOTES_SRC = ("F-LMM (Wu et al., arXiv 2406.05821, CVPR 2025) Table 1, as transcribed by the paper note "
                  "en.papernotes.org CVPR2025/segmentation/f-lmm_grounding_frozen_large_multimodal_models")
UNCONFIRMED_FLMM = ("[unconfirmed] from a secondary transcription of F-LMM's Table 1 (not checked against the PDF, "
                    "arXiv 2406.05821); F-LMM scores PNG with its own protocol (multiprocess_eval_png.py)")
# F-LMM's Table 1 rows we can attribute to a base LMM: model -> {task: {metric: value}}
FLMM_TABLE: dict[str, dict[str, dict[str, float]]] = {
    "F-LMM (LLaVA-NeXT-Mistral-7B)": {"res_refcoco_val": {"ciou": 75.7}, "png_val": {"ar": 66.5}},
    "F-LMM (DeepSeek-VL-7B)": {"png_val": {"ar": 65.7}},
    "GLaMM-FullScope-7B": {"png_val": {"ar": 55.8}},
    "PixelLM-7B": {"png_val": {"ar": 43.1}},
}
PNG_PAPER = ("Panoptic Narrative Grounding (González et al., ICCV 2021): overall AR in BCV-Uniandes/PNG README; "
             "things/stuff/singular/plural as transcribed in TianyuGoGO/XPNG README")
PNG_NOTE = ("[unconfirmed] overall 55.4 is in BCV-Uniandes/PNG README; the breakdown comes from XPNG's README "
            "table (a later paper's transcription), not checked against the PNG paper")
PNG_BASELINE = {"ar": 55.4, "ar_things": 56.2, "ar_stuff": 54.3, "ar_singular": 56.2, "ar_plural": 48.8}

LLAVA = "LLaVA-1.5 (Liu et al., CVPR 2024): haotian-liu/LLaVA docs/MODEL_ZOO.md, LLaVA-v1.5 table"
LLAVA_NOTE = ("numbers of liuhaotian/llava-v1.5-7b under LLaVA's own scripts (scripts/v1_5/eval); VQAv2 test-dev and "
              "VizWiz test are scored by the evaluation servers")
# (model, task, metric, value): MME perception in points; everything else ×100
LLAVA_VQA: dict[str, tuple[tuple[str, str, float], ...]] = {
    "LLaVA-1.5-7B": (("vqav2_testdev", "accuracy", 78.5), ("gqa_testdev", "accuracy", 62.0),
                     ("vizwiz_test", "accuracy", 50.0), ("scienceqa_img", "img_accuracy", 66.8),
                     ("textvqa_val", "accuracy", 58.2), ("pope", "f1", 85.9), ("mme", "perception", 1510.7),
                     ("mmbench_dev", "accuracy", 64.3)),
    "LLaVA-1.5-7B (LoRA)": (("vqav2_testdev", "accuracy", 79.1), ("gqa_testdev", "accuracy", 63.0),
                            ("vizwiz_test", "accuracy", 47.8), ("scienceqa_img", "img_accuracy", 68.4),
                            ("textvqa_val", "accuracy", 58.2), ("pope", "f1", 86.4), ("mme", "perception", 1476.9),
                            ("mmbench_dev", "accuracy", 66.1)),
}
VQA_TASK_NOTES = {
    "mmbench_dev": "LLaVA scores MMBench dev on the OpenCompass server (ChatGPT-assisted answer extraction); "
                   "gcgbench's mmbench_dev is judge-free exact matching, so a gap of a point or two is expected",
    "pope": "POPE F1 averaged over the adversarial, popular and random categories",
    "mme": "MME perception score (points, 0-2000)",
}
LLAVA_SEED_IMG = 66.1
LLAVA_SEED_NOTE = ("[unconfirmed] SEED-Bench image subset: LLaVA's MODEL_ZOO prints only the all-types score 58.6; 66.1 "
                   "is the image score in microsoft/LLM2CLIP's README ('Llava (Paper)'), 66.2 in sdc17/CrossGET's README")
GLAMM_VQA = {"mme": {"perception": 14.0, "cognition": 9.0}, "mmbench_dev": {"accuracy": 36.8}}
GLAMM_VQA_NOTE = ("[unconfirmed] F-LMM's evaluation of GLaMM-FullScope-7B (MME perception/cognition 14/9, MMBench "
                  "36.8) from a secondary transcription of F-LMM's Table 1; the MMBench split is not stated there")
POINTS_METRICS = {"perception", "cognition"}   # MME: kept in points, as gcgbench's mme task stores them


def fraction(points: float) -> float:
    """A paper's ×100 value as the fraction gcgbench stores (rounded to undo float noise: 16.2 -> 0.162)."""
    return round(points / 100.0, 6)


def stored_value(metric: str, printed: float) -> float:
    """What results.json holds for a printed number: MME's points as they are, everything else as a fraction."""
    return float(printed) if metric in POINTS_METRICS else fraction(printed)


def reported(model: str, task: str, protocol: str, metrics: dict[str, float], citation: str, date: str,
             notes: Sequence[str] = (), method: str | None = None) -> Entry:
    """A published row; `method` (e.g. AAS) goes into the fingerprint, where leaderboard/emergent.py finds it."""
    points = sorted(POINTS_METRICS & set(metrics))
    config = {"points_metrics": ", ".join(points)} if points else {}
    fingerprint = {"name": model, "citation": citation, **({"method": method} if method else {})}
    return Entry(model=model, task=task, task_version="1", protocol=protocol, source="reported",
                 metrics={k: stored_value(k, v) for k, v in metrics.items()},
                 fingerprint=fingerprint, date=date, citation=citation,
                 metric_config=config, notes=tuple(notes))


def seed_entries() -> list[Entry]:
    """Every published number above as a reported entry (task versions 1, the tasks' protocols)."""
    entries = []
    for model, splits in GCG_TABLE.items():
        for task, values in zip(("gcg_val", "gcg_test"), splits):
            notes = [GCG_NOTES[model]] if model in GCG_NOTES else []
            entries.append(reported(model, task, "glamm", dict(zip(GCG_METRICS, values)), GLAMM_GCG, "2024-06", notes))
    entries.append(reported("DiffLMM + a&s", "gcg_test", "glamm", {"mask_recall": 44.2}, DIFFLMM, "2024-10",
                            [DIFFLMM_NOTE], method=AAS))
    entries.append(reported("DiffLMM + a&s (ICCV 2025)", "gcg_test", "glamm", {"mask_recall": 46.4}, DIFFLMM_V2,
                            "2025-10", [DIFFLMM_V2_NOTE], method=AAS))
    for model, row in RES_TABLE.items():
        for task, value in zip(RES_TASKS, row):
            if value is not None:
                entries.append(reported(model, task, "lisa", {"ciou": value}, GLAMM_RES, "2024-06", [RES_NOTE]))
    for task, value in FLMM_RES.items():
        entries.append(reported("F-LMM", task, "flmm", {"ciou": value}, FLMM, "2024-06", [FLMM_NOTE]))
    for model, splits in REASONSEG_TABLE.items():
        for task, (giou, ciou) in zip(REASONSEG_TASKS, splits):
            entries.append(reported(model, task, "lisa", {"giou": giou, "ciou": ciou}, LISA_REASONSEG, "2023-08",
                                    [REASONSEG_NOTE]))
    for model, splits in GSVA_TABLE.items():
        for task, values in zip(GRES_TASKS, splits):
            entries.append(reported(model, task, "gsva", dict(zip(("giou", "ciou", "n_acc", "t_acc"), values)),
                                    GSVA_GRES, "2024-09", [GSVA_NOTE]))
    for model, splits in REGCAP_TABLE.items():
        for task, (meteor, cider) in zip(("regcap_refcocog_val", "regcap_vg_test"), splits):
            metrics = {k: v for k, v in (("meteor", meteor), ("cider", cider)) if v is not None}
            if metrics:
                entries.append(reported(model, task, "glamm", metrics, GLAMM_REGCAP, "2024-06"))
    entries.extend(png_entries())
    entries.extend(vqa_entries())
    return entries


def png_entries() -> list[Entry]:
    """PNG (and F-LMM's per-LMM RefCOCO) numbers: F-LMM's Table 1 rows, the PNG paper's baseline."""
    entries = [reported("PNG baseline (González et al.)", "png_val", "official", PNG_BASELINE, PNG_PAPER, "2021-10",
                        [PNG_NOTE])]
    for model, tasks in FLMM_TABLE.items():
        for task, metrics in tasks.items():
            entries.append(reported(model, task, "flmm", metrics, FLMM_NOTES_SRC, "2024-06", [UNCONFIRMED_FLMM]))
    return entries


def vqa_entries() -> list[Entry]:
    """LLaVA-1.5-7B (full and LoRA) on LLaVA-1.5's suites; GLaMM-FullScope as F-LMM measured it."""
    entries = []
    for model, rows in LLAVA_VQA.items():
        for task, metric, value in rows:
            notes = [LLAVA_NOTE] + ([VQA_TASK_NOTES[task]] if task in VQA_TASK_NOTES else [])
            entries.append(reported(model, task, "llava", {metric: value}, LLAVA, "2023-10", notes))
    entries.append(reported("LLaVA-1.5-7B", "seed_bench", "llava", {"accuracy": LLAVA_SEED_IMG}, LLAVA, "2023-10",
                            [LLAVA_NOTE, LLAVA_SEED_NOTE]))
    for task, metrics in GLAMM_VQA.items():
        entries.append(reported("GLaMM-FullScope-7B", task, "llava", metrics, FLMM_NOTES_SRC, "2024-06", [GLAMM_VQA_NOTE]))
    return entries


def write_seed(directory: Path = DEFAULT_DIRECTORY) -> int:
    """Write the seed entries into `directory` (replacing older copies of them); returns how many."""
    entries = seed_entries()
    add_entries(entries, directory, replace_different=True)
    return len(entries)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIRECTORY
    print(f"wrote {write_seed(target)} reported entries into {target}/")
