"""Score the bundled sample GCG split twice: ground truth as predictions, and a degraded copy of it.

Shows the scoring path end to end on a fresh machine with no downloads: sample data in GLaMM's layout,
GLaMM-style prediction folders, every GCG metric with its bootstrap interval. (The tiny grounded
models that will replace these hand-made predictions are issue 8.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from gcgbench.api.task import ScoringOptions
from gcgbench.api.types import RLE, Doc, Phrase, Prediction
from gcgbench.cli.render import print_results
from gcgbench.data.grandf import glamm_prediction_json
from gcgbench.data.paths import resolve_data_paths
from gcgbench.runner.results import build_results, environment_config, write_json_atomic
from gcgbench.tasks.registry import get_task


def demo(
    output: Path = typer.Option(Path("out/demo"), "--output", help="Folder for predictions and results."),
    bootstrap: int = typer.Option(200, "--bootstrap", help="Bootstrap resamples for the intervals."),
) -> None:
    console = Console()
    paths = resolve_data_paths(None)
    console.print(f"sample data: {paths.root} (synthetic scenes in the GranD-f layout)")
    task = get_task("gcg_val")
    docs = task.docs(paths)
    for variant, make in (("ground_truth", lambda doc, _: task.ground_truth_prediction(doc)), ("degraded", _degraded)):
        folder = output / variant / "predictions_glamm"
        folder.mkdir(parents=True, exist_ok=True)
        for index, doc in enumerate(docs):
            (folder / f"{doc.doc_id}.json").write_text(json.dumps(glamm_prediction_json(make(doc, index))))
        predictions = task.read_predictions(folder, docs)
        result = task.score(docs, predictions, ScoringOptions(text_model="minilm", bootstrap_resamples=bootstrap))
        config = {"model": f"demo:{variant}", "predictions": str(folder), "data_root": str(paths.root), "seed": 0,
                  **environment_config(task.annotation_files(paths))}
        results = build_results([result], config, timing={})
        console.rule(f"{variant} predictions")
        print_results(console, results)
        write_json_atomic(output / variant / "results.json", results)
    console.print(f"results in {output}/*/results.json")


def _degraded(doc: Doc, index: int) -> Prediction:
    """Masks shifted right by a quarter of their width, every third image loses its last phrase,
    captions lose their last word: each metric should drop, none to zero."""
    phrases = []
    for phrase in doc.phrases:
        if not phrase.masks:
            continue
        mask = phrase.masks[0].decode()
        columns = np.nonzero(mask.any(axis=0))[0]
        shift = max(1, (columns.max() - columns.min() + 1) // 4) if columns.size else 0
        phrases.append(Phrase(phrase.text, (RLE.from_mask(np.roll(mask, shift, axis=1)),)))
    if index % 3 == 0 and phrases:
        phrases.pop()
    caption = " ".join(doc.truth["caption"].split()[:-1])
    return Prediction(doc.doc_id, caption, tuple(phrases))
