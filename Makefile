# Each target bootstraps .venv on first use: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: run test lint unit integration e2e bench clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "mailproxy needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip

# Local mode needs the runtime and moto/aiosmtpd only, never the CDK.
$(VENV)/.local-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install $(PIP_FLAGS) -e '.[local]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install $(PIP_FLAGS) -e '.[test]'
	touch $@ $(VENV)/.local-installed

run: $(VENV)/.local-installed
	$(PY) -m infra.local

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

unit: $(VENV)/.test-installed
	$(VENV)/bin/pytest tests/unit

integration: $(VENV)/.test-installed
	$(VENV)/bin/pytest tests/integration

e2e: $(VENV)/.test-installed
	$(VENV)/bin/pytest tests/e2e

bench: $(VENV)/.local-installed
	$(PY) bench/cold_start.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
