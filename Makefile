# The README's two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=8001` (or QA_PORT=8001 make run: qa serve reads QA_HOST and QA_PORT itself)
HOST ?=
PORT ?=
# e.g. https://download.pytorch.org/whl/cpu where the pin alone would take a CUDA build
TORCH_INDEX ?=

.PHONY: install run test browser nginx lint index bench eval clean

install: $(STAMP)

# torch is installed first, pinned, so that nothing later pulls a CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/qa serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

test: install browser nginx
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium; install it when missing and we may (root).
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium for the browser tests ..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null) || echo "could not install chromium: the browser tests will be skipped"; \
	fi

# The README's nginx block is checked with `nginx -t`: install Debian's nginx the same way.
nginx:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null; then \
	  echo "installing nginx for the test of the README's nginx block ..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx \
	    >/dev/null) || echo "could not install nginx: the nginx test will be skipped"; \
	fi

# mypy reads its settings (strict) from pyproject.toml
lint: install
	$(BIN)/ruff check qa web tests
	$(BIN)/ruff format --check qa web tests
	$(BIN)/mypy qa

index: install
	$(BIN)/qa index

eval: install
	$(BIN)/qa eval ../shared/eval/dev.jsonl

bench: install
	$(BIN)/qa bench

clean:
	rm -rf $(VENV) index/manifest.json index/*.faiss index/*.jsonl index/*.npy
