"""Run the two jars pycocoevalcap ships the way it runs them, for whole batches in one JVM each, and
COCOEvalCap's pipeline as GLaMM runs it."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from gcgbench.metrics.meteor.resources import pycocoevalcap_meteor_dir


def jar_meteor(official, hypotheses: list[str], references: list[list[str]]) -> tuple[list[str], list[float], float]:
    """SCORE lines, segment scores and corpus score of pycocoevalcap's own `Meteor().compute_score` (`official`:
    a `Meteor`, one JVM), on the pairs as given (no tokenisation): the SCORE line of each pair, as
    `Meteor._stat` returns it, then the EVAL line's answer."""
    recorded: list[str] = []
    official_stat = official._stat

    def recording_stat(hypothesis: str, refs: list[str]) -> str:
        line = official_stat(hypothesis, refs)
        recorded.append(line)
        return line

    keys = [str(index) for index in range(len(hypotheses))]
    official._stat = recording_stat  # an instance attribute: compute_score itself is the library's
    try:
        corpus, scores = official.compute_score(dict(zip(keys, references)), {k: [h] for k, h in zip(keys, hypotheses)})
    finally:
        del official._stat
    return recorded, [float(score) for score in scores], float(corpus)


def jar_ptb_lines(captions: list[str]) -> list[str]:
    """Raw output lines of `PTBTokenizer -preserveLines -lowerCase` on the captions joined by newlines, as
    pycocoevalcap's `PTBTokenizer.tokenize` calls it (captions must already be free of '\\n')."""
    folder = pycocoevalcap_meteor_dir().parent / "tokenizer"
    handle, name = tempfile.mkstemp(dir=tempfile.gettempdir(), suffix=".txt")
    with os.fdopen(handle, "wb") as stream:
        stream.write("\n".join(captions).encode())
    try:
        command = ["java", "-cp", str(folder / "stanford-corenlp-3.4.1.jar"), "edu.stanford.nlp.process.PTBTokenizer",
                   "-preserveLines", "-lowerCase", name]
        output = subprocess.run(command, capture_output=True, check=True).stdout.decode()
    finally:
        Path(name).unlink()
    return output.split("\n")


def coco_eval_cap(references, predictions, meteor):
    """COCOEvalCap.evaluate() as GLaMM runs it, with only its METEOR and CIDEr scorers (no SPICE download).

    Same objects and sequence: COCO ground truth, `loadRes`, `params['image_id'] = res.getImgIds()`,
    `gts/res = imgToAnns`, PTBTokenizer on each, then `compute_score`, `setEval`, `setImgToEvalImgs`.
    """
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.eval import COCOEvalCap
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    from pycocotools.coco import COCO

    coco = COCO()
    annotations = [{"image_id": i, "caption": c} for i, refs in references.items() for c in refs]
    for number, annotation in enumerate(annotations, start=1):
        annotation["id"] = number
    coco.dataset = {"images": [{"id": i} for i in references], "annotations": annotations}
    coco.createIndex()
    result = coco.loadRes([{"image_id": i, "caption": c} for i, c in predictions.items()])
    evaluator = COCOEvalCap(coco, result)
    evaluator.params["image_id"] = result.getImgIds()
    gts, res = {}, {}
    for image_id in evaluator.params["image_id"]:
        gts[image_id] = evaluator.coco.imgToAnns[image_id]
        res[image_id] = evaluator.cocoRes.imgToAnns[image_id]
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize(gts)
    res = tokenizer.tokenize(res)
    for scorer, method in [(meteor, "METEOR"), (Cider(), "CIDEr")]:
        score, scores = scorer.compute_score(gts, res)
        evaluator.setEval(score, method)
        evaluator.setImgToEvalImgs(scores, gts.keys(), method)
    return evaluator
