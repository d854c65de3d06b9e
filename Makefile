# The two commands: `make demo` runs the offline demo, `make test` the tests.
# Both create or reuse the virtual environment in .venv, with the exact versions of constraints.txt
# (pyproject.toml states ranges; `make constraints` rewrites the file from .venv after an upgrade).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean constraints

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev,demo,slurm,fused]'
	# The GE2E weights only: resemblyzer's own code (librosa, webrtcvad) is never imported.
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt --no-deps resemblyzer
	touch $@

demo: $(STAMP)
	$(VENV)/bin/sbx demo --out results/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check speechbrain_xfer recipes tests benchmarks
	$(VENV)/bin/ruff format --check speechbrain_xfer recipes tests benchmarks

test: lint
	$(VENV)/bin/python -m pytest

constraints: $(STAMP)
	{ echo "# The exact versions of make demo, make test and CI (pip install -c constraints.txt)."; \
	  echo "# Written by make constraints from a tested .venv; pyproject.toml states the ranges."; \
	  $(VENV)/bin/python -m pip freeze --all --exclude-editable --exclude speechbrain_xfer --exclude pip; } > constraints.txt

clean:
	rm -rf $(VENV) results
