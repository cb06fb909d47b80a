"""`gcgbench diagnose`: why a run lost what it lost (docs/diagnose.md).

gcg.py (buckets of missed GCG phrases, oracle fixes, breakdowns), res.py and png.py (breakdowns),
plots.py (charts), render.py (the page), build.py (a run folder in, diagnosis.json and pages out).
"""
