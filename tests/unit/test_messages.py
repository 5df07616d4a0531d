"""Wire messages: round trips, and hostile bytes come back as Invalid, never as an exception."""
import msgpack
from hypothesis import given, settings, strategies as st

from loadtest.ring_balance import node_id
from mesh import messages
from mesh.messages import (Certificate, Commit, Prepare, Promise, Gossip, Heartbeat, Hello, Invalid, Leave, Plan,
                           Proposal, Publish, RollAnswer, RollCall, State, Vote, VoteKey, decode, digest, echo_key,
                           encode)
from mesh.slotmap import Member, SlotMap


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def slotmap() -> SlotMap:
    return SlotMap.single(member(0), 2).with_member(member(1)).with_member(member(2))


def heartbeat() -> Heartbeat:
    return Heartbeat(node_id(0), 7, 3, 2, digest(slotmap()), member(0),
                     (Gossip(member(1), 0, State.ALIVE), Gossip(member(2), 4, State.SUSPECT)),
                     1000, 2048, 12.5, ((0, 100, 42),), ((echo_key(node_id(1)), 12), (echo_key(node_id(2)), 0)),
                     vote_key=b"k" * 32)


def test_every_kind_round_trips():
    for message in (heartbeat(), Leave(node_id(1), 3, 9), Proposal(node_id(0), 4, 3, 2, slotmap()),
                    Vote(node_id(2), 5, 3, 2, b"x" * 20, b"s" * 64),
                    Certificate(node_id(0), 9, 3, 2, b"x" * 20, ((0, b"s" * 64), (2, b"t" * 64))),
                    VoteKey(node_id(1), 10, b"k" * 32, node_id(0)), VoteKey(node_id(0), 11, b"k" * 32, ""),
                    Prepare(node_id(0), 7, 3, 2), Promise(node_id(1), 8, 3, 2, node_id(0), 0, None),
                    Promise(node_id(1), 9, 4, 2, node_id(0), 3, slotmap()), Commit(node_id(1), 6, slotmap()),
                    Commit(node_id(1), 7, slotmap(), 4, ((1, b"s" * 64),)),
                    Publish(node_id(0), 8, b"news", b"hello"), Hello(node_id(3), 0, member(3)),
                    Plan(node_id(0), 12, slotmap()), RollCall(node_id(2), 13, 5), RollAnswer(node_id(1), 14, 13)):
        assert decode(encode(message)) == message


def test_a_roll_call_or_answer_of_the_wrong_shape_is_refused():
    for body in ([], [1, 2], [-1], ["x"]):
        for kind in (14, 15):
            assert isinstance(decode(msgpack.packb([messages.VERSION, kind, node_id(0), 1, *body])), Invalid)


def test_a_plan_made_on_no_base_is_refused():
    founded = SlotMap.single(member(0), 2)      # (epoch 0: no base)
    assert isinstance(decode(encode(Plan(node_id(0), 12, founded))), Invalid)


def test_keys_and_signatures_of_the_wrong_size_are_refused():
    vote = msgpack.unpackb(encode(Vote(node_id(2), 5, 3, 2, b"x" * 20, b"s" * 64)))
    assert decode(msgpack.packb(vote[:-1] + [b"s" * 63])) == Invalid("schema")
    certificate = msgpack.unpackb(encode(Certificate(node_id(0), 9, 3, 2, b"x" * 20, ((0, b"s" * 64),))))
    assert decode(msgpack.packb(certificate[:-1] + [[[0, b"s" * 65]]])) == Invalid("schema")
    assert decode(msgpack.packb(certificate[:-1] + [[[0, b"s" * 64]] * (messages.MAX_MEMBERS + 1)])) == \
        Invalid("schema")
    key = msgpack.unpackb(encode(VoteKey(node_id(1), 10, b"k" * 32, "")))
    assert decode(msgpack.packb(key[:-2] + [b"k" * 31, ""])) == Invalid("schema")
    assert decode(msgpack.packb(key[:-1] + ["someone"])) == Invalid("node_id")
    beat = msgpack.unpackb(encode(heartbeat()))
    assert decode(msgpack.packb(beat[:-1] + [b"k" * 33])) == Invalid("schema")


def test_a_quiet_heartbeat_leaves_out_its_senders_addresses():
    import dataclasses
    quiet = dataclasses.replace(heartbeat(), me=None, vote_key=b"")
    assert decode(encode(quiet)) == quiet
    assert len(encode(quiet)) <= len(encode(heartbeat())) - 60


def test_decoded_map_derives_the_same_owners():
    decoded = decode(encode(Commit(node_id(0), 1, slotmap())))
    assert decoded.slotmap.owners == slotmap().owners
    assert digest(decoded.slotmap) == digest(slotmap())


def test_digest_changes_with_content():
    assert digest(slotmap()) != digest(slotmap().without_member(node_id(1)))


def test_invalid_inputs_have_reasons():
    good = msgpack.unpackb(encode(Leave(node_id(1), 3, 9)))
    assert decode(b"\xc1") == Invalid("not_msgpack")
    assert decode(b"x" * (messages.MAX_MESSAGE_BYTES + 1)) == Invalid("too_long")
    assert decode(msgpack.packb([messages.VERSION + 1] + good[1:])) == Invalid("version")
    assert decode(msgpack.packb([1] + good[1:])) == Invalid("version")     # before maps needed proof
    assert decode(msgpack.packb([messages.VERSION, 99] + good[2:])) == Invalid("kind")
    assert decode(msgpack.packb(good[:2] + ["NOTHEX"] + good[3:])) == Invalid("node_id")
    assert decode(msgpack.packb(good[:4] + [-1])) == Invalid("schema")
    assert decode(msgpack.packb(good + [1])) == Invalid("schema")
    assert decode(msgpack.packb({"a": 1})) == Invalid("not_msgpack")


def test_a_member_host_zmq_cannot_connect_to_is_invalid():
    for host in ("bad host", "*", "1.2.3.4/x", "h\n"):
        hello = Hello(node_id(3), 0, Member(node_id(3), host, 1, 2, 3))
        assert decode(encode(hello)) == Invalid("schema"), host
    for host in ("10.0.0.7", "::1", "fe80::1%eth0", "cache-1.example.com", "hypercache_worker_3"):
        hello = Hello(node_id(3), 0, Member(node_id(3), host, 1, 2, 3))
        assert decode(encode(hello)) == hello, host


def test_heartbeat_must_describe_its_sender():
    fields = msgpack.unpackb(encode(heartbeat()))
    fields[2] = node_id(5)
    assert decode(msgpack.packb(fields)) == Invalid("sender")


def test_inconsistent_map_is_invalid():
    fields = msgpack.unpackb(encode(Commit(node_id(0), 1, slotmap())))
    fields[4][3] = list(reversed(fields[4][3]))  # token positions out of order
    assert decode(msgpack.packb(fields)) == Invalid("schema")
    fields = msgpack.unpackb(encode(Commit(node_id(0), 1, slotmap())))
    fields[4][4][0] = 77  # token owner index out of range
    assert decode(msgpack.packb(fields)) == Invalid("schema")


def test_a_map_token_that_is_not_a_plain_int_in_range_is_invalid():
    """The tokens are checked a list at a time (not per token): the same checks as each field's."""
    for column in (3, 4):                   # positions, owner indexes
        for bad in (True, False, 0.0, -1, 1 << 63, "0", None, [0]):
            fields = msgpack.unpackb(encode(Commit(node_id(0), 1, slotmap())))
            fields[4][column][0] = bad
            assert decode(msgpack.packb(fields)) == Invalid("schema"), (column, bad)
    fields = msgpack.unpackb(encode(Commit(node_id(0), 1, slotmap())))
    fields[4][4][-1] = 3                    # a fourth member, of three
    assert decode(msgpack.packb(fields)) == Invalid("schema")


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    assert isinstance(decode(data), (Invalid, Heartbeat, Leave, Proposal, Vote, Commit, Publish, Hello, Prepare, Promise))


@settings(max_examples=300)
@given(st.data())
def test_mutated_messages_never_raise(data):
    raw = bytearray(encode(heartbeat()))
    for _ in range(data.draw(st.integers(1, 5))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert isinstance(decode(bytes(raw)), (Invalid, Heartbeat, Leave, Proposal, Vote, Commit, Publish, Hello,
                                           Prepare, Promise, Certificate, VoteKey))


def test_a_map_carries_its_base_and_one_saved_without_it_still_reads():
    decoded = decode(encode(Commit(node_id(0), 1, slotmap())))
    assert decoded.slotmap.base_epoch == slotmap().base_epoch == 1
    # a ballot file written before maps carried their base holds 7 fields
    old = msgpack.unpackb(messages.pack_slotmap(slotmap()))[:7]
    assert messages.unpack_slotmap(msgpack.packb(old)).base_epoch is None
    # a base at or past the map's own epoch is no map's history
    forged = msgpack.unpackb(encode(Commit(node_id(0), 1, slotmap())))
    forged[4][-1] = forged[4][0]
    assert decode(msgpack.packb(forged)) == Invalid("schema")


def test_a_heartbeat_echo_must_name_a_peer_by_8_bytes_and_a_seq():
    good = msgpack.unpackb(encode(heartbeat()))
    for echo in ([b"short", 1], [b"x" * 8, -1], [b"x" * 8], "x"):
        assert decode(msgpack.packb(good[:13] + [[echo]] + good[14:])) == Invalid("schema")     # `heard`
    assert decode(msgpack.packb(good[:-1])) == Invalid("schema")          # a version-2 heartbeat: no echoes


def test_a_member_seen_before_is_still_checked_when_it_comes_again():
    """Decoded members are remembered by their fields (the news of a join repeats them in
    every heartbeat); a float or a bool that equals a known port or incarnation is still refused."""
    fields = msgpack.unpackb(encode(heartbeat()))
    assert decode(msgpack.packb(fields)) == heartbeat()     # (now known)
    for spoil in (lambda entry: entry[0].__setitem__(2, float(entry[0][2])),     # port 8081.0
                  lambda entry: entry[0].__setitem__(4, float(entry[0][4])),
                  lambda entry: entry.__setitem__(1, False),                     # incarnation 0
                  lambda entry: entry.__setitem__(2, State.ALIVE.encode())):
        spoiled = msgpack.unpackb(encode(heartbeat()))
        spoil(spoiled[8][0])
        assert decode(msgpack.packb(spoiled)) == Invalid("schema")
    again = msgpack.unpackb(encode(heartbeat()))
    again[8][0][2] = State.DEAD                   # the same member in another state is another entry
    assert decode(msgpack.packb(again)).members[0] == Gossip(member(1), 0, State.DEAD)
    fields[7][2] = float(fields[7][2])            # the sender's own addresses, known too
    assert decode(msgpack.packb(fields)) == Invalid("schema")


def test_what_decoding_remembers_stays_bounded():
    for index in range(messages.KNOWN_AT_MOST + 50):
        hello = Hello(node_id(index), 0, member(index))
        assert decode(encode(hello)) == hello
    assert 50 <= len(messages._KNOWN_MEMBERS) <= messages.KNOWN_AT_MOST


def test_remembering_changes_no_reason_and_decode_takes_any_bytes_like_input():
    fields = msgpack.unpackb(encode(heartbeat()))
    fields[8][0][0][0] = ["not", "an", "id"]       # unhashable: no lookup, the checks say why
    assert decode(msgpack.packb(fields)) == Invalid("node_id")
    data = encode(heartbeat())
    assert decode(bytearray(data)) == decode(memoryview(data)) == heartbeat()
