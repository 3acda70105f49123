# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint typecheck contracts migrate bench clean

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

## The whole suite against the real RabbitMQ, SQLite and PostgreSQL.
test: install
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

migrate: install
	$(BIN)/cgt-gateway migrate

bench: install
	$(BIN)/python bench/core_path.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
