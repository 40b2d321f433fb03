# firstspike: `make test` and `make run` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test run clean

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU wheel that lies on these
# machines instead of pulling a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest

# Serves every model in model_store/ (the default, digits, among them) on 127.0.0.1:8000.
run: install
	$(BIN)/firstspike serve --host 127.0.0.1 --port 8000 --model-store model_store

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
