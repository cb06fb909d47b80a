"""Caption metrics without Java vs with: PTB tokenizer and METEOR 1.5, Python vs pycocoevalcap's jars.

    python benchmarks/caption_metrics.py [N ...]     (default: 1000 10000 captions)

Synthetic GCG-like captions (one reference and one prediction per image, 10–30 words, punctuation,
synonyms and inflections so every METEOR stage fires). Each row times one `score_captions` step the way a
split is scored: tokenising references and predictions (one jar call each, as pycocoevalcap does), then
METEOR over the split (one JVM: start, paraphrase table, SCORE lines, EVAL line). The Python METEOR's
paraphrase index is built once per machine (about a minute) before timing; its time is printed if it was
built now. Values are checked equal between the two implementations.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gcgbench.metrics import captions  # noqa: E402

WORDS = ("a an the man woman person boy girl dog dogs cat horse car automobile bus street road building table "
         "chair plate food pizza sitting sits standing stands riding rides ride walking walks holding holds "
         "playing plays big large small little red blue white black green near next to on in at of with and "
         "is are front behind top field grass beach water ocean sea tree trees sky picture photo photograph").split()


def _caption(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(10, 30))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), rng.choice([",", "(", ")", "'s", "--", "-"]))
    return (" ".join(words) + rng.choice([".", " .", "!", ""])).capitalize()


def _perturb(rng: random.Random, caption: str) -> str:
    words = [word for word in caption.split() if rng.random() > 0.15]
    for _ in range(3):
        if words:
            words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def inputs(n: int, seed: int = 0) -> tuple[dict[str, list[str]], dict[str, str]]:
    rng = random.Random(seed)
    references = {f"img{i}": [_caption(rng)] for i in range(n)}
    predictions = {key: _perturb(rng, refs[0]) for key, refs in references.items()}
    return references, predictions


def _time(function, *args):  # noqa: ANN001, ANN202
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


def bench(n: int, java: bool) -> None:
    references, predictions = inputs(n)
    gts_in = {i: [{"caption": c} for c in references[i]] for i in references}
    res_in = {i: [{"caption": predictions[i]}] for i in references}
    rows = []
    for implementation in ("python", "java") if java else ("python",):
        t_gts, gts = _time(captions._tokenize, gts_in, implementation)
        t_res, res = _time(captions._tokenize, res_in, implementation)
        meteor = captions._python_meteor if implementation == "python" else captions._run_meteor
        t_meteor, (score, scores, _) = _time(meteor, gts, res)
        rows.append((implementation, t_gts + t_res, t_meteor, gts, res, score, scores))
    for implementation, t_tok, t_meteor, *_ in rows:
        print(f"{n:>6} captions  {implementation:<6}  PTB tokenize {t_tok:7.2f} s   METEOR {t_meteor:7.2f} s   "
              f"total {t_tok + t_meteor:7.2f} s", flush=True)
    if len(rows) == 2:
        (_, _, _, gts_p, res_p, score_p, scores_p), (_, _, _, gts_j, res_j, score_j, scores_j) = rows
        same = gts_p == gts_j and res_p == res_j and score_p == score_j and list(scores_p) == list(scores_j)
        print(f"{n:>6} captions  python == java (tokens, METEOR per image and corpus): {same}", flush=True)


def main(argv: list[str]) -> None:
    from gcgbench.metrics.meteor.resources import index_dir, paraphrase_index

    had_index = any(index_dir().glob("paraphrase-en-*.sqlite")) if index_dir().is_dir() else False
    seconds, _ = _time(paraphrase_index)
    if not had_index:
        print(f"built the METEOR paraphrase index once: {seconds:.1f} s")
    java = shutil.which("java") is not None
    if not java:
        print("no `java` on PATH: Python timings only")
    for n in [int(arg) for arg in argv] or [1000, 10000]:
        bench(n, java)


if __name__ == "__main__":
    main(sys.argv[1:])
