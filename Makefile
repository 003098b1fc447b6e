# The two commands a newcomer needs:  make serve   and   make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install prepare serve test test-postgresql browser services lint bench clean

$(BIN)/mentorly: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Mentorly needs Python 3.11 (the pinned torch wheel); set PYTHON=...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -c requirements.lock -e '.[dev]'
	@# MovieLens-100k ships inside the recbole wheel: fetched, never installed or imported
	$(BIN)/pip download --quiet --no-deps recbole==1.2.1 -d "$${XDG_CACHE_HOME:-$$HOME/.cache}/mentorly/datasets"
	@touch $@

install: $(BIN)/mentorly  ## create .venv and install pinned dependencies

prepare: install  ## bring the database schema up to date, assemble and verify the packaged models, load demo data
	$(BIN)/mentorly db upgrade
	$(BIN)/mentorly models prepare

serve: prepare  ## run the service on its embedded defaults
	$(BIN)/mentorly serve

test: install browser services  ## run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

test-postgresql: install browser services  ## the whole test suite with PostgreSQL as every test's default database
	MENTORLY_TEST_DATABASE=postgresql $(BIN)/pytest

browser:  ## Debian's Chromium for the widget's browser tests (Playwright drives it; no browser download)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei; \
	  else echo "Install Chromium for the browser tests: sudo apt-get install chromium fonts-wqy-zenhei"; fi; }

services:  ## Debian's PostgreSQL and Redis server binaries; the tests start throw-away servers on loopback
	@{ ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v redis-server >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server; \
	  else echo "Install the database servers for the tests: sudo apt-get install postgresql redis-server"; fi; }

lint: install
	$(BIN)/ruff check .

bench: install  ## quick runs of every benchmark
	@# benchmarks/*.py without a __main__ are shared modules (corpora, data loaders), not benchmarks
	@for b in benchmarks/*.py; do grep -q "__main__" $$b || continue; echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
