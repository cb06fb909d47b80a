# gcgbench developer commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch: the CUDA build where a GPU is present; elsewhere the CPU build (a local wheel on our CI machines).
# Override with e.g. `make install TORCH_SPEC='torch>=2.1'`; the package itself pins no torch build.
TORCH_SPEC ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch>=2.1,torch==2.13.*)

.PHONY: install test demo bench lock clean train-tiny verify-tiny

# pip byte-compiles what it installs one file at a time (2 of the ~3.3 min of a fresh install on 2 cores);
# compileall compiles the same files on every core, skipping the packages' own test suites (a fifth of the
# files, never imported), and our editable sources, which pip leaves alone.
$(BIN)/gcgbench: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile "$(TORCH_SPEC)" -c requirements/constraints.txt -e ".[models,sample,test]"
	$(BIN)/python -m compileall -qq -j 0 -x '/tests/' "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
	    || true  # as pip does, a file that does not compile is left as source (torch ships Python-3.12-only helpers)
	$(BIN)/python -m compileall -qq -j 0 gcgbench
	@touch $@

install: $(BIN)/gcgbench

# Two workers (pytest-xdist), one test file each at a time: module fixtures (a sample root, a reference run)
# are made once, and the tests of one file never run beside each other.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

demo: install
	$(BIN)/gcgbench demo --output out/demo

bench: install
	$(BIN)/python benchmarks/scoring_table.py
	$(BIN)/python benchmarks/runner_overhead.py
	$(BIN)/python benchmarks/attend_segment.py
	$(BIN)/python benchmarks/tiny_models.py
	$(BIN)/python benchmarks/caption_metrics.py
	$(BIN)/python benchmarks/phases.py

# Retrain the shipped tiny checkpoints exactly as they were made (docs/tiny_models.md), ~2.5 h on 2 cores:
# every step of scripts/tiny_recipe.py into out/tiny-train (a finished step is skipped when run again), then the
# shipped folders are copied into gcgbench/checkpoints.
train-tiny: install
	$(BIN)/python scripts/tiny_recipe.py --output out/tiny-train --install

# Retrain into out/retrain and compare the retrained models' sample GCG, RES and PNG scores with the shipped ones.
verify-tiny: install
	$(BIN)/python scripts/verify_tiny.py --output out/retrain

lock: install
	@{ echo "# Versions CI and 'make install' use for everything but torch (torch is chosen by TORCH_SPEC in the Makefile)."; \
	   echo "# Regenerate with: make lock"; \
	   $(BIN)/pip freeze | grep -viE '^(torch==|gcgbench|-e )'; } > requirements/constraints.txt

clean:
	rm -rf $(VENV) out .pytest_cache
