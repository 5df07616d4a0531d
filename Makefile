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
# The hot modules compiled with mypyc (hypercache/compiled.py lists them, docs/performance.md says why):
# rebuilt whenever one of them, the list or the build script changes. A node whose compiled
# copy is older than a source runs the Python sources and says so (INFO server, --version).
COMPILED_STAMP := build/compiled/built
# what the Python form runs in `make test` besides the whole suite's compiled run: the unit tests
# (but those of pure cores that are never compiled, which run the same code in both forms, and the
# static checks) and the black-box protocol and cluster tests
PURE_SAME_IN_BOTH := lease web_ring static_checks
PURE_TESTS ?= tests/unit $(PURE_SAME_IN_BOTH:%=--ignore=tests/unit/test_%.py) \
	tests/blackbox/test_protocol.py tests/blackbox/test_cluster.py
COMPILED_SOURCES := $(shell sed -n 's/^    "\(\(hypercache\|mesh\)\.[a-z_.]*\)",$$/\1/p' hypercache/compiled.py | tr . / | sed 's/$$/.py/') \
	hypercache/compiled.py build_compiled.py

# The local cluster of `make run`, `make node N=...`, `make stop N=...` and `make kill N=...`:
# node N listens on RESP BASE_PORT+N, mesh BASE_PORT+N+10000, HTTP BASE_HTTP_PORT+N.
NODES ?= 3
BASE_PORT ?= 8080
BASE_HTTP_PORT ?= 9080
LOCAL = $(BIN)/python -m hypercache.local_cluster --nodes $(NODES) --port $(BASE_PORT) --http-port $(BASE_HTTP_PORT)

.PHONY: run node stop kill test setup system-deps compiler-deps compiled pure-test bench fuzz clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "hypercache needs Python 3.11 or newer (python3)"; exit 1; }
	@# Debian/Ubuntu ship venv separately (python3-venv): install it when missing
	$(PYTHON) -m venv --clear $(VENV) || { rm -rf $(VENV); \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null && \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip

# running needs the node's own dependencies and mypyc (it ships with mypy); the test tools
# (pytest, locust, playwright, ...: ~260 MB) come with the first `make test`
$(RUN_STAMP): setup.cfg pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[compile]'
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

setup: $(RUN_STAMP)

# mypyc compiles to C: a C compiler and the interpreter's headers (Debian/Ubuntu: gcc, python3-dev)
compiler-deps: | $(BIN)/python
	@if ! command -v cc >/dev/null || ! test -f "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h"; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq gcc python3-dev >/dev/null || true; \
	fi

# Without a compiler the nodes run the Python sources (make says so; CI fails instead, since
# the suite must run against the compiled build there)
$(COMPILED_STAMP): $(COMPILED_SOURCES) | $(RUN_STAMP) compiler-deps
	@mkdir -p build
	@# (flock: two `make test` of one checkout at once build one after the other, not into each other)
	flock build/.lock $(BIN)/python build_compiled.py || { test -z "$(CI)" || exit 1; \
		echo "mypyc build failed: the nodes will run the Python sources"; }

compiled: $(COMPILED_STAMP)

# Debian/Ubuntu packages the tests talk to: redis-cli / redis-benchmark / redis-server
# (the side-by-side competitor), chromium for the status page test, iptables for the packet-loss
# partition test (tests/integration/test_partition_stall.py).
system-deps:
	@# only what is missing, command by command: a machine whose Node.js comes from NodeSource has
	@# npm inside its nodejs package, and Debian's npm package conflicts with it
	@missing=""; for pair in redis-cli:redis-tools redis-server:redis-server chromium:chromium \
			node:nodejs npm:npm iptables:iptables; do \
		command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing$$missing"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# ioredis, the Node.js cluster client the role tests drive (tests/blackbox/js/)
	@test -d $(VENV)/js/node_modules/ioredis || npm install --silent --prefix $(VENV)/js ioredis@5 >/dev/null

run: $(RUN_STAMP) $(COMPILED_STAMP)
	$(LOCAL)

# one node in the foreground: bring a stopped node back (N=1) or add one (N=3, N=4, ...)
node: $(RUN_STAMP) $(COMPILED_STAMP)
	@test -n "$(N)" || { echo "usage: make node N=<index>, e.g. N=3 adds a fourth node"; exit 2; }
	$(LOCAL) --node $(N)

# SIGTERM: node N hands its slots over and leaves; SIGKILL: node N crashes
stop kill: $(RUN_STAMP)
	@test -n "$(N)" || { echo "usage: make $@ N=<index>"; exit 2; }
	$(LOCAL) --$@ $(N)

# the Python form of the source on the unit tests and the black-box protocol and cluster tests
# (while the compiled build is made), then the whole suite against the compiled build, so that
# neither form rots
PURE_LOG := build/pure-test.log
# pytest-xdist's workers for the tests not marked `alone` (measured on 2 cores, 6 December 2026: the
# compiled run in 3m49s + 3m33s alone, where one process took 9m58s for all)
TEST_WORKERS ?= 2
test: $(TEST_STAMP) system-deps
	@# The Python form's subset runs while mypyc builds: the build keeps about one core of the two
	@# busy (104% CPU over its 35-95 s), and the subset is 45-80 s. Its output waits in a file
	@# until both end, so that the two do not interleave.
	@mkdir -p build
	@echo "the Python form's tests run while mypyc builds: their output follows the build's"
	@$(MAKE) --no-print-directory pure-test > $(PURE_LOG) 2>&1 & pure=$$!; \
	$(MAKE) --no-print-directory compiled; built=$$?; \
	wait $$pure; passed=$$?; cat $(PURE_LOG); \
	test $$built = 0 && test $$passed = 0
	@# Two workers share the suite, each a test file at a time, but for the tests marked `alone`
	@# (a bystander's worst wait, meshes on 600 ms timeouts, 48 nodes, stalls timed against the
	@# node timeout): those run after, by themselves. Both parts run whatever the first found
	@# (but for an interrupted first part: pytest's exit status 2).
	$(BIN)/python -m pytest -q --durations=20 -n $(TEST_WORKERS) --dist loadfile -m "not alone" tests; shared=$$?; \
	test $$shared != 2 || exit 2; \
	$(BIN)/python -m pytest -q --durations=10 -m alone tests; alone=$$?; \
	test $$shared = 0 && test $$alone = 0

pure-test: $(TEST_STAMP)
	HYPERCACHE_PURE=1 $(BIN)/python -m pytest -q --durations=15 -p no:cacheprovider $(PURE_TESTS)

bench: $(TEST_STAMP) system-deps $(COMPILED_STAMP)
	$(BIN)/python loadtest/bench_vs_redis.py

# The fuzzer of the RESP parser and the mesh message decoder (tests/fuzz), for FUZZ_SECONDS;
# inputs that break an invariant land in .fuzz/ (replay: python -m tests.fuzz.run --replay FILE)
FUZZ_SECONDS ?= 300
fuzz: $(TEST_STAMP)
	$(BIN)/python -m tests.fuzz.run --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) .hypercache .fuzz build
