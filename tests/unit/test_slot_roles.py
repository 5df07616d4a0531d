"""SlotRoles: what a map asks of one node, derived from the map's owner runs, equals a walk of every slot."""
from hypothesis import given, settings, strategies as st

from loadtest.ring_balance import node_id
from hypercache.slot_roles import slot_roles
from mesh.holdings import Holdings
from mesh.keyslot import SLOT_COUNT
from mesh.slotmap import Member, SlotMap


def member(index: int) -> Member:
    port = 8080 + index % 1000
    return Member(node_id(index), "127.0.0.1", port, port + 10000, port + 1000)


def grown(members: int, replication_factor: int, salt: int) -> SlotMap:
    slotmap = SlotMap.single(member(salt), replication_factor)
    for index in range(1, members):
        slotmap = slotmap.with_member(member(salt + index))
    return slotmap


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 24), st.integers(1, 3), st.integers(0, 1_000), st.data())
def test_roles_from_the_runs_equal_a_walk_of_every_slot(members, replication_factor, salt, data):
    slotmap = grown(members, replication_factor, salt * 100)
    # (one of the map's members, or a node outside it: it owns nothing)
    me = node_id(salt * 100 + data.draw(st.integers(0, members)))
    roles = slot_roles(slotmap.owner_ranges(), me)
    owners = slotmap.owners
    assert roles.led == tuple(slot for slot in range(SLOT_COUNT) if owners[slot][0] == me)
    assert roles.led_replicas == tuple((slot, owners[slot][1:]) for slot in range(SLOT_COUNT)
                                       if owners[slot][0] == me and len(owners[slot]) > 1)
    assert roles.replica_flags == bytes(1 if me in owners[slot][1:] else 0 for slot in range(SLOT_COUNT))
    assert roles.owned_flags == bytes(1 if me in owners[slot] else 0 for slot in range(SLOT_COUNT))
    if not slotmap.has_member(me):
        assert not roles.led and not any(roles.owned_flags)


def test_the_slots_led_and_not_held_are_the_same_from_the_roles_as_from_the_owners():
    slotmap = grown(7, 2, 0)
    me = node_id(3)
    holdings = Holdings(me, True)
    led = slot_roles(slotmap.owner_ranges(), me).led
    for slot in led:
        holdings.loaded[slot] = 1 if slot % 3 else 0
    unheld = holdings.led_unheld(slotmap.owners)
    assert unheld and len(unheld) < len(led)
    assert holdings.led_unheld(slotmap.owners, led) == unheld
