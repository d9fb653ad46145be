.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is keyed on pyproject.toml's content: a second run installs nothing until
# the dependencies change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
TOX_STAMP := $(VENV)/.installed-tox

# tox finds its interpreters on PATH; Python 3.12 and 3.13 live under pyenv here.
PYENV_ROOT := $(shell pyenv root 2>/dev/null)
TOX_PYTHONS := $(if $(PYENV_ROOT),$(wildcard $(PYENV_ROOT)/versions/3.13.*/bin $(PYENV_ROOT)/versions/3.12.*/bin))
empty :=
space := $(empty) $(empty)
TOX_PATH := $(subst $(space),:,$(strip $(TOX_PYTHONS) $(PATH)))

MYPY_TARGETS := django_openai_capi tests example_project manage.py docs/_ext $(if $(wildcard bench/*.py),bench)

.PHONY: help venv demo test lint docs tox clean

help:
	@echo "make demo   run the example project (SQLite, a local fake of the API, no credentials)"
	@echo "make test   run the tests (SQLite; PostgreSQL when DATABASE_URL is set)"
	@echo "make lint   ruff and mypy"
	@echo "make docs   build the documentation site into docs/_build/html (warnings are errors)"
	@echo "make tox    the Python x Django matrix (ENVS=py313-django6 for one env)"
	@echo "make venv   create or update .venv (Django 5.2 LTS and the dev tools)"
	@echo "make clean  remove the virtualenv, tox envs, caches and the demo database"

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e . --group dev --group django52
	@rm -f $(VENV)/.installed-[0-9]*
	@touch $@

venv: $(STAMP)

$(TOX_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet 'tox>=4.22'
	@touch $@

# example_project/demo.py: the fake API, the demo data and runserver, all stopped
# together however the demo is stopped. DEMO_FAKE_PORT (default 8001) moves the fake and
# the endpoint the project sends to; DEMO_ADDR (default 127.0.0.1:8000) is where it is
# served. Both are read from the environment, or: make demo DEMO_ADDR=127.0.0.1:9000
demo: $(STAMP)
	$(BIN)/python -m example_project.demo

# The main session, then one per contrib app's host (tests/run.py says why);
# PYTEST_ARGS=tests/contrib/oscar runs that session only.
test: $(STAMP)
	$(BIN)/python -m tests.run $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_TARGETS)

# Offline, and strict: a warning (a broken reference, a snippet Sphinx cannot parse)
# fails the build, as it does in CI.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

tox: $(TOX_STAMP)
	PATH="$(TOX_PATH)" $(BIN)/tox $(if $(ENVS),-e $(ENVS))

clean:
	rm -rf $(VENV) .tox build dist docs/_build *.egg-info .coverage .coverage.* htmlcov \
	  .mypy_cache .ruff_cache .pytest_cache .hypothesis example_project/db.sqlite3
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
