# The two commands of the README: `make run` starts the local cluster, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test setup system-deps bench clean

$(STAMP): setup.cfg pyproject.toml
	@# Debian/Ubuntu ship venv separately (python3-venv): install it when missing
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null && \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Debian/Ubuntu packages the tests talk to: redis-cli / redis-benchmark / redis-server
# (the side-by-side competitor) and chromium for the status page test.
system-deps:
	@if ! command -v redis-cli >/dev/null || ! command -v redis-server >/dev/null || ! command -v chromium >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server redis-tools chromium >/dev/null; \
	fi

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q tests

bench: $(STAMP) system-deps
	$(BIN)/python loadtest/bench_vs_redis.py

clean:
	rm -rf $(VENV) .hypercache
