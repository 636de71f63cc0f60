# The two commands of the README:
#   make run   install, create the ten SQLite databases, load demo data, serve on :5000
#   make test  install the test dependencies and run the suite on SQLite and PostgreSQL
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run install install-dev test test-sqlite test-postgres demo clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt

install-dev: $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt

demo: install
	$(FLASK) console init-db
	$(FLASK) console seed-demo --if-empty --now now

run: demo
	$(FLASK) run --host 127.0.0.1 --port 5000

test: install-dev
	$(MAKE) --no-print-directory test-sqlite test-postgres

test-sqlite:
	CONSOLE_TEST_DB=sqlite $(BIN)/pytest -n 2 -q -rs tests

test-postgres:
	CONSOLE_TEST_DB=postgres $(BIN)/pytest -n 2 -q -rs tests

clean:
	rm -rf instance/*.sqlite .pytest_cache
