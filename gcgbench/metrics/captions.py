"""Caption quality (METEOR, CIDEr-D) exactly as GLaMM's GCG / region-captioning evaluation gets it.

Official path (GLaMM `eval/gcg/evaluate.py` → pycocoevalcap 1.2 `COCOEvalCap.evaluate`):
1. `gts[id] = coco.imgToAnns[id]`, `res[id] = cocoRes.imgToAnns[id]` for `id` in `params['image_id']`, i.e.
   `{image_id: [{"caption": str, ...}, ...]}`; then `PTBTokenizer().tokenize(gts)` and `.tokenize(res)`
   (Stanford CoreNLP 3.4.1, `-preserveLines -lowerCase`, punctuation tokens dropped; brackets survive as
   `-lrb-`/`-rrb-` because the filter compares the already lower-cased tokens with "-LRB-").
2. METEOR 1.5 (`Meteor().compute_score`): one `SCORE` line per image gives its sufficient statistics, then
   one `EVAL` line gives every segment score and the corpus score. The corpus score is METEOR applied to the
   SUMMED statistics, not the mean of the segment scores.
3. CIDEr-D (`Cider(n=4, sigma=6).compute_score`): per image, for n = 1..4,
   g_n(w) = tf(w) · (log N − log max(1, df(w))), N = number of images scored together and df(w) = number
   of those images whose references contain n-gram w;
   sim_n = Σ_w min(g_n^hyp(w), g_n^ref(w)) · g_n^ref(w) / (‖g_n^hyp‖ ‖g_n^ref‖) · exp(−δ² / 2σ²), σ = 6,
   where δ is the difference of the two captions' BIGRAM counts (an upstream quirk; equal to the word-count
   difference when both captions are non-empty); CIDEr(image) = 10 · mean_n(Σ_refs sim_n) / #refs;
   CIDEr(corpus) = mean over images. The IDF depends on the whole corpus, so the split is scored in ONE call.

This module runs exactly that sequence with pycocoevalcap's `Cider` (and `Rouge`), and for tokenisation and
METEOR either with pycocoevalcap's own Java-backed `PTBTokenizer` and `Meteor` (`tokenizer="java"`,
`meteor="java"`) or with their Python restatements, which give the same output without Java (the default:
`gcgbench.metrics.ptb_tokenize.tokenize_for_image`, `gcgbench.metrics.meteor.MeteorScorer`; the tests
compare them with the jars). It never constructs `Spice`, which downloads CoreNLP models, and never calls
`COCOEvalCap.evaluate`, which constructs it. Deviations, each only where the official output is broken:
- Characters the Java tokenizer reads as line breaks (\\r, \\v, \\f, U+2028, U+2029) become spaces, like
  upstream already does for \\n. Upstream they split the caption into two lines and silently shift every
  later caption onto the wrong image.
- Inputs that crash upstream (missing ids, no images, all references empty) raise `InputError` up front.

Empty captions (and captions made only of punctuation) need no special case: the tokenizer keeps their
(empty) line, METEOR scores an empty hypothesis 0 with statistics `0 <ref length> 0 ...` (its words still
count in the corpus recall denominator), and CIDEr gives it 0.

For the clustered bootstrap (`aggregate`): METEOR is recomputed exactly on each resample from the kept
per-image statistics (`meteor_from_stats`, METEOR 1.5 `MeteorScorer.computeMetrics` / `MeteorStats.addStats`,
checked against the jar's EVAL line), whereas CIDEr is the mean of the per-image scores computed within
the full corpus: the IDF is held fixed, so its interval is an approximation.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from gcgbench.api.errors import GcgbenchError, InputError
from gcgbench.metrics.meteor import MeteorScorer
from gcgbench.metrics.meteor.resources import MeteorResourceError
from gcgbench.api.phases import phase

SUPPORTED_METRICS = ("meteor", "cider", "rouge")
METRIC_KEYS = {"meteor": "meteor", "cider": "cider", "rouge": "rouge_l"}
PHASE_NAMES = {"meteor": "METEOR", "cider": "CIDEr", "rouge": "ROUGE-L"}

# Characters CoreNLP 3.4.1's PTBTokenizer treats as line ends (checked one by one; \x85 and \x1c-\x1f are not).
PTB_LINE_BREAKS = ("\r", "\v", "\f", "\u2028", "\u2029")

# METEOR 1.5, `-l en -norm`, task "rank" (printed by the jar): alpha, beta, gamma, delta and the weights of
# the exact, stem, synonym and paraphrase stages.
METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA, METEOR_DELTA = 0.85, 0.2, 0.6, 0.75
METEOR_MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
METEOR_STATS_LENGTH = 23  # tstLen refLen tstFunc refFunc, 4 × (tstC refC tstF refF), chunks tstWM refWM


IMPLEMENTATIONS = ("python", "java")


class JavaNotFoundError(InputError):
    """No `java` on PATH, and `--meteor java` or `--tokenizer java` asked for the jars."""

    def __init__(self) -> None:
        super().__init__(
            "java",
            None,
            "no Java runtime on PATH; --meteor java / --tokenizer java run pycocoevalcap's jars: install a Java "
            "runtime (e.g. Debian/Ubuntu `apt-get install default-jre-headless`) or use the Python implementations "
            "(the default)",
        )


@dataclass(frozen=True)
class CaptionResult:
    """Scores of one split. Arrays in `per_image` follow `image_ids` (the order of `references`).

    `corpus` holds the values the official script prints: METEOR's aggregate, mean CIDEr-D, mean ROUGE-L.
    `meteor_stats` (n_images × 23) are METEOR's per-image sufficient statistics, used by `aggregate`.
    `tokenized_*` are the PTB-tokenised captions the scorers saw; `seconds` the wall time of each step.
    """

    image_ids: tuple[str, ...]
    corpus: dict[str, float]
    per_image: dict[str, np.ndarray]
    meteor_stats: np.ndarray | None = None
    tokenized_references: dict[str, list[str]] = field(default_factory=dict)
    tokenized_predictions: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Corpus values and `{image_id: {metric: value}}`, JSON-serialisable."""
        per_image = {
            image_id: {key: float(values[index]) for key, values in self.per_image.items()}
            for index, image_id in enumerate(self.image_ids)
        }
        return {"corpus": dict(self.corpus), "per_image": per_image}


def require_java() -> str:
    """Path of the `java` executable; `JavaNotFoundError` (one line, how to install) when there is none."""
    java = shutil.which("java")
    if java is None:
        raise JavaNotFoundError()
    return java


def score_captions(
    references: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    metrics: Sequence[str] = ("meteor", "cider"),
    *,
    references_source: str = "references",
    predictions_source: str = "predictions",
    meteor: str = "python",
    tokenizer: str = "python",
) -> CaptionResult:
    """Score one predicted caption per image against its reference captions, over the whole split at once.

    `metrics` ⊆ {"meteor", "cider", "rouge"} (result keys `meteor`, `cider`, `rouge_l`). The image ids of
    both mappings must be the same set (`InputError` names the first id missing on either side);
    `*_source` names the inputs in error messages (e.g. file paths). `meteor`, `tokenizer`: "python" (no
    Java) or "java" (pycocoevalcap's jars); both give the same numbers.
    """
    unknown = [name for name in metrics if name not in SUPPORTED_METRICS]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {SUPPORTED_METRICS}, got {tuple(metrics)}")
    for name, value in (("meteor", meteor), ("tokenizer", tokenizer)):
        if value not in IMPLEMENTATIONS:
            raise ValueError(f"{name} must be one of {IMPLEMENTATIONS}, got {value!r}")
    image_ids = _validated_image_ids(references, predictions, references_source, predictions_source)
    if tokenizer == "java" or (meteor == "java" and "meteor" in metrics):
        require_java()

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    # The dict shape COCOEvalCap builds, in its order (params['image_id'] follows the ground-truth images).
    with phase("PTB tokenization"):
        gts = _tokenize({i: [{"caption": _one_line(c)} for c in references[i]] for i in image_ids}, tokenizer)
        res = _tokenize({i: [{"caption": _one_line(predictions[i])}] for i in image_ids}, tokenizer)
    seconds["tokenize"] = time.perf_counter() - started
    if "cider" in metrics and not any(caption.split() for i in image_ids for caption in gts[i]):
        raise InputError(references_source, None, "every reference caption is empty after PTB tokenisation")

    corpus: dict[str, float] = {}
    per_image: dict[str, np.ndarray] = {}
    meteor_stats = None
    for name in dict.fromkeys(metrics):
        started = time.perf_counter()
        with phase(PHASE_NAMES[name]):
            if name == "meteor" and meteor == "python":
                score, scores, meteor_stats = _python_meteor(gts, res)
            elif name == "meteor":
                score, scores, meteor_stats = _run_meteor(gts, res)
            elif name == "cider":
                from pycocoevalcap.cider.cider import Cider

                score, scores = Cider().compute_score(gts, res)
            else:
                from pycocoevalcap.rouge.rouge import Rouge

                score, scores = Rouge().compute_score(gts, res)
        seconds[name] = time.perf_counter() - started
        corpus[METRIC_KEYS[name]] = float(score)
        per_image[METRIC_KEYS[name]] = np.asarray(scores, dtype=np.float64).reshape(len(image_ids))

    if meteor_stats is not None and not _agrees(meteor_from_stats(meteor_stats), corpus["meteor"]):
        warnings.warn("METEOR statistics do not reproduce the jar's corpus score; resampled METEOR is approximate")
        meteor_stats = None  # unknown METEOR configuration: `aggregate` falls back to the approximation
    tokenized_predictions = {image_id: captions[0] for image_id, captions in res.items()}
    return CaptionResult(image_ids, corpus, per_image, meteor_stats, gts, tokenized_predictions, seconds)


def meteor_from_stats(stats: np.ndarray) -> float:
    """METEOR 1.5 score of the segments whose statistics are the rows of `stats` (or of one 23-vector).

    Aggregation (`MeteorStats.addStats`): every column is summed, except that a segment's chunks are left
    out when it matches perfectly (all test and reference words matched in one chunk). Score
    (`MeteorScorer.computeMetrics`), with δ = 0.75 and module weights w_s:
    P = Σ_s w_s(δ·tstContent_s + (1−δ)·tstFunction_s) / (δ·(tstLen − tstFunc) + (1−δ)·tstFunc), R likewise;
    Fmean = 1 / ((1−α)/P + α/R); frag = 0 if perfect else chunks / ((tstWordMatches + refWordMatches) / 2);
    METEOR = max(0, Fmean · (1 − γ·frag^β)), and 0 where that is NaN (empty test or reference).
    """
    rows = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    stages = rows[:, 4:20].reshape(len(rows), 4, 4)  # stage × (tstContent, refContent, tstFunc, refFunc)
    test_matched = stages[:, :, 0].sum(axis=1) + stages[:, :, 2].sum(axis=1)
    ref_matched = stages[:, :, 1].sum(axis=1) + stages[:, :, 3].sum(axis=1)
    chunks = rows[:, 20]
    perfect = (test_matched == rows[:, 0]) & (ref_matched == rows[:, 1]) & (chunks == 1.0)
    total = rows.sum(axis=0)  # integer counts: exact in float64, whatever the order
    return _meteor_score(
        test_len=total[0],
        ref_len=total[1],
        test_func=total[2],
        ref_func=total[3],
        stages=stages.sum(axis=0),
        chunks=float(chunks[~perfect].sum()),
        test_word_matches=total[21],
        ref_word_matches=total[22],
    )


def aggregate(result: CaptionResult, indices: np.ndarray) -> dict[str, float]:
    """Corpus values recomputed on a resample `indices` (positions in `result.image_ids`, repeats allowed).

    - `meteor`: exact: METEOR of the resampled images' summed statistics (`meteor_from_stats`), i.e. what
      the jar's EVAL line would return for that list of images. If the statistics were not kept (they did
      not reproduce the jar's score), the approximation corpus + mean(resampled segments) − mean(segments).
    - `cider`, `rouge_l`: mean of the resampled per-image scores. For CIDEr this is an approximation: every
      image keeps the score it got with the IDF of the full split (a real rescoring of a resample, with
      duplicated images, would change document frequencies).
    Meant as the `statistic` of `gcgbench.metrics.stats.bootstrap_ci` with one cluster per image.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        return {key: float("nan") for key in result.per_image}
    values: dict[str, float] = {}
    for key, scores in result.per_image.items():
        if key == "meteor" and result.meteor_stats is not None:
            values[key] = meteor_from_stats(result.meteor_stats[indices])
        elif key == "meteor":
            values[key] = result.corpus["meteor"] + float(np.mean(scores[indices]) - np.mean(scores))
        else:
            values[key] = float(np.mean(scores[indices]))
    return values


# --------------------------------------------------------------------------------------------- internals


def _validated_image_ids(
    references: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    references_source: str,
    predictions_source: str,
) -> tuple[str, ...]:
    if not references:
        raise InputError(references_source, None, "no images to score")
    for image_id, captions in references.items():
        if image_id not in predictions:
            raise InputError(predictions_source, f"image {image_id!r}", f"no prediction (it is in {references_source})")
        if isinstance(captions, str) or not isinstance(captions, Sequence) or len(captions) == 0:
            raise InputError(references_source, f"image {image_id!r}", "references must be a non-empty list of strings")
        if not all(isinstance(caption, str) for caption in captions):
            raise InputError(references_source, f"image {image_id!r}", "every reference caption must be a string")
    for image_id, caption in predictions.items():
        if image_id not in references:
            raise InputError(predictions_source, f"image {image_id!r}", f"not in {references_source}")
        if not isinstance(caption, str):
            problem = f"caption must be a string, got {type(caption).__name__}"
            raise InputError(predictions_source, f"image {image_id!r}", problem)
    return tuple(references)


def _one_line(caption: str) -> str:
    for line_break in PTB_LINE_BREAKS:
        caption = caption.replace(line_break, " ")
    return caption


def _tokenize(captions_for_image: dict[str, list[dict[str, str]]], implementation: str) -> dict[str, list[str]]:
    """pycocoevalcap's PTBTokenizer (or its Python restatement), plus a check that every caption came back."""
    if implementation == "python":
        from gcgbench.metrics.ptb_tokenize import tokenize_for_image

        tokenized = tokenize_for_image(captions_for_image)
    else:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        try:
            tokenized = PTBTokenizer().tokenize(captions_for_image)
        except OSError as error:  # it writes its input file next to the jar, inside site-packages
            raise GcgbenchError(f"PTB tokenizer (pycocoevalcap) could not run: {error}") from error
    for image_id, captions in captions_for_image.items():
        if len(tokenized.get(image_id, ())) != len(captions):
            raise GcgbenchError(
                f"PTB tokenizer returned no line for image {image_id!r}; "
                "did `java -cp stanford-corenlp-3.4.1.jar` fail?"
            )
    return tokenized


def _python_meteor(gts: dict[str, list[str]], res: dict[str, list[str]]) -> tuple[float, list[float], np.ndarray]:
    """`Meteor().compute_score(gts, res)` in Python (`gcgbench.metrics.meteor`): same order, same values."""

    image_ids = list(gts)
    try:
        output = MeteorScorer().score([res[i][0] for i in image_ids], [gts[i] for i in image_ids])
    except MeteorResourceError as error:
        raise GcgbenchError(f"METEOR (Python) could not load its resources: {error}") from error
    stats = np.array(output.stats, dtype=np.float64).reshape(len(image_ids), METEOR_STATS_LENGTH)
    return output.score, output.scores, stats


def _run_meteor(gts: dict[str, list[str]], res: dict[str, list[str]]) -> tuple[float, list[float], np.ndarray]:
    """pycocoevalcap's `Meteor().compute_score`, also keeping each image's SCORE-line statistics."""
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    recorded: list[str] = []
    official_stat = meteor._stat

    def recording_stat(hypothesis: str, references: list[str]) -> str:
        line = official_stat(hypothesis, references)
        recorded.append(line)
        return line

    meteor._stat = recording_stat  # instance attribute: compute_score itself is untouched
    try:
        score, scores = meteor.compute_score(gts, res)
    except (ValueError, OSError) as error:  # the jar died: readline() gave b"" or the pipe broke
        if meteor.lock.locked():
            meteor.lock.release()  # compute_score holds it; Meteor.__del__ would wait for it forever
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()
        stderr = meteor.meteor_p.stderr.read().decode(errors="replace").strip().splitlines()
        raise GcgbenchError(f"METEOR (java -jar meteor-1.5.jar) failed: {stderr[-1] if stderr else error}") from error
    finally:
        del meteor._stat
        _stop_meteor(meteor)
    stats = np.array([[float(value) for value in line.split()] for line in recorded], dtype=np.float64)
    return score, scores, stats.reshape(len(recorded), METEOR_STATS_LENGTH)


def _stop_meteor(meteor: Any) -> None:
    """End METEOR's JVM now, whatever state `compute_score` was left in.

    Meteor has no close(), and its `__del__` first acquires `meteor.lock`, which `compute_score` still
    holds when it was interrupted (Ctrl-C while waiting for the jar): calling it then blocks forever. So:
    kill the JVM first (closing stdin first could block flushing into a JVM that waits for us to read its
    output), reap it, close the pipes, and release the lock so the `__del__` that runs at collection
    returns at once.
    """
    process = meteor.meteor_p
    with contextlib.suppress(OSError):
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        with contextlib.suppress(OSError, ValueError):  # flushing into the dead JVM fails; the pipe still closes
            stream.close()
    if meteor.lock.locked():
        meteor.lock.release()


def _meteor_score(
    test_len: float,
    ref_len: float,
    test_func: float,
    ref_func: float,
    stages: np.ndarray,
    chunks: float,
    test_word_matches: float,
    ref_word_matches: float,
) -> float:
    """`MeteorScorer.computeMetrics` in IEEE double arithmetic, same operation order as the jar."""
    delta, alpha = METEOR_DELTA, METEOR_ALPHA
    with np.errstate(divide="ignore", invalid="ignore"):
        test_weighted_len = np.float64(delta * (test_len - test_func)) + (1.0 - delta) * test_func
        ref_weighted_len = np.float64(delta * (ref_len - ref_func)) + (1.0 - delta) * ref_func
        test_matches = ref_matches = np.float64(0.0)
        for stage, weight in enumerate(METEOR_MODULE_WEIGHTS):
            test_matches += stages[stage, 0] * weight * delta
        for stage, weight in enumerate(METEOR_MODULE_WEIGHTS):
            ref_matches += stages[stage, 1] * weight * delta
        for stage, weight in enumerate(METEOR_MODULE_WEIGHTS):
            test_matches += stages[stage, 2] * weight * (1.0 - delta)
        for stage, weight in enumerate(METEOR_MODULE_WEIGHTS):
            ref_matches += stages[stage, 3] * weight * (1.0 - delta)
        precision = test_matches / test_weighted_len
        recall = ref_matches / ref_weighted_len
        f_mean = np.float64(1.0) / (((1.0 - alpha) / precision) + (alpha / recall))
        perfect = (
            stages[:, 0].sum() + stages[:, 2].sum() == test_len
            and stages[:, 1].sum() + stages[:, 3].sum() == ref_len
            and chunks == 1.0
        )
        fragmentation = 0.0 if perfect else np.float64(chunks) / ((test_word_matches + ref_word_matches) / 2.0)
        score = f_mean * (1.0 - METEOR_GAMMA * np.power(fragmentation, METEOR_BETA))
    return 0.0 if np.isnan(score) else float(max(score, 0.0))


def _agrees(ours: float, official: float) -> bool:
    return abs(ours - official) <= 1e-9
