"""Scoring benchmarks: one case per process, so peak memory (max RSS) belongs to that case alone.

    python benchmarks/scoring.py CASE N     prints one JSON line {case, n, seconds, peak_rss_mb, ...}

Cases build synthetic inputs at GranD-f-like image sizes (480×640): GT masks are random ellipses and
rectangles, predictions are jittered copies with some dropped and some spurious, so IoUs spread over
[0, 1] and matching does real work. Input construction is not timed.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gcgbench.api.types import RLE, Doc, Phrase, Prediction  # noqa: E402

HEIGHT, WIDTH = 480, 640
WORDS = ["red", "blue", "large", "small", "dog", "cat", "car", "tree", "person", "building", "sky", "road"]


def _shape(rng: np.random.Generator, jitter: float = 0.0, base: tuple | None = None) -> tuple:
    if base is None:
        cy, cx = rng.uniform(40, HEIGHT - 40), rng.uniform(40, WIDTH - 40)
        ry, rx = rng.uniform(15, 120), rng.uniform(15, 160)
        return (cy, cx, ry, rx, bool(rng.random() < 0.5))
    cy, cx, ry, rx, ellipse = base
    scale = 1 + rng.normal(0, jitter)
    return (cy + rng.normal(0, jitter * ry), cx + rng.normal(0, jitter * rx), ry * scale, rx * scale, ellipse)


def _rasterise(shape: tuple) -> RLE:
    cy, cx, ry, rx, ellipse = shape
    ys, xs = np.ogrid[:HEIGHT, :WIDTH]
    if ellipse:
        mask = ((ys - cy) / max(ry, 1)) ** 2 + ((xs - cx) / max(rx, 1)) ** 2 <= 1
    else:
        mask = (np.abs(ys - cy) <= ry) & (np.abs(xs - cx) <= rx)
    return RLE.from_mask(mask)


def _phrase_text(rng: np.random.Generator) -> str:
    return " ".join(["a", *rng.choice(WORDS, size=2, replace=False)])


def gcg_inputs(n_images: int, seed: int = 0) -> tuple[list[Doc], dict[str, Prediction]]:
    """n_images docs with 2–6 GT phrases each; predictions keep ~80% of them (jittered) plus ~0.5 spurious."""
    rng = np.random.default_rng(seed)
    # a pool of pre-rasterised masks keeps input building fast; each doc draws from it
    pool = []
    for _ in range(200):
        base = _shape(rng)
        pool.append((_rasterise(base), _rasterise(_shape(rng, 0.15, base))))
    docs, predictions = [], {}
    for index in range(n_images):
        doc_id = f"sa_{index:08d}"
        picks = rng.choice(len(pool), size=int(rng.integers(2, 7)), replace=False)
        texts = [_phrase_text(rng) for _ in picks]
        gt = tuple(Phrase(text, (pool[p][0],)) for text, p in zip(texts, picks))
        predicted = [Phrase(text if rng.random() < 0.8 else _phrase_text(rng), (pool[p][1],))
                     for text, p in zip(texts, picks) if rng.random() < 0.8]
        if rng.random() < 0.5:
            predicted.append(Phrase(_phrase_text(rng), (pool[int(rng.integers(len(pool)))][1],)))
        caption = " ".join(texts)
        docs.append(Doc(doc_id, None, HEIGHT, WIDTH, phrases=gt, truth={"caption": caption, "captions": [caption]}))
        predictions[doc_id] = Prediction(doc_id, " ".join(p.text for p in predicted), tuple(predicted))
    return docs, predictions


class BagOfWordsEncoder:
    """Benchmark stand-in for BERT: counts of vocabulary words (similarity cost is not what we time)."""

    name = "bag-of-words (benchmark)"

    def encode(self, texts):
        return np.array([[text.split().count(word) + 0.1 for word in WORDS] for text in texts], dtype=np.float32)


def case_gcg_masks(n: int) -> dict:
    from gcgbench.metrics.gcg import score_gcg_masks

    docs, predictions = gcg_inputs(n)
    started = time.perf_counter()
    result = score_gcg_masks(docs, predictions, BagOfWordsEncoder())
    return {"seconds": time.perf_counter() - started, "metrics": result.metrics()}


def case_gcg_full(n: int) -> dict:
    """The whole `gcg_val` scoring path: masks, METEOR (the Python default) + CIDEr, 1000-resample bootstrap."""
    from gcgbench.api.task import ScoringOptions
    from gcgbench.tasks import gcg as gcg_task
    from gcgbench.tasks.registry import get_task

    docs, predictions = gcg_inputs(n)
    gcg_task.phrase_encoder = lambda _: BagOfWordsEncoder()  # no BERT offline; encoding is not what we time
    started = time.perf_counter()
    result = get_task("gcg_val").score(docs, predictions, ScoringOptions(text_model="bench"))
    return {"seconds": time.perf_counter() - started, "metrics": result.metrics}


def case_gcg_official(n: int) -> dict:
    """Our literal restatement of GLaMM evaluate.py (dense masks, per-pair loops), mIoU + recall + AP50."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import official_gcg

    docs, predictions = gcg_inputs(n)
    images = [
        official_gcg.DenseImage(
            doc.doc_id, doc.height, doc.width,
            [p.text for p in doc.phrases], [m.decode() for m in doc.masks()],
            [p.text for p in predictions[doc.doc_id].phrases], [m.decode() for m in predictions[doc.doc_id].masks()],
        )
        for doc in docs
    ]
    similarity = official_gcg.official_cosine(BagOfWordsEncoder().encode)
    started = time.perf_counter()
    metrics = {"ap50": official_gcg.official_ap50(images), "miou": official_gcg.official_miou(images),
               "mask_recall": official_gcg.official_recall(images, similarity)}
    return {"seconds": time.perf_counter() - started, "metrics": metrics}


def case_res(n: int) -> dict:
    from gcgbench.metrics import res

    rng = np.random.default_rng(1)
    pool = []
    for _ in range(200):
        base = _shape(rng)
        pool.append((_rasterise(base), _rasterise(_shape(rng, 0.15, base))))
    samples = [res.ResSample(f"e{i}", f"img{i // 3}", pool[i % 200][1], pool[i % 200][0]) for i in range(n)]
    started = time.perf_counter()
    result = res.evaluate(samples)
    return {"seconds": time.perf_counter() - started, "metrics": result.metrics}


def case_png(n: int) -> dict:
    from gcgbench.metrics import png

    rng = np.random.default_rng(2)
    pool = []
    for _ in range(200):
        base = _shape(rng)
        pool.append((_rasterise(base), _rasterise(_shape(rng, 0.15, base))))
    phrases = [png.PngPhrase(f"n{i // 5}", f"img{i // 5}", i, pool[i % 200][1], pool[i % 200][0],
                             (bool(i % 3),) * (1 + i % 2), bool(i % 2)) for i in range(n)]
    started = time.perf_counter()
    result = png.evaluate(phrases)
    return {"seconds": time.perf_counter() - started, "metrics": result.metrics}


CASES = {"gcg_masks": case_gcg_masks, "gcg_full": case_gcg_full, "gcg_official": case_gcg_official,
         "res": case_res, "png": case_png}


if __name__ == "__main__":
    name, size = sys.argv[1], int(sys.argv[2])
    outcome = CASES[name](size)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": name, "n": size, "seconds": outcome["seconds"], "peak_rss_mb": peak_mb,
                      "metrics": {k: round(float(v), 6) for k, v in outcome["metrics"].items()}}))
