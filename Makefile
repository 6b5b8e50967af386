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

$(STAMP): pyproject.toml package.json package-lock.json
	@bash scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@# The web client's player (hls.js, pinned in package-lock.json) from the npm registry,
	@# served by the app from src/pnyx/web/vendor/ (gitignored). Node.js and npm via apt
	@# when missing.
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm via apt" >&2; \
	  s=; [ "$$(id -u)" -eq 0 ] || s=sudo; $$s apt-get update -qq && \
	  $$s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@mkdir -p src/pnyx/web/vendor
	cp node_modules/hls.js/dist/hls.light.min.mjs src/pnyx/web/vendor/hls.esm.js
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
