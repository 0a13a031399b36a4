# mailmover — `make run` serves the web app, `make demo` moves a mailbox in the terminal,
# `make test` installs what the tests need and runs them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint typecheck unit sysdeps venv clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Dovecot (IMAP server for the tests and the demo), Cyrus and Courier (for the tests),
# isync (mbsync, for the benchmark) and PostgreSQL (for the job database tests).
sysdeps:
	@bash scripts/install-sysdeps.sh

# The web app with the local runner and SQLite at http://127.0.0.1:8080 (the data in
# the user data directory, or DATA_DIR=...). Python packages only: nothing from Debian.
HOST ?= 127.0.0.1
PORT ?= 8080
run: venv
	$(BIN)/mailmover serve --host $(HOST) --port $(PORT) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

demo: venv sysdeps
	$(BIN)/python -m mailmover.demo

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv
	$(BIN)/mypy --strict src

unit: venv
	$(BIN)/pytest -q tests/unit

test: venv sysdeps lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

bench: venv sysdeps
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
