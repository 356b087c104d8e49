# One Makefile for people and CI. `make demo` and `make test` work on a fresh clone:
# they bootstrap uv into .cache/ (only python3 is needed) and build .venv from uv.lock.
.DEFAULT_GOAL := all
UV_VERSION := 0.13.9
UV_HOME := .cache/uv-bin
UV := $(UV_HOME)/bin/uv
export UV_PROJECT_ENVIRONMENT := .venv
SRC := src tests examples bench

$(UV):
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.PHONY: install
install: $(UV)  ## Create .venv with the package, its extras and the dev tools
	$(UV) sync --frozen --all-extras --group dev

.PHONY: format
format: install
	$(UV) run --frozen ruff format $(SRC)
	$(UV) run --frozen ruff check --fix $(SRC)

.PHONY: lint
lint: install
	$(UV) run --frozen ruff format --no-cache --check $(SRC)
	$(UV) run --frozen ruff check --no-cache $(SRC)

.PHONY: typecheck
typecheck: install
	$(UV) run --frozen pyright -p .  # this folder's pyproject.toml, never a pyrightconfig.json above it

.PHONY: pytest
pytest: install
	$(UV) run --frozen pytest

.PHONY: test
test: lint typecheck pytest  ## ruff, pyright and the tests

.PHONY: testcov
testcov: install
	$(UV) run --frozen coverage run -m pytest
	$(UV) run --frozen coverage report

.PHONY: demo
demo: install  ## The deploy bot: prefetch, approval, done (DEMO_ARGS="--reject 'use v1.2.2'", or --serve: the inbox)
	$(UV) run --frozen python examples/deploy_bot.py $(DEMO_ARGS)

# The peers (LangGraph, pydantic-ai, the OpenAI Agents SDK) live in their own venv, pinned in
# bench/peers/requirements.txt and installed from PyPI: never in the project's uv.lock.
PEERS_VENV := bench/.venv-peers

$(PEERS_VENV)/.installed: bench/peers/requirements.txt | install
	$(UV) venv --quiet --allow-existing --python .venv/bin/python $(PEERS_VENV)  # the interpreter of .venv: nothing to download
	$(UV) pip install --quiet --python $(PEERS_VENV)/bin/python -r bench/peers/requirements.txt
	touch $@

.PHONY: bench
bench: install $(PEERS_VENV)/.installed  ## Benchmarks beside the peers (~10 min); they write bench/RESULTS.md
	$(UV) run --frozen python bench/run.py

.PHONY: all
all: test demo
