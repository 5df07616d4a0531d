"""An error reply keeps nothing of its request alive: no traceback, so no frame, so no arguments.

An error kept with its traceback formed a cycle (the traceback's frame held
the error) that kept the request's arguments until a full collection: a
million of them were 54 MB each, unseen by maxmemory. Checked here with the
collector off, by counting the references to one argument.
"""
from __future__ import annotations

import gc
import sys

import pytest

from tests.unit.test_strings_keys import Node


@pytest.fixture
def no_collector():
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("name, request_of", [
    ("handler error", lambda arg: [b"SETRANGE", arg, b"-1", b"x"]),
    ("wrong type", lambda arg: [b"SADD", b"str", arg]),
    ("arity", lambda arg: [b"GET", arg, b"more"]),
    ("unknown command", lambda arg: [b"NOSUCH", arg]),
    ("syntax", lambda arg: [b"SET", b"k", b"v", arg]),
])
def test_an_error_reply_holds_no_argument(no_collector, name, request_of):
    node = Node()
    node(b"SET", b"str", b"1")
    arg = bytes(bytearray(b"an argument of its own"))
    request = request_of(arg)
    reply = node(*request)
    assert "ERR" in str(reply) or "WRONGTYPE" in str(reply), reply
    del reply, request
    assert sys.getrefcount(arg) == 2, name      # `arg` and getrefcount's own
