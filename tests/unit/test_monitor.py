"""MONITOR's pure parts: the line, the escapes, the redaction, who gets fed, the lane switch."""
from __future__ import annotations

import re

from hypercache.monitor import Monitors, monitor_line, quote, shown_args
from hypercache.reply import Raw
from hypercache.session import Session
from tests.unit.typeharness import Harness


def test_quote_escapes_as_sdscatrepr():
    assert quote(b"plain text 123") == b'"plain text 123"'
    assert quote(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert quote(b"\n\r\t\x07\x08") == b'"\\n\\r\\t\\a\\b"'
    assert quote(b"\x00\x1f\x7f\x80\xff") == b'"\\x00\\x1f\\x7f\\x80\\xff"'
    assert quote(b"") == b'""'


def test_every_byte_is_either_itself_or_one_escape():
    for byte in range(256):
        quoted = quote(bytes((byte,)))[1:-1]
        if 0x20 <= byte <= 0x7E and byte not in b'"\\':
            assert quoted == bytes((byte,))
        else:
            assert re.fullmatch(rb'\\(x[0-9a-f]{2}|[nrtab"\\])', quoted), (byte, quoted)


def test_auth_and_hello_auth_are_redacted():
    assert shown_args([b"AUTH", b"pw"]) == [b'"AUTH"', b'"(redacted)"']
    assert shown_args([b"auth", b"user", b"pw"]) == [b'"auth"', b'"(redacted)"', b'"(redacted)"']
    assert shown_args([b"HELLO", b"3", b"auth", b"u", b"p", b"SETNAME", b"n"]) == [
        b'"HELLO"', b'"3"', b'"auth"', b'"(redacted)"', b'"(redacted)"', b'"SETNAME"', b'"n"']
    # AUTH without its two arguments is not a credential (HELLO refuses it): nothing to hide
    assert shown_args([b"HELLO", b"3", b"AUTH", b"u"]) == [b'"HELLO"', b'"3"', b'"AUTH"', b'"u"']
    assert shown_args([b"SET", b"auth", b"x"]) == [b'"SET"', b'"auth"', b'"x"']


def test_the_line_carries_seconds_microseconds_and_the_address():
    line = monitor_line(1_700_000_000_000_042, "10.0.0.7:5123", [b"GET", b"k"])
    assert line == b'+1700000000.000042 [0 10.0.0.7:5123] "GET" "k"\r\n'


class _Cmd:
    def __init__(self, *flags: str) -> None:
        self.flags = flags


def test_monitoring_switches_on_with_the_first_and_off_with_the_last():
    changes = []
    monitors = Monitors(changes.append)
    first, second = Session(id=1), Session(id=2)
    monitors.add(first)
    monitors.add(second)
    monitors.remove(first)
    assert changes == [True] and second.monitor and not first.monitor
    monitors.remove(second)
    monitors.remove(second)         # (a RESET, then the disconnect)
    assert changes == [True, False]


def test_feed_skips_admin_commands_and_closing_clients():
    delivered = []
    monitors = Monitors(lambda on: None)
    monitors.deliver = lambda session, value: delivered.append((session.id, value))
    watching, quitting = Session(id=1), Session(id=2, close_after_reply=True)
    monitors.add(watching)
    monitors.add(quitting)
    runner = Session(id=3, addr="127.0.0.1:4000")
    monitors.feed(runner, _Cmd("admin", "noscript"), [b"CONFIG", b"GET", b"x"])
    monitors.feed(runner, _Cmd("write", "denyoom"), [b"SET", b"k", b"v"])
    assert [session_id for session_id, _ in delivered] == [1]
    assert type(delivered[0][1]) is Raw and delivered[0][1].endswith(b'[0 127.0.0.1:4000] "SET" "k" "v"\r\n')


def test_the_dispatcher_lane_is_off_while_anyone_monitors():
    harness = Harness()
    harness.ctx.monitors.deliver = harness._deliver
    dispatcher = harness.dispatcher
    full_lane = dict(dispatcher.lane)
    watcher, client = harness.session(), harness.session()
    assert harness.raw(watcher, "MONITOR") == b"+OK\r\n"
    assert dispatcher.lane == {}
    assert harness.raw(client, "SET", "k", "v") == b"+OK\r\n"
    assert harness.pending(watcher).endswith(b'"SET" "k" "v"\r\n')
    assert harness.raw(watcher, "RESET") == b"+RESET\r\n"
    assert dispatcher.lane == full_lane
    assert harness.raw(client, "GET", "k") == b"$1\r\nv\r\n"
    assert harness.pending(watcher) == b""
