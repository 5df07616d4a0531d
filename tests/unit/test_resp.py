"""RESP parsing and encoding, bytes in and bytes out (hypercache/resp.py): no sockets.

The parser has a fast path (hiredis, whole reads of well-formed requests) and a
careful path (everything else); feeding the same stream at every split point
must give the same requests and the same error, so both paths are exercised
against each other. Error texts are Redis 7.0's (checked against redis-server
in tests/blackbox/test_protocol.py).
"""
from __future__ import annotations

import itertools
import tracemalloc

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercache import resp
from hypercache.resp import Limits, RequestParser, split_inline
from hypercache.reply import NULL_ARRAY, OK, PONG, QUEUED, CommandError, OrderedSet, Push, Raw, Status, Verbatim, encode, format_double


def cmd(*args: bytes | str) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def feed(chunks, authenticated: bool = True, limits: Limits = Limits()):
    """(requests, error) after feeding chunks one by one to a fresh parser."""
    parser = RequestParser(limits, authenticated=authenticated)
    requests = []
    for chunk in chunks:
        requests += parser.feed(chunk)
        # before AUTH the parser yields one request per call, as the connection drains it
        while more := parser.feed(b""):
            requests += more
    return requests, parser.error


def every_split(data: bytes):
    """The stream whole, cut in two at every byte boundary, and byte by byte."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    yield [data[i:i + 1] for i in range(len(data))]


def assert_same_at_every_split(data: bytes, expected, error=None, **kwargs) -> None:
    for chunks in every_split(data):
        got = feed(chunks, **kwargs)
        assert got == (expected, error), f"split {[len(c) for c in chunks][:4]}..."


# -- well-formed streams ------------------------------------------------------------------

PIPELINE = [
    [b"SET", b"key:1", b"hello"],
    [b"GET", b"key:1"],
    [b"MSET", b"a", b"", b"b", b"\x00\xff binary \r\n"],
    [b"PING"],
    [b"SET", b"k", b"$3\r\nfoo\r\n*1\r\n"],          # looks like RESP inside a value
    [b"ECHO", b"\r\n$"],                              # "\r\n$" inside a value: the careful path
    [b"SET", b"$", b"*"],
]


def test_pipelined_batch_at_every_split_point():
    data = b"".join(cmd(*r) for r in PIPELINE)
    assert_same_at_every_split(data, PIPELINE)


def test_pipelined_batch_at_every_pair_of_split_points():
    requests = [[b"SET", b"k", b"v\r\n$x"], [b"GET", b"k"], [b"PING"]]
    data = b"".join(cmd(*r) for r in requests)
    for i, j in itertools.combinations(range(1, len(data)), 2):
        assert feed([data[:i], data[i:j], data[j:]]) == (requests, None), (i, j)


def test_plain_requests_at_every_split_point():
    requests = [[b"SET", b"key:%d" % i, b"x" * 10] for i in range(5)]
    assert_same_at_every_split(b"".join(cmd(*r) for r in requests), requests)


def test_requests_complete_as_their_last_byte_arrives():
    parser = RequestParser()
    data = cmd("GET", "k")
    for byte in data[:-1]:
        assert parser.feed(bytes([byte])) == []
    assert parser.feed(data[-1:]) == [[b"GET", b"k"]]
    assert parser.buffered == 0
    # and the next whole read goes through the fast path again
    assert parser.feed(cmd("PING") * 3) == [[b"PING"]] * 3


def test_fast_path_is_used_for_whole_reads_and_agrees_with_the_careful_path():
    data = b"".join(cmd(*r) for r in PIPELINE[:4])
    fast = RequestParser()
    assert fast.feed(data) == PIPELINE[:4]
    assert fast._careful is False
    careful = RequestParser(authenticated=False)       # never takes the fast path
    got = careful.feed(data)
    assert got == PIPELINE[:1]                         # before AUTH: one request at a time
    while more := careful.feed(b""):
        got += more
    assert got == PIPELINE[:4]


def test_empty_and_negative_multibulk_counts_are_skipped():
    data = b"*0\r\n*-1\r\n*-5\r\n" + cmd("PING")
    assert_same_at_every_split(data, [[b"PING"]])


def test_zero_length_arguments():
    assert_same_at_every_split(cmd("SET", "", ""), [[b"SET", b"", b""]])


def test_large_argument_arrives_in_pieces():
    value = bytes(range(256)) * 1000
    data = cmd(b"SET", b"big", value)
    parser = RequestParser()
    got = []
    for i in range(0, len(data), 4096):
        got += parser.feed(data[i:i + 4096])
    assert got == [[b"SET", b"big", value]]
    assert parser.buffered == 0


payloads = st.binary(max_size=40) | st.sampled_from([b"\r\n$", b"$", b"*", b"\r\n", b"\r\n*1\r\n", b"\n$3\r\n"])
requests_strategy = st.lists(st.lists(payloads, min_size=1, max_size=5), min_size=1, max_size=6)


@settings(max_examples=120, deadline=None)
@given(requests_strategy, st.lists(st.integers(min_value=0, max_value=10_000), max_size=4))
def test_any_requests_at_any_split_points(requests, cuts):
    data = b"".join(cmd(*r) for r in requests)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0] + points, points + [len(data)]) if data[a:b]]
    assert feed(chunks) == (requests, None)
    assert feed(chunks, authenticated=False) == (requests, None)


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=60), st.integers(min_value=0, max_value=60))
def test_garbage_never_raises_and_splitting_does_not_change_the_outcome(data, cut):
    cut = min(cut, len(data))
    whole = feed([data])
    split = feed([data[:cut], data[cut:]])
    assert split == whole
    requests, _error = whole
    assert all(type(r) is list and r and all(type(a) is bytes for a in r) for r in requests)


# -- inline commands ----------------------------------------------------------------------

@pytest.mark.parametrize("line, args", [
    (b"PING", [b"PING"]),
    (b"  SET  a   b ", [b"SET", b"a", b"b"]),
    (b"SET \"a b\" c", [b"SET", b"a b", b"c"]),
    (b"SET 'a b' c", [b"SET", b"a b", b"c"]),
    (b'ECHO "\\x41\\x4a\\x4A"', [b"ECHO", b"AJJ"]),
    (b'ECHO "\\n\\r\\t\\b\\a\\\\\\"q"', [b"ECHO", b"\n\r\t\b\a\\\"q"]),
    (b'ECHO "\\xZZ"', [b"ECHO", b"xZZ"]),                   # not hex: a plain escaped 'x'
    (b"ECHO 'it\\'s'", [b"ECHO", b"it's"]),
    (b"ECHO 'a\\nb'", [b"ECHO", b"a\\nb"]),                  # no escapes in single quotes
    (b'ECHO ""', [b"ECHO", b""]),
    (b"ECHO a\"b\"", [b"ECHO", b"ab"]),                       # quotes may start mid-word
    (b"ECHO a\vb", [b"ECHO", b"a\vb"]),                      # \v and \f end no bare word
    (b"\tPING\t", [b"PING"]),
    (b"", []),
])
def test_split_inline(line, args):
    assert split_inline(line) == args


@pytest.mark.parametrize("line", [
    b'ECHO "abc', b"ECHO 'abc", b'ECHO "a"b', b'ECHO a"b"c', b"ECHO 'a'b", b'ECHO "abc\\"', b'ECHO "abc\\',
])
def test_split_inline_unbalanced(line):
    assert split_inline(line) is None


def test_inline_commands_at_every_split_point():
    data = b"PING\r\nSET k \"v w\"\nGET k\r\n\r\n\n" + cmd("PING") + b"ECHO 'x'\r\n"
    expected = [[b"PING"], [b"SET", b"k", b"v w"], [b"GET", b"k"], [b"PING"], [b"ECHO", b"x"]]
    assert_same_at_every_split(data, expected)
    assert_same_at_every_split(data, expected, authenticated=False)


def test_inline_unbalanced_quotes_is_a_protocol_error_after_earlier_requests():
    data = b"PING\r\nECHO \"abc\r\nPING\r\n"
    assert_same_at_every_split(data, [[b"PING"]], "unbalanced quotes in request")


# What a browser sends: Chrome's sec-ch-ua header is unbalanced quotes to sdssplitargs.
HTTP_POST = (b'POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nsec-ch-ua: "Chromium";v="120"\r\n'
             b"Content-Length: 22\r\n\r\nCONFIG SET maxmemory 1")


@pytest.mark.parametrize("data, expected", [
    (HTTP_POST, [[b"POST", b"/x", b"HTTP/1.1"]]),
    (b"PING\r\nhOsT: x\r\nECHO \"abc\r\n", [[b"PING"], [b"hOsT:", b"x"]]),
])
def test_parsing_stops_at_a_post_or_host_line(data, expected):
    # The node closes the connection on that line: what follows stays unparsed,
    # so it cannot earn a protocol error reply (Redis parses no further either).
    for chunks in every_split(data):
        parser = RequestParser()
        requests = []
        for chunk in chunks:
            if not requests or requests[-1][0].lower() not in (b"post", b"host:"):
                requests += parser.feed(chunk)
        assert requests == expected and parser.error is None, [len(c) for c in chunks][:4]


def test_inline_request_too_big():
    assert feed([b"A" * (64 * 1024)]) == ([], None)              # still waiting for the newline
    assert feed([b"A" * (64 * 1024 + 1)]) == ([], "too big inline request")
    line = b"ECHO " + b"x" * (64 * 1024 - 10) + b"\r\n"             # long but terminated: fine
    assert feed([line[:40000], line[40000:]]) == ([[b"ECHO", b"x" * (64 * 1024 - 10)]], None)


# -- protocol errors, Redis's texts ----------------------------------------------------------

@pytest.mark.parametrize("header", [
    b"*abc", b"*+5", b"* 5", b"*5 ", b"*1_0", b"*05", b"*00", b"*-0", b"*0x5", b"*", b"*2147483648",
    b"*99999999999999999999", b"*1.0", b"*\xd9\xa3", b"*4294967295",
])
def test_invalid_multibulk_length(header):
    assert_same_at_every_split(cmd("PING") + header + b"\r\n", [[b"PING"]], "invalid multibulk length")


@pytest.mark.parametrize("header", [
    b"$abc", b"$+5", b"$ 5", b"$5 ", b"$1_0", b"$05", b"$00", b"$-0", b"$-1", b"$-5", b"$", b"$0x1",
    b"$536870913", b"$99999999999999999999",
])
def test_invalid_bulk_length(header):
    data = cmd("PING") + b"*2\r\n$3\r\nGET\r\n" + header + b"\r\nxxxxx\r\n"
    assert_same_at_every_split(data, [[b"PING"]], "invalid bulk length")


@pytest.mark.parametrize("element, got", [
    (b"foo\r\n", "f"), (b":1\r\n", ":"), (b"+OK\r\n", "+"), (b"-ERR x\r\n", "-"),
    (b"*1\r\n$1\r\na\r\n", "*"), (b"%1\r\n$1\r\na\r\n$1\r\nb\r\n", "%"), (b"_\r\n", "_"),
    (b"#t\r\n", "#"), (b",1.5\r\n", ","), (b"~1\r\n$1\r\na\r\n", "~"),
])
def test_expected_dollar(element, got):
    """Only bulk strings are arguments: hiredis accepts these element types, Redis refuses them."""
    data = cmd("PING") + b"*2\r\n$4\r\nECHO\r\n" + element + cmd("PING")
    assert_same_at_every_split(data, [[b"PING"]], f"expected '$', got '{got}'")


def test_nested_array_and_non_bulk_elements_never_reach_a_command():
    """Counting '$' headers alone would be fooled: a nested array's extra headers hide a nil."""
    for data in [b"*3\r\n*1\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n",
                 b"*3\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n:1\r\n$1\r\nc\r\n",
                 b"*2\r\n:5\r\n$3\r\n$ab\r\n"]:
        requests, error = feed([data])
        assert requests == []
        assert error.startswith("expected '$', got '")


def test_expected_dollar_is_judged_on_a_complete_line():
    parser = RequestParser()
    assert parser.feed(b"*1\r\nfo") == [] and parser.error is None
    assert parser.feed(b"o\r\n") == [] and parser.error == "expected '$', got 'f'"


def test_too_big_count_strings():
    assert feed([b"*" + b"1" * (64 * 1024 + 1)]) == ([], "too big mbulk count string")
    assert feed([b"*1\r\n$" + b"1" * (64 * 1024 + 1)]) == ([], "too big bulk count string")
    assert feed([b"*1\r\nx" + b"1" * (64 * 1024 + 1)]) == ([], "too big bulk count string")


def test_unauthenticated_limits():
    ten = cmd(*[b"a"] * 10)
    assert feed([ten], authenticated=False) == ([[b"a"] * 10], None)
    assert feed([cmd(*[b"a"] * 11)], authenticated=False) == ([], "unauthenticated multibulk length")
    assert feed([cmd(b"AUTH", b"p" * 16384)], authenticated=False) == ([[b"AUTH", b"p" * 16384]], None)
    assert feed([cmd(b"AUTH", b"p" * 16385)], authenticated=False) == ([], "unauthenticated bulk length")
    # invalid beats unauthenticated, as in Redis
    assert feed([b"*1x\r\n"], authenticated=False) == ([], "invalid multibulk length")
    assert feed([b"*1\r\n$-3\r\n"], authenticated=False) == ([], "invalid bulk length")
    # the same stream is fine once authenticated
    assert feed([cmd(*[b"a"] * 11)]) == ([[b"a"] * 11], None)
    assert feed([cmd(b"SET", b"k", b"v" * 20000)]) == ([[b"SET", b"k", b"v" * 20000]], None)


def test_authentication_lifts_the_limits_mid_stream():
    parser = RequestParser(authenticated=False)
    assert parser.feed(cmd("AUTH", "pw")) == [[b"AUTH", b"pw"]]
    parser.authenticated = True
    assert parser.feed(cmd(*[b"x"] * 20)) == [[b"x"] * 20]


def test_huge_declared_lengths_allocate_nothing():
    parser = RequestParser()
    assert parser.feed(b"*2147483647\r\n$536870912\r\nabc") == []
    assert parser.error is None
    assert parser.buffered < 100
    limits = Limits(proto_max_bulk_len=100)
    assert feed([b"*1\r\n$100\r\n" + b"x" * 100 + b"\r\n"], limits=limits) == ([[b"x" * 100]], None)
    assert feed([b"*1\r\n$101\r\n"], limits=limits) == ([], "invalid bulk length")


def test_query_buffer_limit():
    limits = Limits(client_query_buffer_limit=1000)
    parser = RequestParser(limits)
    assert parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n") == []
    requests = []
    for _ in range(5):
        requests += parser.feed(b"x" * 300)
        if parser.error:
            break
    assert requests == []
    assert parser.error == "query buffer limit exceeded"
    # many small complete requests never count against it
    parser = RequestParser(limits)
    assert parser.feed(cmd("PING") * 500) == [[b"PING"]] * 500
    assert parser.error is None


def test_after_an_error_the_parser_stays_failed():
    parser = RequestParser()
    assert parser.feed(b"*1\r\n$x\r\n") == []
    assert parser.error == "invalid bulk length"
    assert parser.feed(cmd("PING")) == []
    assert parser.error == "invalid bulk length"


# -- encoding -----------------------------------------------------------------------------

def enc(value, protocol: int) -> bytes:
    out: list = []
    encode(value, protocol, out)
    return b"".join(out)


@pytest.mark.parametrize("value, resp2, resp3", [
    (b"hello", b"$5\r\nhello\r\n", b"$5\r\nhello\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (b"a\r\nb", b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
    ("héllo", b"$6\r\nh\xc3\xa9llo\r\n", b"$6\r\nh\xc3\xa9llo\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (-42, b":-42\r\n", b":-42\r\n"),
    (2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
    (3.0, b"$1\r\n3\r\n", b",3\r\n"),
    (-0.0, b"$2\r\n-0\r\n", b",-0\r\n"),
    (1e100, b"$6\r\n1e+100\r\n", b",1e+100\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    (float("-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (Status(b"OK"), b"+OK\r\n", b"+OK\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (QUEUED, b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (PONG, b"+PONG\r\n", b"+PONG\r\n"),
    (Raw(b":7\r\n"), b":7\r\n", b":7\r\n"),
    (CommandError("ERR syntax error"), b"-ERR syntax error\r\n", b"-ERR syntax error\r\n"),
    (CommandError("ERR a\r\nb\nc"), b"-ERR a  b c\r\n", b"-ERR a  b c\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ((b"a", [b"b", []]), b"*2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*0\r\n", b"*2\r\n$1\r\na\r\n*2\r\n$1\r\nb\r\n*0\r\n"),
    ({b"f": 1, b"g": b"v"}, b"*4\r\n$1\r\nf\r\n:1\r\n$1\r\ng\r\n$1\r\nv\r\n",
     b"%2\r\n$1\r\nf\r\n:1\r\n$1\r\ng\r\n$1\r\nv\r\n"),
    ({}, b"*0\r\n", b"%0\r\n"),
    ({b"x"}, b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
    (frozenset(), b"*0\r\n", b"~0\r\n"),
    (OrderedSet([b"b", b"a"]), b"*2\r\n$1\r\nb\r\n$1\r\na\r\n", b"~2\r\n$1\r\nb\r\n$1\r\na\r\n"),
    (Verbatim(b"# Server\r\n"), b"$10\r\n# Server\r\n\r\n", b"=14\r\ntxt:# Server\r\n\r\n"),
    (Push([b"message", b"ch", b"hi"]), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
     b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
    ([CommandError("WRONGTYPE Operation against a key holding the wrong kind of value"), OK],
     b"*2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+OK\r\n",
     b"*2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+OK\r\n"),
])
def test_encode(value, resp2, resp3):
    assert enc(value, 2) == resp2
    assert enc(value, 3) == resp3


def test_encode_nan():
    assert format_double(float("nan")) == b"nan"
    assert enc(float("nan"), 3) == b",nan\r\n"


def test_encode_rejects_unknown_types():
    with pytest.raises(TypeError):
        enc(object(), 2)


def test_encode_appends_to_one_batch():
    out: list = []
    for value in (OK, b"v", 1, None):
        encode(value, 2, out)
    assert b"".join(out) == b"+OK\r\n$1\r\nv\r\n:1\r\n$-1\r\n"


replies = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1) | st.binary(max_size=20)
    | st.floats(allow_nan=False) | st.builds(Status, st.sampled_from([b"OK", b"PONG", b"QUEUED"])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.binary(max_size=5), children, max_size=3),
    max_leaves=12,
)


def _expected(value, protocol: int):
    """What hiredis should decode from our encoding (RESP2 flattens maps, turns bools/doubles around)."""
    if isinstance(value, bool):
        return value if protocol == 3 else int(value)
    if isinstance(value, float):
        return value if protocol == 3 else format_double(value)
    if isinstance(value, Status):
        return bytes(value)
    if isinstance(value, dict):
        if protocol == 3:
            return {k: _expected(v, 3) for k, v in value.items()}
        return [x for k, v in value.items() for x in (k, _expected(v, 2))]
    if isinstance(value, list):
        return [_expected(v, protocol) for v in value]
    return value


@settings(max_examples=120, deadline=None)
@given(replies)
def test_encoding_round_trips_through_hiredis(value):
    for protocol in (2, 3):
        reader = hiredis.Reader()
        reader.feed(enc(value, protocol))
        decoded = reader.gets()
        assert decoded == _expected(value, protocol)
        assert reader.gets() is False


def test_many_empty_arguments_meet_the_query_buffer_limit():
    """Empty arguments cost memory too (a list slot, an object): they count towards the limit."""
    limits = Limits(client_query_buffer_limit=1024 * 1024)
    parser = RequestParser(limits)
    parser.feed(b"*10000000\r\n")
    chunk = b"$0\r\n\r\n" * 10_000
    for _ in range(100):
        assert parser.feed(chunk) == []
        if parser.error is not None:
            break
    assert parser.error == "query buffer limit exceeded"


@pytest.mark.parametrize("data, requests", [
    (b"*1000000000\r\n", []),                                       # 15 bytes, before any AUTH
    (b"*1\r\n$4\r\nPING\r\n*2147483647\r\n", [[b"PING"]]),        # after a whole request
    (b"*1\r\n$4\r\nPING\r\n*2\r\n*1000000000\r\n", [[b"PING"]]),   # nested: Redis's error
    # RESP3 set, push and attribute headers: hiredis allocates them too; Redis reads inline commands
    (b"*1\r\n$1\r\n~\r\n~1000000000\r\n", [[b"~"], [b"~1000000000"]]),
    (b"*1\r\n$1\r\n>\r\n>1000000000\r\n", [[b">"], [b">1000000000"]]),
    (b"*1\r\n$1\r\n|\r\n|1000000000\r\n", [[b"|"], [b"|1000000000"]]),
])
def test_a_huge_declared_count_is_never_allocated_ahead_of_its_elements(data, requests):
    """hiredis allocates an array at its header; freeing 10**9 slots stalled the hub for seconds."""
    tracemalloc.start()
    try:
        parser = RequestParser()
        assert parser.feed(data) == requests
        del parser
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"{peak} bytes allocated for a {len(data)}-byte read"


def feed_all(parser: RequestParser, data: bytes) -> list:
    """Feed `data`, then b"" while the parser stopped at its per-turn budget (the connection's zero timer)."""
    requests = parser.feed(data)
    while parser.more:
        requests += parser.feed(b"")
    return requests


def test_counts_below_the_guard_and_resp3_bytes_in_payloads_keep_the_fast_path():
    parser = RequestParser()
    data = cmd("SET", "k", "a~12|>99*1234567") + cmd(*[b"x"] * 999_999)
    assert feed_all(parser, data) == [[b"SET", b"k", b"a~12|>99*1234567"], [b"x"] * 999_999]
    assert not parser._careful


def parse_in_calls(parser: RequestParser, reads: list[bytes]) -> tuple[list, list[int]]:
    """Feed each read, then b"" while the parser stopped at its budget; the requests and the arguments taken per call."""
    requests: list = []
    taken: list[int] = []

    def held() -> int:
        return sum(map(len, requests)) + len(parser._args or ())
    for data in reads:
        before = held()
        requests += parser.feed(data)
        taken.append(held() - before)
        while parser.more:
            before = held()
            requests += parser.feed(b"")
            taken.append(held() - before)
    return requests, taken


def test_the_careful_path_parses_a_bounded_number_of_arguments_per_call():
    """A 64 KB read of empty arguments cost 20-35 ms of hub time in one go; now it comes in slices.

    Plain runs of bulks go to hiredis (BULKS_MAX a call); payloads full of `$`
    defeat that (in 16 KB reads, fewer bulks than the `$` signs promise) and
    are parsed one by one, ARGS_PER_TURN a call.
    """
    for payload, per_call in ((b"", resp.BULKS_MAX), (b"\r\n$", resp.ARGS_PER_TURN)):
        count = 3 * resp.BULKS_MAX + 7
        element = b"$%d\r\n%s\r\n" % (len(payload), payload)
        data = b"*%d\r\n" % count + element * count + cmd("PING")
        reads = [data[at:at + resp.MANY_ARGS_READ_SIZE] for at in range(0, len(data), resp.MANY_ARGS_READ_SIZE)]
        requests, taken = parse_in_calls(RequestParser(), reads)
        assert requests == [[payload] * count, [b"PING"]]
        assert max(taken) <= per_call + 1


ELEMENTS = st.one_of(
    st.binary(max_size=12).map(lambda b: b"$%d\r\n%s\r\n" % (len(b), b)),
    st.sampled_from([b"$3\r\n\r\n$\r\n", b"$0\r\n\r\n", b"$12\r\n0123456789ab\r\n"]),
    # what hiredis reads but Redis refuses inside a request
    st.sampled_from([b"+OK\r\n", b"+0123456789\r\n", b":1\r\n", b"=14\r\ntxt:0123456789\r\n",
                     b"*1\r\n$1\r\na\r\n", b"$-1\r\n", b"$01\r\na\r\n", b",1.5\r\n", b"(12\r\n",
                     b"$2\r\nabc\r\n", b"$5\r\nab\r\n"]))
BULKS = st.binary(max_size=12).map(lambda b: b"$%d\r\n%s\r\n" % (len(b), b))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(BULKS, BULKS, BULKS, ELEMENTS), min_size=33, max_size=120),
       st.lists(st.integers(min_value=1, max_value=400), max_size=6))
def test_bulks_taken_by_hiredis_parse_as_one_by_one(elements, cuts):
    """Batched or not, the same requests and the same error (Redis's), however the bytes are split into reads."""
    data = b"*%d\r\n" % len(elements) + b"".join(elements) + cmd("PING")
    reads, at = [], 0
    for cut in cuts:
        reads.append(data[at:at + cut])
        at += cut
    reads = [r for r in reads + [data[at:]] if r]
    batched = RequestParser()
    got = parse_in_calls(batched, reads)[0]
    saved = resp.BULKS_MIN
    resp.BULKS_MIN = 1 << 40
    try:
        one_by_one = RequestParser()
        expected = parse_in_calls(one_by_one, reads)[0]
    finally:
        resp.BULKS_MIN = saved
    assert (got, batched.error) == (expected, one_by_one.error)


def test_a_bulk_closed_by_two_other_bytes_does_not_lose_the_next_requests_header():
    """Found by the fuzzer: `value\\rJ` (two closing bytes skipped unread, as Redis does) took a CRLF
    away and the next request's header `*2\\r\\n`, swallowed by hiredis, gave one back: the fast path's
    counts matched, the header was lost, and the rest ran as inline commands."""
    parser = RequestParser()
    assert parser.feed(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\rJ*2\r\n") == [[b"SET", b"key", b"value"]]
    assert parser.feed(b"$3\r\nGET\r\n$3\r\nkey\r\n") == [[b"GET", b"key"]]
    assert parser.error is None


@pytest.mark.parametrize("data", [
    b"*3\r\n$3\r\nSET\r\n+0123456789\r\n=7\r\ntxt:val\r\n",
    b"*8\r\n$4\r\nMSET\r\n+\r\n+\r\n+\r\n+\r\n=4\r\ntxt:\r\n=4\r\ntxt:\r\n=4\r\ntxt:\r\n",
    b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n+0123456789\r\n=5\r\ntxt:x\r\n",
])
def test_elements_that_are_not_bulks_are_refused_even_when_their_sizes_balance(data):
    """A simple string (shorter than its bulk) and a RESP3 verbatim (longer) come back from
    hiredis as bytes; together they matched a wire-size check (review). Redis refuses both."""
    parser = RequestParser()
    requests = parser.feed(data)
    assert parser.error == "expected '$', got '+'"
    assert requests == ([[b"PING"]] if data.startswith(b"*1\r\n$4\r\nPING") else [])


def _one_by_one(value, protocol: int) -> bytes:
    """An array's or map's encoding element by element: what the big-array path must write."""
    if isinstance(value, dict):
        head = b"%%%d\r\n" % len(value) if protocol == 3 else b"*%d\r\n" % (2 * len(value))
        return head + b"".join(enc(x, protocol) for k, v in value.items() for x in (k, v))
    head = (b"~%d\r\n" if protocol == 3 and isinstance(value, (set, OrderedSet)) else b"*%d\r\n") % len(value)
    return head + b"".join(enc(item, protocol) for item in value)


_scalars = (st.binary(max_size=6) | st.floats() | st.integers(-5, 5) | st.none()
            | st.builds(Status, st.just(b"OK")))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=6) | st.floats(), min_size=30, max_size=80),
       st.lists(_scalars, min_size=30, max_size=80), st.sampled_from([list, tuple, OrderedSet]))
def test_big_arrays_encode_as_element_by_element(plain, mixed, kind):
    """Arrays from 32 elements go through reply._encode_many (a join in C for bytes, bytes and RESP2 doubles)."""
    for items in (plain, mixed, [b"x%d" % i for i in range(len(plain))]):
        for protocol in (2, 3):
            assert enc(kind(items), protocol) == _one_by_one(kind(items), protocol)


def test_arrays_and_maps_past_a_piece_encode_as_element_by_element():
    """Pieces of pulse.EVERY: one of plain bytes, the next mixed, a map of bytes, a set."""
    from hypercache.pulse import EVERY
    items = [b"m%d" % i for i in range(EVERY)] + [b"m", 1.5, None, 7] * 300 + [b"z"] * 50
    fields = {b"f%d" % i: b"v%d" % i for i in range(EVERY + 100)}
    withscores = [x for i in range(EVERY) for x in (b"m%d" % i, i / 7)] + [1.5, b"odd", b"out"]
    for value in (items, fields, set(fields), [float(i) for i in range(EVERY + 3)], withscores):
        for protocol in (2, 3):
            assert enc(value, protocol) == _one_by_one(value, protocol)
