"""MONITOR, side by side with a real redis-server: the same lines, the same refusals."""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time

import pytest

from tests.nodes import encode_command, raw_connect, read_raw_reply, read_reply, wait_until

# "<seconds>.<microseconds> [0 <ip>:<port>] <quoted arguments>"
LINE = re.compile(rb"^(\d+)\.(\d{6}) \[0 127\.0\.0\.1:(\d+)\] (.*)$")
END = ("ECHO", "end of script")

# Run one at a time by one client, so the order of the lines is fixed.
SCRIPT = [
    ("SET", "{m}k", bytes(range(256))),     # every byte value: sdscatrepr's escapes
    ("GET", "{m}k"),
    ("CONFIG", "GET", "maxmemory"),         # admin: not shown
    ("AUTH", "someone", "secret"),          # fails, shown with its arguments redacted
    ("HELLO", "2", "AUTH", "default", "secret", "SETNAME", "me"),
    ("MULTI",), ("SET", "{m}a", "1"), ("INCR", "{m}a"), ("EXEC",),   # the queued ones at EXEC
    ("NOSUCHCOMMAND", "x"),                 # never ran: not shown
    ("GET",),                               # wrong arity, never ran: not shown
    ("CLIENT", "SETNAME", "abc"),
    ("CLIENT", "LIST"),                     # admin: not shown
    ("PING",),
    ("set", "{m}n", "12345"),               # the command name as the client spelled it
    ("INCRBY", "{m}a", "notanumber"),       # fails while running: shown
    ("DEL", "{m}k"),
    END,
]


def _monitor(port: int):
    mon = raw_connect(port)
    mon.sendall(encode_command("MONITOR"))
    assert read_reply(mon) == b"OK"
    return mon


def _lines_until_end(mon) -> list[bytes]:
    lines = []
    while not lines or not lines[-1].endswith(b'"ECHO" "end of script"'):
        lines.append(read_reply(mon))       # hiredis hands a simple string back as bytes
    return lines


def _shown(server) -> tuple[list[bytes], int]:
    """The lines a monitor receives for SCRIPT, without their timestamp and address."""
    mon = _monitor(server.port)
    client = raw_connect(server.port)
    for command in SCRIPT:
        client.sendall(encode_command(*command))
        read_reply(client)
    shown = []
    for line in _lines_until_end(mon):
        match = LINE.match(line)
        assert match, line
        assert abs(int(match.group(1)) - time.time()) < 60
        assert int(match.group(3)) == client.getsockname()[1]
        shown.append(match.group(4))
    mon.close()
    client.close()
    return shown


def test_monitor_shows_what_redis_shows(node, redis_server):
    ours, theirs = _shown(node), _shown(redis_server)
    assert ours == theirs
    assert theirs[0].startswith(b'"SET" "{m}k" "\\x00\\x01')
    assert b'"AUTH" "(redacted)" "(redacted)"' in theirs
    assert b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "me"' in theirs
    assert theirs.index(b'"EXEC"') == theirs.index(b'"INCR" "{m}a"') + 1


@pytest.mark.parametrize("server", ["node", "redis_server"])
def test_a_monitor_client_is_refused_the_keyspace_and_sees_its_own_commands(server, request):
    port = request.getfixturevalue(server).port
    mon = _monitor(port)
    mon.sendall(encode_command("GET", "k"))
    assert read_raw_reply(mon) == b"-ERR Replica can't interact with the keyspace\r\n"
    mon.sendall(encode_command("PING"))
    assert read_reply(mon) == b"PONG"
    assert read_reply(mon).endswith(b'] "PING"')       # fed after it ran: after its reply
    mon.sendall(encode_command("MONITOR") + encode_command("CLIENT", "ID"))
    monitor_id = read_reply(mon)                         # a second MONITOR is not answered
    assert isinstance(monitor_id, int)
    assert read_reply(mon).endswith(b'] "CLIENT" "ID"')
    mon.sendall(encode_command("CLIENT", "LIST"))        # admin: runs, and is not shown
    listing = read_reply(mon).decode().splitlines()
    assert [line for line in listing if line.startswith(f"id={monitor_id} ")][0].split(" flags=")[1][:2] == "O "
    mon.sendall(encode_command("RESET"))
    assert read_reply(mon) == b"RESET"
    mon.sendall(encode_command("GET", "k"))             # RESET ended MONITOR mode
    assert read_reply(mon) is None
    mon.sendall(encode_command("MULTI") + encode_command("MONITOR") + encode_command("EXEC"))
    assert read_reply(mon) == b"OK"
    assert read_reply(mon) == b"QUEUED"
    [error] = read_reply(mon)
    assert str(error) == "ERR MONITOR isn't allowed for DENY BLOCKING client"
    mon.close()


def test_the_node_serves_every_client_again_once_the_monitor_leaves(node):
    """The fast lane is off while someone monitors and back after: replies stay right either way."""
    with node.client() as r:
        for _ in range(2):
            mon = _monitor(node.port)
            pipe = r.pipeline(transaction=False)
            for i in range(50):
                pipe.set(f"{{lane}}{i}", i)
                pipe.get(f"{{lane}}{i}")
            assert pipe.execute() == [True, b"0"] + [x for i in range(1, 50) for x in (True, str(i).encode())]
            r.echo("end of script")
            assert sum(b"{lane}" in line for line in _lines_until_end(mon)) == 100
            mon.close()
            wait_until(lambda: all(entry["flags"] != "O" for entry in r.client_list()),
                       message="the monitor's connection to close")
            pipe = r.pipeline(transaction=False)
            for i in range(50):
                pipe.get(f"{{lane}}{i}")
            assert pipe.execute() == [str(i).encode() for i in range(50)]


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_redis_cli_monitor_prints_the_commands(node):
    cli = subprocess.Popen(["redis-cli", "-p", str(node.port), "monitor"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(cli.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        with node.client() as r:
            wait_until(lambda: any(entry["flags"] == "O" for entry in r.client_list()),
                       message="redis-cli to start monitoring")
            r.set("from redis-py", "a b\n")
            wait_until(lambda: any(b'"set" "from redis-py" "a b\\n"' in line.lower() for line in lines),
                       message="redis-cli to print the SET")
        line = next(line for line in lines if b"from redis-py" in line)
        assert LINE.match(line.rstrip(b"\n"))
    finally:
        cli.kill()
        cli.wait()
