# keyplane developer commands. `make run` serves on SQLite; `make test` runs the checks, the
# JavaScript SDK's tests and the whole suite on SQLite and PostgreSQL (both must be reachable;
# see README).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run test test-js loadtest lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/keyplane serve

lint: install
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: install
	$(BIN)/mypy

# The suite runs on TEST_WORKERS processes (pytest-xdist), each with its own PostgreSQL and Redis
# database; the tests that time themselves under load (marked `serial`) run afterwards, alone.
TEST_WORKERS ?= 2

test: lint typecheck test-js
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not serial"
	$(BIN)/pytest -m serial

# The JavaScript SDK (sdk/js): dev dependencies from the committed lockfile (`npm ci`), tsc builds
# (ESM + CommonJS) and strict type-check, then Node's test runner against a `keyplane serve` of
# this venv on a fresh SQLite database (started and stopped by sdk/js/test/run.ts).
JS_SDK := sdk/js

$(JS_SDK)/node_modules/.installed: $(JS_SDK)/package.json $(JS_SDK)/package-lock.json
	cd $(JS_SDK) && npm ci --no-audit --no-fund
	touch $@

test-js: install $(JS_SDK)/node_modules/.installed
	cd $(JS_SDK) && npm test

# The bounded load test at length: 2 servers x 2 workers on PostgreSQL + Redis, 60 req/s for
# 3 minutes, then checks for 5xx, lost writes and lost usage counts (stops by itself).
loadtest: install
	KEYPLANE_LOAD_SECONDS=$${KEYPLANE_LOAD_SECONDS:-180} KEYPLANE_LOAD_RATE=$${KEYPLANE_LOAD_RATE:-60} \
		$(BIN)/pytest tests/load -q

bench: install
	$(BIN)/python benchmarks/verify.py
	$(BIN)/python benchmarks/ratelimit.py
	$(BIN)/python benchmarks/verifier.py
	$(BIN)/python benchmarks/http_bench.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/housekeeping.py
	$(BIN)/python benchmarks/instructions.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf $(JS_SDK)/node_modules $(JS_SDK)/dist $(JS_SDK)/build
