# The two commands a newcomer needs: `make demo` (install + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/fiqabench eval --model random --task all

test: install-dev
	$(BIN)/ruff check fiqabench tests benchmarks
	$(BIN)/ruff format --check fiqabench tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: install-dev
	$(BIN)/ruff check fiqabench tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/overhead.py
