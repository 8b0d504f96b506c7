# ibkr-stack: `make run` starts the whole stack on the embedded default; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
PY := $(VENV)/bin/python
PROJECTS := $(wildcard pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)

.PHONY: help install run run-prod test lint format bench asyncapi env-example docs postgres-binaries prod-tools chromium clean

help:
	@echo "make run       the whole stack in the foreground (NATS, SQLite, cpsim, services); Ctrl-C stops it"
	@echo "make run-prod  docker-compose.yml's production topology as processes, without Docker; Ctrl-C stops it"
	@echo "make test      every test, against real NATS and PostgreSQL (started if absent), on TEST_WORKERS=4 workers"
	@echo "make lint      ruff and mypy"
	@echo "make bench     the benchmarks, one table"
	@echo "make asyncapi  regenerate docs/asyncapi/*.json (make docs: that and .env.example)"

$(VENV)/.synced: uv.lock $(PROJECTS)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --all-packages --frozen --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	@touch $@

install: $(VENV)/.synced

run: install
	$(PY) -m ibkr_devstack

# docker-compose.yml run as processes (NATS with deploy/nats.conf, PostgreSQL with scram passwords, the
# migrate and provision jobs, each service as its own NATS user, cpsim as the gateway); files in .var/prod.
run-prod: install postgres-binaries prod-tools
	$(PY) -m ibkr_devstack.prod

# PostgreSQL binaries for the test fixtures, when no DATABASE_URL and no initdb (Debian, as root).
postgres-binaries:
	@if [ -z "$$DATABASE_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL binaries missing: install Debian's postgresql package or set DATABASE_URL"; fi; \
	fi

# wget for the production harness: it runs docker-compose.yml's NATS healthcheck as written (Debian, as root).
prod-tools:
	@if ! command -v wget >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wget >/dev/null; \
	  else echo "wget missing: make run-prod and tests/prod run docker-compose.yml's NATS healthcheck with it"; fi; \
	fi

# Chromium for the console's browser tests (Playwright drives Debian's package; its own download cannot
# work here), when absent (Debian, as root).
chromium:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: the console's browser tests need Debian's chromium package"; fi; \
	fi

# The suite mostly waits (the gateway's pacing, timeouts, subprocess starts), so it runs on more
# pytest-xdist workers than cores; worksteal hands each worker a contiguous slice (a module's tests stay
# together, so module fixtures start once) and moves tests to idle workers. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4
PYTEST_ARGS ?=
test: install postgres-binaries prod-tools chromium
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal) $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy libs/*/src tools/*/src services/*/src

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install postgres-binaries
	$(PY) bench/run.py

asyncapi: install
	$(PY) -m ibkr_devstack.asyncapi docs/asyncapi

env-example: install
	$(PY) -m ibkr_devstack.envdoc .env.example

# Every generated document at once.
docs: asyncapi env-example

clean:
	rm -rf .var .pytest_cache .mypy_cache .ruff_cache
