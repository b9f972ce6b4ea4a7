# The two commands a new user runs (see README.md):
#   make demo   set everything up, then run the end-to-end demo on the bundled sample
#   make test   set everything up, then run the test suite (PostgreSQL variants run when PostgreSQL is installed)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo loop-demo test lint bench

# torch goes in first and pinned: a bare "torch" requirement would pull a multi-GB CUDA build.
$(BIN)/rewardkit: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,bench]"
	touch $(BIN)/rewardkit

setup: $(BIN)/rewardkit

# the data-to-model demo, then the production loop on the same bundled sample (make loop-demo alone)
demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/rewardkit demo --out demo-output
	HF_HUB_OFFLINE=1 $(BIN)/rewardkit loop demo --out loop-demo-output

# the continuous-training loop on the bundled sample: serve by alias, feedback, tick, gates, forced deploy, rollback
loop-demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/rewardkit loop demo --out loop-demo-output

# PostgreSQL variants run on a throwaway server when PostgreSQL is installed and we are root; a server this
# target started is stopped again, pass or fail (one already running is left as it was).
test: setup
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  eval "$$(bash .ci/start-postgres.sh)"; export RK_TEST_POSTGRES_URL; fi; \
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q; status=$$?; \
	if [ "$${RK_PG_STARTED:-}" = 1 ]; then bash .ci/stop-postgres.sh; fi; \
	exit $$status

# The style CI holds the code to (settings in pyproject.toml: line length 120).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	for b in benchmarks/*_bench.py; do HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done
