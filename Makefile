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

# The PostgreSQL pass runs beside the SQLite one: its tests mostly wait (on row locks, on the
# processes and servers they start), so together they take little longer than the SQLite pass alone.
test: system-deps install-dev lint security
	@tmp=$$(mktemp -d); export BUZON_DATA_DIR=$$tmp; \
	pg="$${DATABASE_URL:-}"; unset DATABASE_URL; pgpid=""; \
	if [ -n "$$pg" ]; then \
	  (DATABASE_URL="$$pg" BUZON_DATA_DIR=$$tmp/pg $(BIN)/pytest -m postgres $(PYTEST_ARGS) >$$tmp/postgres.log 2>&1; \
	   echo $$? >$$tmp/postgres.rc) & pgpid=$$!; \
	elif [ "$${BUZON_STRICT_SERVICES:-}" = 1 ]; then echo "DATABASE_URL is required with BUZON_STRICT_SERVICES=1"; exit 1; fi; \
	$(BIN)/pytest -n 2 --dist loadgroup -m "not postgres" $(PYTEST_ARGS); sqlite=$$?; \
	if [ -n "$$pgpid" ]; then wait $$pgpid; echo "== PostgreSQL pass"; cat $$tmp/postgres.log; \
	  [ "$$(cat $$tmp/postgres.rc)" = 0 ] || exit 1; fi; \
	exit $$sqlite

# What a user waits for, end to end, each beside its floor and peers measured in the same run; quick
# by default (BENCH_FULL=1 for full size), then one table (bench/report.py; docs/operations.md keeps
# the latest). The other benches (bench_sync, bench_search, bench_workspace) run on their own.
BENCH_SCRIPTS ?= bench/bench_download.py bench/bench_pipeline.py bench/bench_send.py bench/bench_load.py
bench: install-dev system-deps
	@command -v eatmydata >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq eatmydata >/dev/null \
	  || echo "eatmydata not installed: getmail6 will fsync every message"
	@rm -f var/bench/*.json
	@for script in $(BENCH_SCRIPTS); do echo "== $$script"; $(BIN)/python -u $$script || exit $$?; done
	@echo; $(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
