# giantwatch — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= data/demo
DEMO_FIRMS ?= 20000
DEMO_SEED ?= 7

.PHONY: install chromium demo test lint bench clean

install: $(STAMP) chromium

# Debian's Chromium renders the audit report in the browser test. Never a browser download:
# only the distribution's package.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the report test..."; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; }

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

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
