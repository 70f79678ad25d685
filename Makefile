# The README's two commands:
#   make book   set up, train a quick model on the phantom (prints per-channel Dice), build the book
#   make test   set up and run every test
# Everything installs into a local virtual environment, .venv (override with VENV=...).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: book test demo setup-book setup-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, redone when pyproject.toml changes.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed-book: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[book]"
	touch $@

setup-test: $(VENV)/.installed-test
setup-book: $(VENV)/.installed-book

test: setup-test
	$(BIN)/python -m pytest -q

demo: setup-book
	$(BIN)/unet-lib train --quick --model classic --out runs/demo-classic

book: demo
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at _build/html/index.html"

clean:
	rm -rf _build runs .pytest_cache
