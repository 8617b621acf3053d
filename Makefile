# One entry point for people and CI alike: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m jobengine.demo

lint: $(STAMP)
	$(BIN)/ruff check jobengine tests bench
	$(BIN)/ruff format --check jobengine tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) lint
	$(BIN)/python -m pytest -n 2 --timeout=300 tests

# The peers (PgQueuer, Procrastinate, Chancy, Huey) get a virtualenv of their own.
PEERS := bench/.venv-peers
PEERS_STAMP := $(PEERS)/.installed

$(PEERS_STAMP): bench/peers/requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet --upgrade pip
	$(PEERS)/bin/pip install --quiet -r bench/peers/requirements.txt
	touch $(PEERS_STAMP)

# `make bench` (15-25 minutes) or `make bench QUICK=1` (about 2): writes bench/RESULTS.md.
bench: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench compare $(if $(filter 1 yes true,$(QUICK)),--quick)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
