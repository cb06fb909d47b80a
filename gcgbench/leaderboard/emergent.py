"""The emergent-grounding section of the published leaderboards: attend-and-segment rows side by side.

a&s reads grounding out of the attention of LMMs trained without grounding supervision. Its rows live in the GCG,
RES and PNG files like any other; `publish` gathers them into one more table (GCG mask recall and mIoU, RES cIoU,
PNG AR, and the a&s point accuracy of RES/PNG). A row belongs there when it was measured by an a&s backend
(`AAS_BACKENDS`, by fingerprint name) or reported with fingerprint `"method": "attend-and-segment"`
(`seed.reported(..., method=seed.AAS)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gcgbench.leaderboard.files import Entry, Leaderboard

EMERGENT = "emergent"
AAS_BACKENDS = ("llava-as", "difflmm", "aas")
AAS_METHOD = "attend-and-segment"
FAMILIES = ("gcg", "res", "png")


def is_emergent(entry: Entry) -> bool:
    """An a&s row: measured by llava-as / difflmm / aas, or reported with fingerprint method attend-and-segment."""
    fingerprint = entry.fingerprint or {}
    return fingerprint.get("method") == AAS_METHOD or (entry.source == "measured"
                                                       and fingerprint.get("name") in AAS_BACKENDS)


def emergent_board(boards: Sequence[Leaderboard]) -> Leaderboard:
    """Every a&s row of the GCG, RES and PNG boards, as one board of family `emergent` (never saved)."""
    entries = [e for board in boards if board.family in FAMILIES for e in board.entries if is_emergent(e)]
    return Leaderboard(Path(f"{EMERGENT}.json"), EMERGENT, entries)
