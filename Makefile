# The two commands the README starts with: `make demo` and `make test`.
# Each sets up a virtual environment in .venv (Python 3.11+) and installs what it needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format dist bench mutate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "connector needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/connector demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The wheel and sdist in dist/ (what the README's install steps install): the code, the mapping
# profiles (`mapping: builtin:default`) and the example config.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# The benchmark (bench/README.md): a synthetic town of 20,000 persons through the real connector
# into a real scim2-server and slapd (first sync, quiet cycle, one person, 1% churn, rollover),
# a town of 100,000 synced in bulk (first sync, quiet cycle, one person), planning at 100,000 and
# the throughput comparison; writes bench/RESULTS.md. About 18 minutes on a 2-core machine.
bench: $(STAMP)
	$(BIN)/python -m bench.run --persons 20000 --plan-persons 100000 --scale-persons 100000 --daemon-persons 100000

# Mutation testing of the safety rules (guard, plan, scope, the protected-identity marking,
# lookup before create) with mutmut; what survives is listed and answered in
# mutation/SURVIVORS.md. Not part of `make test` or CI: 7 to 11 minutes on 2 cores.
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info mutants build dist
