# retrain: two commands for a newcomer, `make demo` and `make test`; both install first when needed.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help install test test-browser test-topology browser lint demo airflow airflow-stop prod-up prod-down clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# Re-installs when pyproject.toml or the lock file changes (the stamp is older than them).
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 2; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install retrain (editable) with dev extras from the lock file

test: $(STAMP)  ## install if needed, then run the test suite (all but tests/browser)
	$(PY) -m pytest -q --ignore=tests/browser --ignore=tests/topology

CHROMIUM := /usr/bin/chromium

browser:  ## install Debian's chromium for the browser test if missing (apt-get: needs root)
	@if [ -x $(CHROMIUM) ]; then \
		echo "chromium: $(CHROMIUM) ($$($(CHROMIUM) --version 2>/dev/null || echo 'version unknown'))"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "error: $(CHROMIUM) is missing and installing it needs root: run 'sudo make browser' (it runs apt-get update && apt-get install -y chromium)"; \
		exit 2; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

test-browser: $(STAMP) browser  ## the Retraining view in headless chromium against Airflow on the demo (~5 min)
	$(PY) -m pytest -q tests/browser

test-topology: $(STAMP)  ## the production topology (Celery, PostgreSQL, Redis) with faults (~15 min)
	$(PY) -m pytest -q tests/topology

LINTED := retrain retrain_airflow dags plugins tests benchmarks tools

lint: $(STAMP)  ## ruff, ruff format, mypy (strict), import contracts, README in sync
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@$(PY) tools/update_readme.py --check || { echo "README.md is out of date: run $(PY) tools/update_readme.py"; exit 1; }

demo: $(STAMP)  ## install if needed, then run the end-to-end demo story (state in .state/demo)
	$(PY) -m tools.demo --dir .state/demo

airflow: $(STAMP)  ## start Airflow (:8080) + MLflow (:5000) in the background on .state/demo (or .state/airflow)
	$(PY) -m tools.standalone start

airflow-stop:  ## stop what `make airflow` started
	$(PY) -m tools.standalone stop

prod-up: $(STAMP)  ## the production topology natively: Celery workers, PostgreSQL, Redis, MLflow on PostgreSQL (:8080, :5000)
	$(PY) -m tools.topology up

prod-down:  ## stop what `make prod-up` started; drop its databases and empty its Redis db
	$(PY) -m tools.topology down

clean:  ## remove local state (demo data, MLflow and Airflow databases)
	rm -rf .state
