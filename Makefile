# Two commands on a fresh machine (Python 3.11): `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install worker beat clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[worker,dev]'
	touch $@

install: $(VENV)/.installed

# Web server (HTTP + websockets) and, with no broker configured, a GPU worker thread in the
# same process: SQLite, in-memory broker and channel layer, CPU, the tiny model.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py prepare_models
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# A separate GPU worker process for pool $(POOL) (generation/pools.toml), for when
# REDIS_URL (or CELERY_BROKER_URL) is set; `make beat` runs the periodic tasks (reaper).
POOL ?= cpu
worker: install
	$(PY) -m celery -A config worker -Q gpu.$(POOL) --pool solo --concurrency 1 --hostname $(POOL)@%h --loglevel INFO

beat: install
	$(PY) -m celery -A config beat --loglevel INFO

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
