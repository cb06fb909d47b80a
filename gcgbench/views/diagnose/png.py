"""Panoptic narrative grounding: average recall by bucket (things/stuff, singular/plural, as the metric
reports), by the number of GT segments a phrase covers, and by its GT area.

AR of a group is the official AR restricted to the group's phrases (`metrics.png.average_recall` on their
IoUs, the protocol's threshold comparison; BCV-Uniandes/PNG `baseline/utils/meters.py::average_accuracy`).
Input: the run's per-sample rows (one per scored phrase: `phrase_id`, IoU — None for NaN —, `plural`,
`thing`) and the docs (`truth["phrases"][k]["segment_is_thing"]`: one flag per segment; the phrase's GT mask).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.types import Doc
from gcgbench.views.diagnose.gcg import size_group
from gcgbench.metrics import png

SEGMENT_GROUPS = ("1 segment", "2 segments", "3 segments", "4+ segments", "unknown")


def segment_group(count: int | None) -> str:
    if count is None:
        return "unknown"
    return "1 segment" if count == 1 else f"{count} segments" if count < 4 else "4+ segments"


def diagnose_png(rows: Sequence[Mapping[str, Any]], docs: Mapping[str, Doc], protocol: str) -> dict[str, Any]:
    """Per-phrase facts (for the viewer) and the grouped AR (JSON-native)."""
    phrases = []
    for row in rows:
        doc = docs.get(str(row["doc_id"]))
        index = int(row["phrase_id"])
        segments, area = None, None
        if doc is not None and index < len(doc.phrases):
            info = (doc.truth.get("phrases") or [])[index] if index < len(doc.truth.get("phrases") or []) else {}
            segments = len(info.get("segment_is_thing") or ()) or None
            masks = doc.phrases[index].masks
            area = masks[0].area() if masks else None
        iou = float("nan") if row.get("iou") is None else float(row["iou"])
        phrases.append({"doc_id": str(row["doc_id"]), "phrase_id": index, "text": row.get("text"), "iou": iou,
                        "thing": bool(row.get("thing")), "plural": bool(row.get("plural")),
                        "segments": segments, "area": area})

    def grouped(key, order) -> list[dict[str, Any]]:
        found: dict[str, list[float]] = {}
        for phrase in phrases:
            found.setdefault(key(phrase), []).append(phrase["iou"])
        names = [*order, *sorted(set(found) - set(order))]
        return [{"group": name, "n": len(found[name]), "ar": png.average_recall(np.array(found[name]), protocol),
                 "mean_iou": float(np.nanmean(found[name])) if not np.isnan(found[name]).all() else float("nan")}
                for name in names if name in found]

    return {
        "protocol": protocol,
        "overall": grouped(lambda p: "all", ["all"]),
        "breakdowns": {
            "bucket": grouped(lambda p: ("thing" if p["thing"] else "stuff") + (" plural" if p["plural"] else " singular"),
                              ["thing singular", "thing plural", "stuff singular", "stuff plural"]),
            "segment_count": grouped(lambda p: segment_group(p["segments"]), SEGMENT_GROUPS),
            "object_size": grouped(lambda p: size_group(p["area"]), ["small", "medium", "large", "no GT mask"]),
        },
        "phrases": phrases,
    }
