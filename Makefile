# The two commands a newcomer needs: `make demo` (install + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev lint bench test-lmms browser-deps

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

test: install-dev browser-deps
	$(BIN)/ruff check fiqabench tests benchmarks
	$(BIN)/ruff format --check fiqabench tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: install-dev
	$(BIN)/ruff check fiqabench tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/overhead.py

# The leaderboard site's browser tests: Debian's chromium, driven by playwright-core (pinned in
# tests/browser/package-lock.json; needs Node.js 20+ and npm).
browser-deps: tests/browser/node_modules/.package-lock.json
	@command -v /usr/bin/chromium >/dev/null || { [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json
	@command -v npm >/dev/null || { echo "browser tests need Node.js 20+ and npm" >&2; exit 1; }
	npm ci --prefix tests/browser --no-audit --no-fund

# Opt-in, outside `make test`: lmms-eval 0.7.3 in a venv of its own runs the tasks exported by
# `fiqabench export lmms-eval` on the CPU and must give fiqabench's numbers. lmms-eval brings its
# own torch and torchvision (PyPI's CUDA builds, about 7 GB, which run on the CPU): a CPU torch
# installed first is upgraded anyway, and pinned beside it PyPI's torchvision fails to load.
# filelock<4: lmms-eval 0.7.3 imports filelock._api, which filelock 4.3 no longer has. Its own
# --basetemp: pytest's shared temporary root keeps only the last three sessions' folders.
LMMS_VENV ?= .venv-lmms

test-lmms:
	test -x $(LMMS_VENV)/bin/python || $(PYTHON) -m venv $(LMMS_VENV)
	$(LMMS_VENV)/bin/pip install --quiet 'lmms-eval==0.7.3' 'filelock<4' pytest pytest-timeout
	$(LMMS_VENV)/bin/pip install --quiet -e . ./tests/lmms_contract/replay_model
	FIQABENCH_LMMS_CONTRACT=1 $(LMMS_VENV)/bin/pytest -q tests/lmms_contract --basetemp=$(LMMS_VENV)/pytest-tmp
