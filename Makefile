# Two commands on a fresh clone: `make run` and `make test`.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := loanservice/static/vendor/.installed
export FLASK_APP := wsgi

.PHONY: run test lint setup check-system e2e bench clean

setup: $(STAMP) $(VENDOR)

## Front-end packages from the npm registry (package-lock.json), copied where Flask serves them.
$(VENDOR): package.json package-lock.json
	@bash bin/check-system
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p loanservice/static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/chart.js/dist/chart.umd.js loanservice/static/vendor/
	@touch $(VENDOR)

$(STAMP): setup.cfg pyproject.toml bin/check-system
	@bash bin/check-system
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## Set up, migrate, load the demo hub when the database is empty, serve on :5000 with the mail sender beside it.
run: setup
	$(BIN)/flask db upgrade
	$(BIN)/flask demo seed --if-empty
	@echo "\nServing on http://127.0.0.1:5000, with the mail sender (flask mail send --loop) beside it (Ctrl+C stops both)"
	@$(BIN)/flask mail send --loop & sender=$$!; \
	trap 'kill $$sender 2>/dev/null; wait $$sender 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask run --host 127.0.0.1 --port 5000

## The whole test suite (browser tests included when Chromium can be installed).
test: setup
	@bash bin/check-system --browser
	$(BIN)/pytest

## Lint and the import contract (the layers in setup.cfg, drawn in docs/architecture.md).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

bench: setup
	$(BIN)/python bench/inventory_pages.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache node_modules loanservice/static/vendor
