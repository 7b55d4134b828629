# Buzón: `make run` starts everything on SQLite; `make test` runs the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export BUZON_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test lint security typecheck install install-dev system-deps messages bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed messages
install-dev: $(VENV)/.installed-dev messages

# Compiled translations are generated, not committed.
messages: $(VENV)/.installed
	@command -v msgfmt >/dev/null || (apt-get install -y -qq gettext >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq gettext))
	$(BIN)/buzon compilemessages -v 0 --ignore=.venv --ignore=var

run: install
	$(BIN)/buzon migrate --no-input -v 0
	$(BIN)/buzon run --host $(HOST) --port $(PORT)

# Servers the tests talk to (Debian): Dovecot, Chromium, gettext, isync.
system-deps:
	@missing=""; \
	for pkg in dovecot-imapd dovecot-pop3d chromium gettext isync; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint: install-dev
	$(BIN)/ruff check buzon tests bench
	$(BIN)/mypy buzon

# bandit on buzon/ (skips justified in pyproject.toml) and pip-audit on requirements.txt (says how
# many packages it could not check when PyPI's advisory API is unreachable; fails on that only with
# BUZON_STRICT_SERVICES=1).
security: install-dev
	$(BIN)/bandit -q -c pyproject.toml -r buzon --severity-level medium
	$(BIN)/python tests/security/audit_dependencies.py

test: system-deps install-dev lint security
	@tmp=$$(mktemp -d); export BUZON_DATA_DIR=$$tmp; \
	pg="$${DATABASE_URL:-}"; unset DATABASE_URL; \
	$(BIN)/pytest -n 2 --dist loadgroup -m "not postgres" $(PYTEST_ARGS) || exit $$?; \
	if [ -n "$$pg" ]; then DATABASE_URL="$$pg" $(BIN)/pytest -m postgres $(PYTEST_ARGS) || exit $$?; \
	elif [ "$${BUZON_STRICT_SERVICES:-}" = 1 ]; then echo "DATABASE_URL is required with BUZON_STRICT_SERVICES=1"; exit 1; fi

bench: install-dev system-deps
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit $$?; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
