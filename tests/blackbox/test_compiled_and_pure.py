"""The two forms of one source side by side: a node running the mypyc-compiled modules and one
running the Python sources (HYPERCACHE_PURE=1) answer the same random pipelines byte for byte,
and each says which form it runs (--version, INFO server, /cluster/status).

In CI the suite must run against the compiled build (`make test` builds it first): there, a
process that runs the Python sources is a failure, not a fallback.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import urllib.request

import hiredis
import pytest

from hypercache import compiled
from tests.blackbox.test_pipelines_vs_redis import UNORDERED, comparable, draw
from tests.nodes import REPO, encode_command, raw_connect

PURE = {"HYPERCACHE_PURE": "1"}


@pytest.fixture(scope="module")
def both(_module_node_factory):
    """(compiled or as-built node, pure node), each with its status page."""
    default = _module_node_factory.start(http=True, name="default")
    pure = _module_node_factory.start(http=True, env=PURE, name="pure")
    return default, pure


def _info_server(node) -> dict[str, str]:
    with node.client() as r:
        return {k: str(v) for k, v in r.info("server").items()}


def _status(node) -> dict:
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/cluster/status", timeout=10))


def _version(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "hypercache", "--version"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **env))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ci_runs_the_compiled_build():
    if not os.environ.get("CI"):
        pytest.skip("outside CI a missing or stale build falls back to the Python sources")
    assert compiled.COMPILED, f"the suite runs {compiled.FORM}: `make test` should have built the compiled modules"


def test_each_node_says_which_form_it_runs(both):
    default, pure = both
    assert _info_server(pure)["hypercache_compiled"] == "0"
    assert _info_server(default)["hypercache_compiled"] == str(int(compiled.COMPILED))
    assert _status(pure)["compiled"] is False
    assert _status(pure)["form"] == "python (HYPERCACHE_PURE=1)"
    assert _status(default)["compiled"] is compiled.COMPILED
    assert _version(PURE).endswith(", python (HYPERCACHE_PURE=1)")
    assert _version({}).endswith(", " + compiled.FORM)
    if compiled.COMPILED:
        assert compiled.FORM.startswith("mypyc (")


def _raw_replies(sock, count: int) -> tuple[bytes, list]:
    """The bytes of the next `count` replies (a pipeline's: nothing follows them) and their values."""
    reader, data, got = hiredis.Reader(), b"", []
    while len(got) < count:
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed"
        data += chunk
        reader.feed(chunk)
        while (reply := reader.gets()) is not False:
            got.append(reply)
    return data, got


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_pipelines_get_the_same_bytes_from_both_forms(both, protocol):
    rng = random.Random(20261203 + protocol)
    tag = "{forms%d}" % protocol
    socks = [raw_connect(node.port) for node in both]
    try:
        if protocol == 3:
            for sock in socks:
                sock.sendall(encode_command("HELLO", "3", "SETNAME", "same"))
                _raw_replies(sock, 1)
        for round_number in range(60):
            pipeline = [draw(rng, tag) for _ in range(rng.randint(1, 80))]
            payload = b"".join(encode_command(*command) for command in pipeline)
            for sock in socks:
                sock.sendall(payload)
            (compiled_bytes, compiled_values), (pure_bytes, pure_values) = (
                _raw_replies(sock, len(pipeline)) for sock in socks)
            if not any(command[0] in UNORDERED for command in pipeline):
                assert compiled_bytes == pure_bytes, f"pipeline {round_number}: {pipeline!r}"
            else:       # hashtable order differs between two processes (string hashing is seeded)
                for command, a, b in zip(pipeline, compiled_values, pure_values):
                    if command[0] in UNORDERED and isinstance(a, list):
                        a, b = sorted(a, key=repr), sorted(b, key=repr)
                    assert comparable(a) == comparable(b), f"pipeline {round_number}, {command!r}"
    finally:
        for sock in socks:
            sock.close()
