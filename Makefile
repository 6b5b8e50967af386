# The README's quick start is exactly `make run` and `make test`.
# Both install what they need: a virtualenv in .venv with exactly the Python packages pinned
# (with their hashes) in requirements.lock, and (for `make test`) the system packages the
# tests use, via apt when missing. `make lock` regenerates the lock from pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) package-lock.json | cksum | cut -d' ' -f1)
SERVE_ARGS ?=

.PHONY: run test install vendor lock check-lock system-deps lint typecheck contracts unit multihost check bench-join bench-tls bench-janus clean

run: $(STAMP) vendor
	$(BIN)/pnyx serve $(SERVE_ARGS)

test: system-deps $(STAMP) vendor check-lock check
	$(BIN)/python -m pytest -q -p no:cacheprovider

install: $(STAMP) vendor

$(STAMP): pyproject.toml $(LOCK) package.json package-lock.json
	@bash scripts/ensure-venv.sh "$(PYTHON)" "$(VENV)"
	@# Exactly the lock: every package pinned and hash-checked, nothing resolved here. Then
	@# Pnyx itself, editable, with the locked setuptools (no build isolation, no download).
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python scripts/check_lock.py $(LOCK)
	@# The web client's front-end packages (hls.js and Swagger UI, pinned in
	@# package-lock.json) from the npm registry; `vendor` copies them where the app serves
	@# them. Node.js and npm via apt when missing.
	@command -v npm >/dev/null 2>&1 || { echo "installing nodejs and npm via apt" >&2; \
	  s=; [ "$$(id -u)" -eq 0 ] || s=sudo; $$s apt-get update -qq && \
	  $$s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@rm -f $(VENV)/.installed-*
	@touch $@

# What the app serves from src/pnyx/web/vendor/ (gitignored), copied from node_modules on
# every run so a changed choice of file reaches checkouts installed before it: the FULL
# hls.js ESM build (the light one has no subtitles, and the player shows live captions
# from the WebVTT rendition), and Swagger UI for /docs, never from a CDN (api/docs.py).
VENDOR := src/pnyx/web/vendor
vendor: $(STAMP)
	@mkdir -p $(VENDOR)/swagger-ui
	@cmp -s node_modules/hls.js/dist/hls.min.mjs $(VENDOR)/hls.esm.js \
	  || cp node_modules/hls.js/dist/hls.min.mjs $(VENDOR)/hls.esm.js
	@for f in swagger-ui-bundle.js swagger-ui.css LICENSE; do \
	  cmp -s node_modules/swagger-ui-dist/$$f $(VENDOR)/swagger-ui/$$f \
	    || cp node_modules/swagger-ui-dist/$$f $(VENDOR)/swagger-ui/$$f; done

# Re-resolve every Python dependency (runtime, dev, and the build backend) to the newest
# releases that pyproject.toml allows, for every platform and Python >= 3.11, with hashes.
# Run it after changing dependencies in pyproject.toml, or to take new releases; then
# `make test` and commit requirements.lock with the change.
lock: $(STAMP)
	$(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires']))" \
	  | $(BIN)/uv pip compile pyproject.toml - --extra dev --universal --generate-hashes \
	    --python-version 3.11 --custom-compile-command "make lock" --quiet --output-file $(LOCK)

# The installed packages are the lock's, version for version.
check-lock: $(STAMP)
	$(BIN)/python scripts/check_lock.py $(LOCK)

system-deps:
	@bash scripts/install-system-deps.sh

check: lint typecheck contracts

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# The multi-host rehearsal (root: network namespaces; docs/deploy.md).
multihost: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -m multihost tests/multihost

bench-join: $(STAMP)
	@command -v wrk >/dev/null || bash scripts/install-system-deps.sh wrk
	$(BIN)/python bench/join_throughput.py

bench-tls: $(STAMP)
	@command -v wrk >/dev/null || bash scripts/install-system-deps.sh wrk
	$(BIN)/python bench/tls.py

# The stage node against Janus's AudioBridge (root: a network namespace; Janus via apt).
bench-janus: $(STAMP)
	@command -v janus >/dev/null || bash scripts/install-system-deps.sh janus
	$(BIN)/python bench/peers/janus_bridge.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
