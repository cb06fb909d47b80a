"""Viewers of run folders: the HTML run report, `diagnose` (why a score moved) and `compare` (paired differences
and a side-by-side sample viewer). They read runs through `run_reader` and render with `gcgbench.html`."""
