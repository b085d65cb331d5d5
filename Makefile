# The two commands of the README's quick start:
#
#   make demo   install, then execute notebooks/how-to-redispatch.ipynb headless
#   make test   install (Debian packages included), then run the whole test suite
#
# CI (.ci/run) runs `make test` and nothing else.
#
# Which Python: the one `python3` names on PATH, used as is (no venv is made).
# CI machines are fresh and single-purpose, so a venv would only add a second
# copy of JupyterLab and friends to download and install; on a dev machine,
# activate a venv first (or pass PYTHON=/path/to/python) and everything here,
# including the Jupyter servers and kernels the browser tests start, uses it.
#
# Installs are remembered by stamp files in build/make/ and redone when
# pyproject.toml or the front end's sources change; `make install` forces one.
# The Debian packages (chromium, graphviz) are checked on every `make test`:
# the check is instant, and apt-get runs only when one is missing.

PYTHON ?= python3
PIP := $(PYTHON) -m pip
PIP_FLAGS := --disable-pip-version-check --root-user-action=ignore
ifeq ($(CI),true)
PIP_FLAGS += --progress-bar off
endif

PYTEST := $(PYTHON) -m pytest
# -ra: say why anything was skipped or xfailed; durations: where the time goes.
PYTEST_FLAGS := -ra --durations=15
ifeq ($(CI),true)
PYTEST_FLAGS += --junitxml=test-artifacts/junit.xml
endif
# extra arguments for a run, e.g. make test-fast ARGS="-k reuse -x"
ARGS ?=

DEMO_NOTEBOOK := notebooks/how-to-redispatch.ipynb

# one set of stamps per Python environment, so switching venvs reinstalls
PY_ENV_ID := $(shell $(PYTHON) -c "import sys, hashlib; print(hashlib.sha1(sys.prefix.encode()).hexdigest()[:10])")
STAMPS := build/make/$(PY_ENV_ID)
# what the editable install builds from: the package metadata and the widget's JS
INSTALL_INPUTS := pyproject.toml $(shell find js -path js/node_modules -prune -o -type f -print 2>/dev/null)

.DEFAULT_GOAL := help
.PHONY: help install system-deps test test-fast test-browser test-dask demo bench clean

help:
	@echo "make demo          install and run $(DEMO_NOTEBOOK) headless"
	@echo "make test          install everything and run the whole test suite"
	@echo "make test-fast     the suite without browser and dask tests"
	@echo "make test-browser  only the real-browser tests (JupyterLab + Chromium)"
	@echo "make test-dask     only the Dask distributed tests"
	@echo "make bench         run the benchmarks in benchmarks/"
	@echo "make install       (re)install: Debian packages, then pip install -e '.[test,dask]'"
	@echo "make clean         remove build stamps and test artifacts"

system-deps:
	bash scripts/install-system-deps.sh

# Everything the tests need. The editable install also builds the widget's
# JS bundle (npm, through hatch-jupyter-builder) into covalent_nb/static/.
$(STAMPS)/test-env: $(INSTALL_INPUTS)
	$(PIP) install $(PIP_FLAGS) -e ".[test,dask]"
	@mkdir -p $(STAMPS) && touch $@

# The demo needs the package and a notebook runner, not the test tools.
$(STAMPS)/demo-env: $(INSTALL_INPUTS)
	$(PIP) install $(PIP_FLAGS) -e . "nbclient>=0.8" "nbformat>=5.9"
	@mkdir -p $(STAMPS) && touch $@

install: system-deps
	rm -f $(STAMPS)/test-env
	$(MAKE) $(STAMPS)/test-env

# pytest's exit code is make's: 5 (nothing collected) fails the run, said plainly.
define run_pytest
	@mkdir -p test-artifacts
	@$(PYTEST) $(PYTEST_FLAGS) $(1) $(ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests (exit 5); that is a failure" >&2; fi; \
	exit $$rc
endef

test: system-deps $(STAMPS)/test-env
	$(call run_pytest,tests/)

test-fast: $(STAMPS)/test-env
	$(call run_pytest,tests/ -m "not browser and not dask")

test-browser: system-deps $(STAMPS)/test-env
	$(call run_pytest,tests/ -m browser)

test-dask: $(STAMPS)/test-env
	$(call run_pytest,tests/ -m dask)

demo: $(STAMPS)/demo-env
	$(PYTHON) scripts/run-notebook.py $(DEMO_NOTEBOOK)

bench: $(STAMPS)/test-env
	@set -e; for script in benchmarks/*.py; do \
		echo "== $$script"; $(PYTHON) "$$script"; \
	done

clean:
	rm -rf build/make test-artifacts
