"""METEOR 1.5 (`java -jar meteor-1.5.jar - - -stdio -l en -norm`, as pycocoevalcap runs it) in Python.

`MeteorScorer().score(hypotheses, references)` gives every segment's statistics and score and the corpus
score, equal to the jar's SCORE and EVAL lines. Modules: `resources` (the jar's word lists and paraphrase
table), `normalize` (`-norm`), `matchers` (exact, stem, synonym, paraphrase), `aligner` (beam search),
`scorer` (statistics, scores, aggregate), `java` (the Java string behaviours the results depend on).
"""

from gcgbench.metrics.meteor.scorer import MeteorOutput, MeteorScorer, corpus_score, meteor_score

__all__ = ["MeteorOutput", "MeteorScorer", "corpus_score", "meteor_score"]
