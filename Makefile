# SSABNet: two commands for a newcomer — `make demo` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint format demo clean

setup: $(STAMP)

# The venv is (re)built whenever the pins change. torch/torchvision are pinned to releases that
# pip takes from this machine's local wheel store; everything else comes from PyPI.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

demo: setup
	$(VENV)/bin/ssabnet demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
