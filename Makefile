# The README's quick start is exactly `make run` and `make test`.
# Both install what they need: a virtualenv in .venv with the Python packages, and (for
# `make test`) the system packages the tests use, via apt when missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SERVE_ARGS ?=

.PHONY: run test install system-deps lint typecheck contracts unit check bench-join clean

run: $(STAMP)
	$(BIN)/pnyx serve $(SERVE_ARGS)

test: system-deps $(STAMP) check
	$(BIN)/python -m pytest -q -p no:cacheprovider

install: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

system-deps:
	@bash scripts/install-system-deps.sh

check: lint typecheck contracts

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

bench-join: $(STAMP)
	@command -v wrk >/dev/null || bash scripts/install-system-deps.sh wrk
	$(BIN)/python bench/join_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
