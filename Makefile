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

# The committed notebooks whose outputs nbval compares (cells marked NBVAL_CHECK_OUTPUT).
NBVAL_CHECKED := $(shell grep -l NBVAL_CHECK_OUTPUT book/*.ipynb)

# Everything CI checks: lint, unit tests, pairs in sync, the offline HTML in headless
# Chromium, every chapter executed at `smoke`, and nbval on the committed notebooks whose
# outputs are checked (the book run has executed every chapter's cells, which the pairs
# test keeps identical to the committed notebooks', at `smoke` already).
test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,book,bench]'
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	STUDYLIB_REQUIRE_BROWSER=1 $(BIN)/pytest -n 2 --dist loadfile  # two workers, a test file each at a time
	$(BIN)/studylib book run --profile smoke --out build/book/smoke
	STUDYLIB_PROFILE=smoke STUDYLIB_RESULTS=$(CURDIR)/build/nbval-results $(BIN)/pytest --nbval-lax \
		$(or $(NBVAL_CHECKED),$(error no committed notebook has an NBVAL_CHECK_OUTPUT cell))

# The main job: every chapter at `quick` (models trained once into the cache, then reused),
# rendered to offline HTML in build/html.
book: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[book]'
	$(BIN)/studylib book run --profile quick --out build/book/quick
	$(BIN)/studylib book html --notebooks build/book/quick --out build/html
