# The two commands: `make demo` runs the offline demo, `make test` the tests.
# Both create or reuse the virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/sbx demo --out results/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check speechbrain_xfer recipes tests benchmarks
	$(VENV)/bin/ruff format --check speechbrain_xfer recipes tests benchmarks

test: lint
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) results
