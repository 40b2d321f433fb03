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

run: install
	@echo "make run: the inference service is not built yet (issue #3); the shipped model can be evaluated with" >&2
	@echo "  $(BIN)/firstspike eval model_store/digits --dataset digits --split test" >&2
	@exit 2

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
