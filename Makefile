# The two commands a newcomer needs: `make demo` (install + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# The tests run tiny transformers models on the CPU: pin the CPU build of torch first, so that
# resolving the `hf` extra does not pull the CUDA build (several GB).
TORCH ?= torch==2.13.0

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet '$(TORCH)'
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
