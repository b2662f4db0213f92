# Two commands a newcomer needs: `make run` and `make test`. Both work on a fresh machine with Python and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/gateway.toml

.PHONY: run test lint typecheck pytest bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[fast]'

install-test: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[fast,test]'

run: install
	$(BIN)/hookgate serve --config $(CONFIG)

lint: install-test
	$(BIN)/ruff check gateway plugins tests bench
	$(BIN)/ruff format --check gateway plugins tests bench
	$(BIN)/lint-imports

typecheck: install-test
	$(BIN)/mypy

# Test services (databases, proxies, browsers) are prepared by one script whose exports reach pytest.
# Four workers: each test has its own port, data folder and PostgreSQL schema, and most of their time
# is spent waiting on a gateway, so four share two cores well (PYTEST_WORKERS=0 runs in one process).
# Tests marked serial time something on this machine: they run afterwards, alone (exit 5: none chosen).
PYTEST_WORKERS ?= 4
pytest: install-test
	bash -c 'source scripts/test-services.sh && $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not serial" $(PYTEST_ARGS) && { $(BIN)/python -m pytest -m serial $(PYTEST_ARGS); code=$$?; [ $$code -eq 0 ] || [ $$code -eq 5 ]; }'

test: lint typecheck pytest

# Benchmarks run on demand, never in `make test`. wrk and webhook (Debian) and Node-RED (npm, pinned in
# bench/peers/node-red) are installed when missing and possible; a peer that is not gets a row saying so.
# PEERS=n8n adds n8n (pinned in bench/peers/n8n, a 3 GB install), measured only when asked for.
PEERS ?=
bench: install-test
	bash -c 'source scripts/test-services.sh --only-helpers && { command -v wrk >/dev/null || hg_apt_install wrk || true; } && { command -v webhook >/dev/null || hg_apt_install webhook || true; } && { [ -e bench/peers/node-red/node_modules/node-red/red.js ] || { { command -v npm >/dev/null || hg_apt_install npm; } && npm ci --prefix bench/peers/node-red --no-audit --no-fund --ignore-scripts; } || true; } && { case ",$(PEERS)," in *,n8n,*) bench/peers/n8n/install.sh || true;; esac; } && for b in redis nats rabbitmq mosquitto; do ensure_$$b || true; done'
	$(BIN)/python bench/run.py --peers "$(PEERS)" $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
