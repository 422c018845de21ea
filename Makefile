# The two commands of the README, plus what they need. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test integration lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job: a demo org with drift, the API on SQLite, one schedule run, its signals printed.
demo: $(STAMP)
	$(BIN)/driftwarden demo

## The fast suite (SQLite, no external services).
test: $(STAMP)
	$(BIN)/pytest -q

## The same suite against the local PostgreSQL (creates its own database).
integration: $(STAMP)
	RUN_DB_INTEGRATION=1 PYTHONPATH=. $(BIN)/pytest -q

## The import boundaries of pyproject.toml (domains never import cli/, worker/ or the app).
lint: $(STAMP)
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) driftwarden.db driftwarden.db-*
