# giantwatch — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_FIRMS ?= 20000
DEMO_SEED ?= 7

LOCK := requirements.lock
# The tools that install and lock, pinned so that both do the same thing next year.
PIP_VERSION := 26.3
UV_VERSION := 0.13.9

.PHONY: install lock chromium demo test lint bench clean

install: $(STAMP) chromium

# Debian's Chromium renders the audit report in the browser test. Never a browser download:
# only the distribution's package.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the report test..."; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; }

# Reinstall only when the project's dependencies change. Every third-party package comes from
# the lock file, at the tested version and checked against its hashes; giantwatch itself is
# installed editable on top, without resolving anything. `pip check` stops a lock that no
# longer covers pyproject.toml (run `make lock`).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; \
	  echo "$(LOCK) does not cover pyproject.toml: run 'make lock'"; exit 1; }
	touch $(STAMP)

# Refresh the lock after a change to the dependencies in pyproject.toml: versions already
# locked stay unless pyproject.toml rules them out (`make lock UPGRADE=1` takes the newest of
# everything). Universal: one file for every platform, Python >= 3.11.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes --no-header --quiet $(if $(UPGRADE),--upgrade) -o $(LOCK)

demo: install
	$(BIN)/giantwatch generate --out $(DEMO_DIR) --firms $(DEMO_FIRMS) --seed $(DEMO_SEED)
	$(BIN)/giantwatch validate --data $(DEMO_DIR)
	$(BIN)/giantwatch train --data $(DEMO_DIR) --seed 0
	$(BIN)/giantwatch audit --data $(DEMO_DIR) --out out/audit
	$(BIN)/giantwatch score --data $(DEMO_DIR) --year 2026 --out out/scores.parquet

test: install
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check features models training serving tests bench

bench: install
	$(BIN)/python bench/bench_generate.py --firms 50000 1000000

clean:
	rm -rf $(VENV) data mlruns .pytest_cache .hypothesis
