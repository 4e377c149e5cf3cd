# dss — every target prints the exact command it runs. Variables override defaults: make demo SEEDS=0,1
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: on the project's machines this is the local CPU wheel. GPU users: make install TORCH=torch
TORCH ?= torch==2.13.0
DSS := $(BIN)/dss

.PHONY: install test demo help

help:
	@echo "make install   create $(VENV) and install dss with its dev extra"
	@echo "make test      run the test suite"
	@echo "make demo      the embedded data-efficiency study (standard vs DSS, 2 CPU cores, <= 10 min)"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
