# The two commands of the README: `make test` and `make book`. Each creates .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Offline copies of the data beside the project (as on the build machines), else download.
ifneq ($(wildcard ../shared/data),)
export STUDYLIB_DATA ?= $(abspath ../shared/data)
endif

.PHONY: test book

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

book: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[book]'
	for ds in mnist cifar10; do for obj in base reweighted split; do \
		$(BIN)/studylib train --dataset $$ds --objective $$obj --profile quick || exit 1; done; done
