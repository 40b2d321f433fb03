# firstspike: `make test` and `make run` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# A second environment without torch: the onnx runtime must serve there (the slim image).
SLIM_VENV  ?= .venv-slim
SLIM_STAMP := $(SLIM_VENV)/.installed-stamp

.PHONY: install install-slim tools image-tools lint test test-fast test-slim images image-test screenshots docs run clean

install: $(STAMP)

# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU wheel that lies on these
# machines instead of pulling a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,test,docs,lint]'
	touch $(STAMP)

install-slim: $(SLIM_STAMP)

# scikit-learn only to make the test digits; it does not bring torch.
$(SLIM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(SLIM_VENV)
	$(SLIM_VENV)/bin/pip install --quiet --upgrade pip
	$(SLIM_VENV)/bin/pip install --quiet -e '.[test]' scikit-learn
	touch $(SLIM_STAMP)

# The observability tests run a real Prometheus (and promtool) and check the compose file; the
# fashion-mnist tests read the real data set; the demo page's tests drive a headless Chromium
# through its chromedriver. Debian's prometheus, docker-compose, dataset-fashion-mnist, chromium
# and chromium-driver packages, installed when missing (needs root).
FASHION_MNIST = /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
tools:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null \
	    || ! { command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; } \
	    || [ ! -f $(FASHION_MNIST) ] || ! command -v chromium >/dev/null || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing Debian's prometheus, docker-compose, dataset-fashion-mnist, chromium and chromium-driver for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus docker-compose \
	    dataset-fashion-mnist chromium chromium-driver >/dev/null; \
	fi

# Everything: tests/unit, tests/e2e, tests/deploy, tests/test_boundaries.py and tests/slim (here with
# torch; test-slim runs tests/slim again without it), slow tests included.
test: install lint test-slim tools image-test
	$(BIN)/python -m pytest

# Style and types: ruff (lint, and formatting checked), mypy (strict on service/ and
# training/contract/, see pyproject.toml). `ruff format .` and `ruff check --fix .` mend most.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The in-process tests without the slow ones (training runs, graph exports, firstspike processes):
# under a minute on 2 cores, no server, browser, Prometheus or root needed.
test-fast: install
	$(BIN)/python -m pytest -q tests/unit tests/test_boundaries.py -m "not slow"

# The container images, built for real: with `docker build` where a Docker engine answers, else
# with Debian's buildah (chroot isolation) on a local debootstrap base, kept in buildah's storage
# and made only when missing. image-test also runs each image and checks it (scripts/images.py).
image-tools:
	@if ! command -v buildah >/dev/null || ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then \
	  echo "installing Debian's buildah, podman and debootstrap for the image tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman debootstrap >/dev/null; \
	fi

images: install
	$(BIN)/python scripts/images.py build

image-test: install image-tools
	$(BIN)/python scripts/images.py test

test-slim: install-slim
	FIRSTSPIKE_SLIM=1 $(SLIM_VENV)/bin/python -m pytest tests/slim

# The demo page's browser tests, saving their screenshots to docs/demo/ (the README and docs/getting-started.md show them).
screenshots: install tools
	FIRSTSPIKE_SCREENSHOTS=docs/demo $(BIN)/python -m pytest tests/e2e/test_demo_page.py

# The documentation site in site/, from docs/ (tests/deploy/test_docs.py also builds it, strictly, and
# checks that the generated tables match the code: python scripts/generate_docs.py rewrites them).
docs: install
	$(BIN)/python scripts/generate_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Serves every model in model_store/ (the default, digits, among them) on 127.0.0.1:8000.
run: install
	$(BIN)/firstspike serve --host 127.0.0.1 --port 8000 --model-store model_store

clean:
	rm -rf $(VENV) $(SLIM_VENV) .pytest_cache build site *.egg-info
