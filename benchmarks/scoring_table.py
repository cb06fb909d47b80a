"""`make bench`: scoring time and peak memory at 1,000 and 10,000 images, printed as a table.

Each case runs in its own process (benchmarks/scoring.py) so its peak RSS is its own. The last column
is time(10×) / time(1×): scoring must scale linearly, so it should stay near 10.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
PLAN = [
    ("gcg_masks", "GCG masks: AP50, mIoU, recall, strict recall", (1000, 10000)),
    ("gcg_full", "GCG task: masks + METEOR + CIDEr + 1000-resample bootstrap", (1000, 10000)),
    ("gcg_official", "GCG masks, literal official algorithm (dense numpy)", (100, 1000)),
    ("res", "RES: cIoU, gIoU, precision@0.5-0.9", (1000, 10000)),
    ("png", "PNG: average recall, 4 buckets", (1000, 10000)),
]


def run_case(case: str, size: int) -> dict:
    done = subprocess.run([sys.executable, str(HERE / "scoring.py"), case, str(size)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", nargs="*", default=[case for case, _, _ in PLAN])
    chosen = parser.parse_args().cases
    table = Table(title="gcgbench scoring benchmarks (synthetic 480×640 images)")
    for column in ("case", "what", "n", "seconds", "ms / image", "peak RSS MB", "n", "seconds", "peak RSS MB", "time ratio"):
        table.add_column(column, justify="left" if column in ("case", "what") else "right")
    for case, what, (small, large) in PLAN:
        if case not in chosen:
            continue
        first, second = run_case(case, small), run_case(case, large)
        table.add_row(
            case, what,
            str(small), f"{first['seconds']:.2f}", f"{1000 * first['seconds'] / small:.3f}", f"{first['peak_rss_mb']:.0f}",
            str(large), f"{second['seconds']:.2f}", f"{second['peak_rss_mb']:.0f}",
            f"{second['seconds'] / first['seconds']:.1f}× for {large // small}× images",
        )
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
