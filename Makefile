# The two commands of the README: `make run` (offline end-to-end job) and `make test`.
# Both create .venv and install the pinned dependencies from pyproject.toml first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test venv clean-runtime

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)
	$(PY) run_offline.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-runtime:
	rm -rf runtime/* logs/*
