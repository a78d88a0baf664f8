# Two commands matter: `make demo` and `make test`. Both set themselves up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
SYSTEM_STAMP := .venv/.system-packages
# Debian packages the end-to-end tests drive (installed only when running as root, as CI does).
DEBIAN_PACKAGES := prometheus prometheus-alertmanager prometheus-node-exporter chromium bsdutils nats-server wrk

.PHONY: demo test setup system-packages lint typecheck contracts unit bench clean

demo: setup system-packages
	$(BIN)/watchkeeper demo

test: setup system-packages lint typecheck contracts
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --compile-bytecode --python $(BIN)/python --quiet
	touch $@

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	else echo "not root: skipping Debian packages ($(DEBIAN_PACKAGES)); e2e tests skip outside CI, the demo watches the lab directly"; fi

lint: setup
	$(BIN)/ruff check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

contracts: setup
	$(BIN)/lint-imports

unit: setup
	$(BIN)/python -m pytest -m "not e2e"

bench: setup
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
