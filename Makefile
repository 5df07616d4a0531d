# The two commands of the README: `make run` starts the local cluster, `make test` runs every test.
# The distribution's interpreter when it is 3.11 or newer: Debian and Ubuntu build
# it with PGO and LTO, and the node's hot path runs ~7% faster on it than on a
# default source build such as pyenv's (measured: SET -P 1 0.85x -> 0.89x of redis-server).
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

# The local cluster of `make run`, `make node N=...`, `make stop N=...` and `make kill N=...`:
# node N listens on RESP BASE_PORT+N, mesh BASE_PORT+N+10000, HTTP BASE_HTTP_PORT+N.
NODES ?= 3
BASE_PORT ?= 8080
BASE_HTTP_PORT ?= 9080
LOCAL = $(BIN)/python -m hypercache.local_cluster --nodes $(NODES) --port $(BASE_PORT) --http-port $(BASE_HTTP_PORT)

.PHONY: run node stop kill test setup system-deps bench fuzz clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "hypercache needs Python 3.11 or newer (python3)"; exit 1; }
	@# Debian/Ubuntu ship venv separately (python3-venv): install it when missing
	$(PYTHON) -m venv --clear $(VENV) || { rm -rf $(VENV); \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null && \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip

# running needs only the node's own dependencies; the test tools (pytest, locust,
# playwright, ...: ~260 MB) come with the first `make test`
$(RUN_STAMP): setup.cfg pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

setup: $(RUN_STAMP)

# Debian/Ubuntu packages the tests talk to: redis-cli / redis-benchmark / redis-server
# (the side-by-side competitor) and chromium for the status page test.
system-deps:
	@if ! command -v redis-cli >/dev/null || ! command -v redis-server >/dev/null || ! command -v chromium >/dev/null \
			|| ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server redis-tools chromium nodejs npm >/dev/null; \
	fi
	@# ioredis, the Node.js cluster client the role tests drive (tests/blackbox/js/)
	@test -d $(VENV)/js/node_modules/ioredis || npm install --silent --prefix $(VENV)/js ioredis@5 >/dev/null

run: $(RUN_STAMP)
	$(LOCAL)

# one node in the foreground: bring a stopped node back (N=1) or add one (N=3, N=4, ...)
node: $(RUN_STAMP)
	@test -n "$(N)" || { echo "usage: make node N=<index>, e.g. N=3 adds a fourth node"; exit 2; }
	$(LOCAL) --node $(N)

# SIGTERM: node N hands its slots over and leaves; SIGKILL: node N crashes
stop kill: $(RUN_STAMP)
	@test -n "$(N)" || { echo "usage: make $@ N=<index>"; exit 2; }
	$(LOCAL) --$@ $(N)

test: $(TEST_STAMP) system-deps
	$(BIN)/python -m pytest -q tests

bench: $(TEST_STAMP) system-deps
	$(BIN)/python loadtest/bench_vs_redis.py

# The fuzzer of the RESP parser and the mesh message decoder (tests/fuzz), for FUZZ_SECONDS;
# inputs that break an invariant land in .fuzz/ (replay: python -m tests.fuzz.run --replay FILE)
FUZZ_SECONDS ?= 300
fuzz: $(TEST_STAMP)
	$(BIN)/python -m tests.fuzz.run --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .hypercache .fuzz
