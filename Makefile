# Every target creates .venv and installs the project first, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA ?=
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run web worker train evaluate migrate test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the whole service (embedded Redis unless REDIS_URL, gunicorn, one worker) on :8000
run: $(STAMP)
	$(PY) scripts/run.py

## web: gunicorn only (needs REDIS_URL and a migrated database)
web: $(STAMP)
	$(PY) -m gunicorn service.wsgi:app --bind 127.0.0.1:$${PORT:-8000} --workers $${WEB_WORKERS:-2}

## worker: one scoring worker (needs REDIS_URL)
worker: $(STAMP)
	$(PY) -m worker

## migrate: apply database migrations
migrate: $(STAMP)
	$(PY) -m flask --app service db upgrade

## train: train on the starter corpus (+ DATA="file-or-folder ...") and activate the model
train: $(STAMP)
	$(PY) -m models.train $(if $(DATA),--data $(DATA))

## evaluate: metrics of the active model (or MODEL=version) on DATA="file-or-folder ..."
evaluate: $(STAMP)
	$(PY) -m models.evaluate --data $(DATA) $(if $(MODEL),--model $(MODEL))

## test: the whole suite (SQLite, and PostgreSQL when TEST_DATABASE_URL is set)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy
lint: $(STAMP)
	$(PY) -m ruff check service models worker tests scripts
	$(PY) -m mypy

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
