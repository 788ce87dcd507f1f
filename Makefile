# Each target bootstraps .venv on first use: a fresh clone needs only `make run` or `make test`.
# What lands in .venv comes from uv.lock, the one lock file (the Lambda layer reads it too).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_FLAGS := --quiet --disable-pip-version-check

# uv lives in its own small venv, apart from .venv: `uv sync` removes from .venv whatever the
# lock does not list. Pinned, so every machine locks and installs with the same uv.
TOOLS := .venv-tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/bin/uv
# uv makes .venv itself from $(PYTHON); it must never fetch an interpreter of its own.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# infra/layer_bundle.py exports the Lambda layer's pins from uv.lock with this same uv.
export MAILPROXY_UV := $(abspath $(UV))
# --locked: install only what uv.lock pins, and fail (rather than relock) when pyproject.toml
# has moved on without it.
SYNC := $(UV) sync --locked

.PHONY: synth deploy run test lint unit integration e2e bench bench-cold-start bench-smtp bench-aws-calls bench-cost bench-local bench-side-by-side bench-command-log upgrade clean

$(UV):
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "mailproxy needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install $(PIP_FLAGS) uv==$(UV_VERSION)

# A sync is exact (it uninstalls what its extras do not list), so each sentinel voids those
# of the extras it just removed.
# Local mode needs the runtime and moto/aiosmtpd only, never the CDK.
$(VENV)/.local-installed: pyproject.toml uv.lock | $(UV)
	$(SYNC) --extra local
	rm -f $(VENV)/.test-installed $(VENV)/.infra-installed
	touch $@

# The test extra includes local and infra.
$(VENV)/.test-installed: pyproject.toml uv.lock | $(UV)
	$(SYNC) --extra test
	touch $@ $(VENV)/.local-installed $(VENV)/.infra-installed

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

# What recording a call in the command log adds to it (ms and AWS calls per call).
bench-command-log: $(VENV)/.test-installed
	$(PY) bench/command_log.py

# The happy path priced: $ per million messages at list prices (N = 1,000, about two minutes).
bench-cost: $(VENV)/.test-installed
	$(PY) bench/cost.py

# Local mode under volume, from outside: N = 1,000 and 10,000 (a few minutes).
bench-local: $(VENV)/.test-installed
	$(PY) bench/local_e2e.py

# Beside genro-mail-proxy 0.6.10, installed by the bench in .bench/ (never in .venv).
bench-side-by-side: $(VENV)/.test-installed
	$(PY) bench/side_by_side.py

# Newest versions that pyproject.toml allows, for every extra and the Lambda layer at once;
# then `make test`, and commit uv.lock.
upgrade: | $(UV)
	$(UV) lock --upgrade

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

# The CDK: the Python app (extra "infra") and the CLI pinned in package.json (npm ci).
CDK := CDK_DISABLE_VERSION_CHECK=1 JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 \
	node_modules/.bin/cdk
CDK_FLAGS := --no-notices --no-version-reporting

$(VENV)/.infra-installed: pyproject.toml uv.lock | $(UV)
	$(SYNC) --extra infra
	rm -f $(VENV)/.test-installed $(VENV)/.local-installed
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
