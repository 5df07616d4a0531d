"""CLUSTER SLOTS / NODES / SHARDS / INFO replies, built from slot map values."""
from loadtest.ring_balance import node_id
from hypercache.commands.cluster import info_reply, nodes_reply, shards_reply, slots_reply
from mesh.keyslot import SLOT_COUNT
from mesh.slotmap import Member, SlotMap


def member(index: int) -> Member:
    return Member(node_id(index), "127.0.0.1", 8080 + index, 18080 + index, 9080 + index)


def three() -> SlotMap:
    return SlotMap.single(member(0), 2).with_member(member(1)).with_member(member(2))


def test_slots_cover_every_slot_with_primary_then_replica():
    reply = slots_reply(three())
    covered = sum(last - first + 1 for first, last, *_ in reply)
    assert covered == SLOT_COUNT
    first, last, primary, replica = reply[0]
    assert primary[0] == b"127.0.0.1" and isinstance(primary[1], int) and len(primary[2]) == 40
    assert primary[3] == {} and primary[2] != replica[2]


def test_single_node_slots_is_one_range():
    assert slots_reply(SlotMap.single(member(0))) == [[0, SLOT_COUNT - 1, [b"127.0.0.1", 8080, node_id(0).encode(), {}]]]


def test_nodes_lines_have_redis_fields_and_fail_for_dead_members():
    slotmap = three().without_member(node_id(2))
    members = {node_id(2): {"host": "127.0.0.1", "port": 8082, "mesh_port": 18082, "state": "dead",
                            "last_heartbeat_age_s": 5.0}}
    text = nodes_reply(slotmap, members, node_id(0), 1000.0).decode()
    lines = text.strip().split("\n")
    assert len(lines) == 3
    mine = next(line for line in lines if line.startswith(node_id(0)))
    fields = mine.split(" ")
    assert fields[1] == "127.0.0.1:8080@18080" and fields[2] == "myself,master" and fields[3] == "-"
    assert fields[6] == str(slotmap.epoch) and fields[7] == "connected" and len(fields) > 8
    dead = next(line for line in lines if line.startswith(node_id(2))).split(" ")
    assert dead[2] == "master,fail" and dead[5] == "995000" and dead[7] == "disconnected" and len(dead) == 8
    slots = 0
    for line in lines:
        for part in line.split(" ")[8:]:
            first, _, last = part.partition("-")
            slots += int(last or first) - int(first) + 1
    assert slots == SLOT_COUNT


def test_shards_group_slots_by_owner_list():
    reply = shards_reply(three(), {})
    assert sum(sum(s["slots"][i + 1] - s["slots"][i] + 1 for i in range(0, len(s["slots"]), 2))
               for s in reply) == SLOT_COUNT
    roles = [node["role"] for node in reply[0]["nodes"]]
    assert roles == ["master", "replica"]


def test_info_reports_state_epoch_and_fail_slots():
    slotmap = three()
    ok = info_reply(slotmap, {"members": {m.node_id: {"state": "alive"} for m in slotmap.members},
                              "accepting_writes": True, "mesh_in": 3, "mesh_out": 4}).decode()
    assert "cluster_state:ok\r\n" in ok and "cluster_known_nodes:3\r\n" in ok
    assert f"cluster_current_epoch:{slotmap.epoch}\r\n" in ok and "cluster_size:3\r\n" in ok
    assert "cluster_stats_messages_sent:4\r\n" in ok
    members = {m.node_id: {"state": "alive"} for m in slotmap.members}
    members[node_id(1)] = {"state": "dead"}
    failing = info_reply(slotmap, {"members": members, "accepting_writes": True}).decode()
    assert "cluster_state:fail\r\n" in failing and "cluster_slots_fail:0\r\n" not in failing
