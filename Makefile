# Each target bootstraps .venv on first use: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: synth deploy run test lint unit integration e2e bench bench-cold-start bench-smtp bench-aws-calls bench-cost bench-local bench-side-by-side clean

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

# Two workers: the machines this runs on (and CI) have two cores.
test: lint
	$(VENV)/bin/pytest -n 2 --dist loadscope

unit: $(VENV)/.test-installed
	$(VENV)/bin/pytest tests/unit

integration: $(VENV)/.test-installed
	$(VENV)/bin/pytest tests/integration

e2e: $(VENV)/.test-installed
	$(VENV)/bin/pytest tests/e2e

bench: $(VENV)/.test-installed
	$(PY) bench/cold_start.py
	$(PY) bench/smtp_pool.py
	$(PY) bench/aws_calls.py

bench-cold-start: $(VENV)/.local-installed
	$(PY) bench/cold_start.py

bench-smtp: $(VENV)/.test-installed
	$(PY) bench/smtp_pool.py

bench-aws-calls: $(VENV)/.test-installed
	$(PY) bench/aws_calls.py

# The happy path priced: $ per million messages at list prices (N = 1,000, about two minutes).
bench-cost: $(VENV)/.test-installed
	$(PY) bench/cost.py

# Local mode under volume, from outside: N = 1,000 and 10,000 (a few minutes).
bench-local: $(VENV)/.test-installed
	$(PY) bench/local_e2e.py

# Beside genro-mail-proxy 0.6.10, installed by the bench in .bench/ (never in .venv).
bench-side-by-side: $(VENV)/.test-installed
	$(PY) bench/side_by_side.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The CDK: the Python app (extra "infra") and the CLI pinned in package.json (npm ci).
CDK := CDK_DISABLE_VERSION_CHECK=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 \
	node_modules/.bin/cdk
CDK_FLAGS := --no-notices --no-version-reporting

$(VENV)/.infra-installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install $(PIP_FLAGS) -e '.[infra]'
	touch $@

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Offline, no AWS credentials: the template and assets land in cdk.out/.
synth: $(VENV)/.infra-installed node_modules/.bin/cdk
	$(CDK) synth $(CDK_FLAGS) --quiet

# Needs AWS credentials and a bootstrapped account/region (cdk bootstrap, once).
deploy: $(VENV)/.infra-installed node_modules/.bin/cdk
	$(CDK) deploy $(CDK_FLAGS) --require-approval broadening
