# The README's two commands:
#   make book   set up, run every chapter notebook on the phantom, build the book (_build/html)
#   make test   set up and run every test: the library's tests, every notebook under nbval,
#               the strict book build, and the built book in headless Chromium
# Everything installs into a local virtual environment, .venv (override with VENV=...).
# The notebooks' scale: quick (CPU, minutes) unless UNET_COURSE_SCALE=full is given.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UNET_COURSE_SCALE ?= quick
export UNET_COURSE_SCALE
# Where the course keeps its phantom and trained models (the library writes nowhere else).
UNET_COURSE_HOME ?= $(CURDIR)/.course
export UNET_COURSE_HOME

.PHONY: book test notebooks lab demo chromium setup-book setup-test wheelhouse clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, redone when pyproject.toml or constraints.txt changes. The
# constraints pin PyTorch to the version the course is tested with (pyproject has a floor).
$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,book]"
	touch $@

$(VENV)/.installed-book: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book]"
	touch $@

setup-test: $(VENV)/.installed-test
setup-book: $(VENV)/.installed-book

# Debian's Chromium for the browser test (root only; otherwise that test is skipped).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: install it (apt-get install chromium) for the browser test"; fi; }

# Every chapter notebook, run from a fresh kernel, asserts included.
notebooks: setup-test
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax book/

# -W -n --keep-going: a failing notebook or a broken reference fails the build
# (a plain `jupyter-book build` exits 0 on a failing notebook). The pages are written afresh
# (the notebooks run afresh anyway): a page renamed or removed since the last build must not
# linger, nor a page whose sidebar lists the old chapters.
FRESH_PAGES := rm -rf _build/html _build/.doctrees
book: setup-book
	$(FRESH_PAGES)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is at _build/html/index.html (scale: $(UNET_COURSE_SCALE))"

# The notebooks run first: tests/test_course_results.py then checks the models they trained.
test: setup-test chromium notebooks
	$(FRESH_PAGES)
	$(BIN)/jupyter-book build . -W -n --keep-going
	UNET_REQUIRE_COURSE_RESULTS=1 $(BIN)/python -m pytest -q

# The course in JupyterLab, with live widgets, on this machine only (127.0.0.1); it prints the
# address to open, with its token. The notebooks share .course/ with `make book`. Their own
# SCALE cell decides the scale ("auto": full on a CUDA GPU, else quick), unless
# UNET_COURSE_SCALE is given (make lab UNET_COURSE_SCALE=quick): the quick default above is
# for the book's build, and would otherwise override what a student sets in the cell.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
# Offline: JupyterLab's settings in this environment turn off its news feed and update check,
# whose first prompt would ask every student whether to reach the internet.
lab: setup-book $(LAB_OVERRIDES)
	$(if $(filter file,$(origin UNET_COURSE_SCALE)),env -u UNET_COURSE_SCALE) \
	$(BIN)/jupyter lab --notebook-dir=book --ServerApp.ip=127.0.0.1 --no-browser \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

$(LAB_OVERRIDES): | $(VENV)/.installed-book
	mkdir -p $(dir $@)
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@

# Wheels of everything a lab installs (the library and the course extra, with every
# dependency, PyTorch at the tested version, and setuptools, which installs the checkout as
# editable), for lab machines without internet: build them on a machine with the lab machines'
# system and Python, then install from them there (see "On lab machines without internet" in
# book/instructor.md). WHEELHOUSE=... puts them elsewhere.
WHEELHOUSE ?= wheelhouse
BUILD_REQUIRES := setuptools>=77# pyproject.toml's [build-system] requires (a test keeps them equal)
wheelhouse: | $(BIN)/python
	$(BIN)/python -m pip wheel --quiet -c constraints.txt -w $(WHEELHOUSE) ".[course]" \
	  "$(BUILD_REQUIRES)"
	@echo "$(WHEELHOUSE)/ holds $$(ls $(WHEELHOUSE) | wc -l) wheels; on a lab machine, in this checkout:"
	@echo "  pip install --no-index --find-links $(WHEELHOUSE) -e '.[course]'"

# A quick model from the command line, without the book.
demo: setup-test
	$(BIN)/unet-lib train --scale quick --model classic --out runs/demo-classic

clean:
	rm -rf _build runs/demo-classic .course .pytest_cache  # runs of your own in runs/ are kept
