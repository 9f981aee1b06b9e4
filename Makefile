# Two commands do all the set-up:  `make demo` (the main job) and `make test` (the test suite).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job: the paper's protocol on the embedded UTD-MHAD (< 10 min on 2 CPU cores).
demo: $(STAMP)
	$(VENV)/bin/dcat demo --out runs/demo

# The whole suite (slow tests included, GPU tests skip themselves without a GPU), then ruff,
# the layer contracts and mypy.
test: $(STAMP)
	$(PY) -m pytest -n 2 -q
	$(PY) -m ruff check src tests benchmarks scripts
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m ruff format --check src tests benchmarks scripts

bench: $(STAMP)
	$(PY) benchmarks/bench_loss.py
	$(PY) benchmarks/bench_transfer.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_experiment.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .ruff_cache .hypothesis runs
