# tt-platform: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test test-slow faults bench ui mlflow-ui gateway-sim compose-check clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	@# the CPU wheel first: any other torch spec pulls gigabytes of CUDA packages
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	@# tensortrade's declared deps pull TensorFlow and force numpy<2; tt_platform.env.tensortrade_compat stands in
	$(BIN)/pip install --quiet --no-deps tensortrade==1.0.3
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tt demo

test: install
	$(BIN)/pytest -m "not slow and not faults" $(PYTEST_ARGS)

test-slow: install
	@# exit code 5 means no test is marked slow, which is fine
	$(BIN)/pytest -m "slow and not faults" $(PYTEST_ARGS) || [ $$? -eq 5 ]

faults: install
	@# prints, per fault kind, the faults injected and the invariants checked (faults-results.json)
	$(BIN)/pytest -m faults tt_platform_tests/faults $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: install
	$(BIN)/python -m tt_platform.bench

ui: install
	$(BIN)/tt ui

mlflow-ui: install
	$(BIN)/tt mlflow-ui

gateway-sim: install
	$(BIN)/tt gateway-sim

compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf $(VENV) .tt_home .pytest_cache bench-results.json
