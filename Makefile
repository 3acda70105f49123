# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install browser screenshots lint typecheck contracts migrate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Start the gateway on its embedded defaults: SQLite under ./var/, RabbitMQ on 127.0.0.1:5672, HTTP :8080.
run: install
	$(BIN)/cgt-gateway migrate
	$(BIN)/cgt-gateway serve

## Debian's Chromium for the console's browser tests (Playwright drives it; no browser download).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; } \
		|| { echo "install Debian's chromium (apt-get install chromium) for the browser tests" >&2; exit 1; }

## The whole suite against the real RabbitMQ, SQLite and PostgreSQL, and the console in Chromium.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/cgt-gateway contracts check
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

contracts: install
	$(BIN)/cgt-gateway contracts export

## Refresh the README's console screenshots (docs/images/) from the browser tests.
screenshots: install browser
	CGT_SCREENSHOTS_DIR=docs/images $(BIN)/python -m pytest tests/browser -q

migrate: install
	$(BIN)/cgt-gateway migrate

bench: install
	$(BIN)/python bench/core_path.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
