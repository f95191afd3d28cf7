# SSABNet: two commands for a newcomer — `make demo` (the main job) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the browser test (selenium + headless Chromium) needs.
APT_PACKAGES := chromium chromium-driver
DEMO_ARGS ?=

.PHONY: setup system-deps test lint format demo cli-docs notebooks clean

setup: $(STAMP) system-deps

# The venv is (re)built whenever the pins change. torch/torchvision are pinned to releases that
# pip takes from this machine's local wheel store; everything else comes from PyPI.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Installed when missing (CI runs as root); otherwise a clear note: the browser test then fails
# with the same instruction.
system-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver: present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(APT_PACKAGES) (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	else \
		echo "note: chromium/chromedriver missing and not root; the browser test needs them:" \
			"sudo apt-get install -y $(APT_PACKAGES)"; \
	fi

# ruff (style, notebooks included), import-linter (the layer contracts in pyproject.toml,
# drawn in docs/architecture.md), vulture (dead code; scripts/vulture_whitelist.py lists what
# only other tools use) and no '# fmt: skip' (formatting is ruff's).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture ssabnet tests benchmarks notebooks scripts --min-confidence 60
	@! grep -rn --include='*.py' '# fmt: skip' ssabnet tests benchmarks notebooks scripts \
		|| { echo "formatting is ruff's: remove the '# fmt: skip' above"; exit 1; }

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

demo: setup
	$(VENV)/bin/ssabnet demo $(DEMO_ARGS)

# The notebooks are Jupytext .py files; this writes the .ipynb next to them (git-ignored).
notebooks: setup
	$(VENV)/bin/jupytext --to ipynb notebooks/[0-9][0-9]_*.py

cli-docs: setup
	$(PY) scripts/gen_cli_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
