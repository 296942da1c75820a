# alloranet: two commands do all set-up on a fresh machine (Python 3.11 + make).
#   make testnet   create .venv, install, start a local multi-node testnet
#   make test      create .venv, install test extras, run lint, types, import contracts, tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
TESTNET_ARGS ?= --validators 4 --workers 5 --forecasters 3 --reputers 3 --seed 1 --home .testnet

.PHONY: test testnet lint typecheck contracts unit bench-quick clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/ensure-system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "is ignored" || true
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "is ignored" || true
	@$(BIN)/python -c "import alloranet, libp2p, nacl, msgpack, numpy, uvloop, aiosqlite, pytest" \
	  || (echo "error: dependency installation failed" >&2; exit 1)
	@rm -f $(VENV)/.installed-* && touch $@

lint: venv
	$(BIN)/ruff check alloranet testnet tests benchmarks
	$(BIN)/ruff format --check alloranet testnet tests benchmarks

typecheck: venv
	$(BIN)/mypy

contracts: venv
	$(BIN)/lint-imports

unit: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck contracts unit

bench-quick: venv
	@for b in benchmarks/*.py; do echo "== $$b --quick"; $(BIN)/python $$b --quick || exit 1; done

testnet: venv
	$(BIN)/alloranet testnet up $(TESTNET_ARGS)

clean:
	rm -rf $(VENV) .testnet .mypy_cache .ruff_cache
