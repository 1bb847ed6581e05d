# Triplane developer entry points. `make help` lists them.
# Every target is idempotent: re-running skips whatever is already in place.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
BENCH_CLIENTS ?= 100
# Extra arguments for pytest / bench_tenancy, e.g. make test ARGS="-k rules -x"
ARGS ?=

# Development settings unless the caller chose others; tests always use their own.
DJANGO_SETTINGS_MODULE ?= config.settings.base
export DJANGO_SETTINGS_MODULE
TEST_SETTINGS := config.settings.test

# The install stamp is named after the requirements' content, so editing either
# file (or pulling someone's edit) reinstalls, and nothing else does.
REQ_SHA := $(shell cat requirements.txt requirements-dev.txt 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_SHA)

# Prefix for commands that talk to PostgreSQL/Redis: export the URLs that
# scripts/services.sh wrote (they may name project-local servers in .var/).
WITH_SERVICES := set -a && . ./.var/env && set +a &&

.PHONY: help venv services services-stop services-status chromium mariadb migrate seed run \
        test lint format check-migrations bench ci clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv and install requirements-dev.txt (skipped when unchanged)
	@:

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python >= 3.11 is required ($(PYTHON) is $$($(PYTHON) -V 2>&1)); use make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV) || \
		{ echo "error: could not create the virtualenv; on Debian/Ubuntu: apt-get install python3-venv"; exit 1; }

$(STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

services: venv ## Make PostgreSQL and Redis reachable (local servers in .var/ if needed)
	@bash scripts/services.sh

services-stop: ## Stop the project-local servers in .var/ (keeps their data)
	@bash scripts/services.sh stop

services-status: ## Show which PostgreSQL/Redis this checkout uses
	@bash scripts/services.sh status

chromium: ## Make sure /usr/bin/chromium exists for the browser tests
	@bash scripts/chromium.sh

mariadb: ## Make sure MariaDB answers at 127.0.0.1:3306 for the client-database tests
	@bash scripts/mariadb.sh

migrate: services ## Migrate public, the tenant template and every client schema
	$(WITH_SERVICES) $(BIN)/python manage.py migrate_schemas --noinput

seed: migrate ## Load the demo data (idempotent; prints the logins)
	$(WITH_SERVICES) $(BIN)/python manage.py seed_demo

run: seed ## Run web on :8000 (PORT=...) + Celery worker + beat; Ctrl-C stops all three
	@$(WITH_SERVICES) PORT=$(PORT) bash scripts/run.sh

test: venv services mariadb chromium ## Run the whole pytest suite (ARGS="..." passes options)
	$(WITH_SERVICES) DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/pytest $(ARGS)

lint: venv ## ruff check + import-linter contracts + mypy (what CI runs)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: venv ## Reformat and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check-migrations: services ## Fail if models changed without a migration
	$(WITH_SERVICES) DJANGO_SETTINGS_MODULE=$(TEST_SETTINGS) $(BIN)/python manage.py makemigrations --check --dry-run

bench: migrate ## Tenancy benchmark: bench_tenancy --clients 100 (BENCH_CLIENTS=...)
	$(WITH_SERVICES) $(BIN)/python manage.py bench_tenancy --clients $(BENCH_CLIENTS) $(ARGS)

ci: ## Run the CI pipeline locally (.ci/run)
	bash .ci/run

clean: ## Remove caches and build output (keeps .venv and .var)
	rm -rf .pytest_cache .ruff_cache .mypy_cache staticfiles test-results
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
