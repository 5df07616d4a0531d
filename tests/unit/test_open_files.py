"""The open-file plan: the limit a node asks for, and the clients and mesh peers that fit (hypercache/open_files.py)."""
from __future__ import annotations

import resource

from hypercache import config, open_files
from hypercache.open_files import FILES_PER_PEER, RESERVED_FDS, clients_room, files_for, plan
from mesh.messages import MAX_MEMBERS

FULL_MAP = MAX_MEMBERS - 1
WANTED = RESERVED_FDS + 10_000 + FILES_PER_PEER * FULL_MAP


def test_the_config_default_is_a_full_maps_peers():
    assert config.MAX_MESH_PEERS == FULL_MAP == config.Config().max_mesh_peers


def test_a_low_soft_limit_is_raised_to_what_clients_and_a_full_map_need():
    chosen = plan(1024, 1 << 20, 10_000, FULL_MAP)
    assert (chosen.limit, chosen.maxclients, chosen.mesh_peers, chosen.short) == (WANTED, 10_000, FULL_MAP, False)
    assert chosen.wanted == WANTED == files_for(10_000, FULL_MAP)
    assert plan(1024, resource.RLIM_INFINITY, 10_000, FULL_MAP).limit == WANTED


def test_a_limit_already_high_enough_is_kept_never_lowered():
    assert plan(1 << 20, 1 << 20, 10_000, FULL_MAP).limit == 1 << 20
    unlimited = plan(resource.RLIM_INFINITY, resource.RLIM_INFINITY, 10_000, FULL_MAP)
    assert (unlimited.limit, unlimited.maxclients, unlimited.short) == (resource.RLIM_INFINITY, 10_000, False)


def test_a_short_hard_limit_is_shared_half_for_the_mesh_at_most():
    chosen = plan(256, 256, 10_000, FULL_MAP)
    peers = (256 - RESERVED_FDS) // 2 // FILES_PER_PEER
    assert (chosen.limit, chosen.mesh_peers, chosen.short) == (256, peers, True)
    assert chosen.maxclients == 256 - RESERVED_FDS - FILES_PER_PEER * peers
    assert files_for(chosen.maxclients, chosen.mesh_peers) <= 256
    # a hard limit between the soft one and the need: raised to it, and what fits is shared
    between = plan(1024, 8192, 10_000, FULL_MAP)
    assert between.limit == 8192 and between.short
    assert between.mesh_peers == (8192 - RESERVED_FDS) // 2 // FILES_PER_PEER
    assert files_for(between.maxclients, between.mesh_peers) <= 8192


def test_few_clients_asked_for_leave_the_mesh_its_full_room_when_it_fits():
    # 100 clients and a full map need 6,270 files: a hard limit of 8,192 holds both, nothing shared
    chosen = plan(1024, 8192, 100, FULL_MAP)
    assert (chosen.maxclients, chosen.mesh_peers, chosen.short) == (100, FULL_MAP, False)


def test_the_files_few_clients_leave_go_to_the_mesh():
    # 3 clients under a hard 1,024: the mesh takes what they leave, not half
    chosen = plan(1024, 1024, 3, FULL_MAP)
    assert (chosen.maxclients, chosen.mesh_peers) == (3, (1024 - RESERVED_FDS - 3) // FILES_PER_PEER)


def test_a_limit_with_no_room_for_a_client_plans_none():
    assert plan(RESERVED_FDS, RESERVED_FDS, 10_000, FULL_MAP).maxclients == 0
    assert plan(RESERVED_FDS + 1, RESERVED_FDS + 1, 10_000, FULL_MAP).maxclients == 1


def test_clients_room_beside_a_fixed_mesh():
    assert clients_room(256, 18, 10_000) == 256 - RESERVED_FDS - FILES_PER_PEER * 18
    assert clients_room(256, 18, 50) == 50
    assert clients_room(64, 18, 50) == 0
    assert clients_room(resource.RLIM_INFINITY, FULL_MAP, 10_000) == 10_000


class _Kernel:
    """resource's getrlimit/setrlimit for one process whose kernel refuses a soft limit above `takes`."""

    def __init__(self, soft: int, hard: int, takes: int) -> None:
        self.limits, self.takes, self.asked = (soft, hard), takes, []

    def getrlimit(self, which: int) -> tuple[int, int]:
        return self.limits

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        self.asked.append(limits[0])
        if limits[0] > self.takes:
            raise ValueError("not allowed to raise maximum limit")
        self.limits = limits


def test_settle_raises_the_soft_limit_to_the_plan(monkeypatch):
    kernel = _Kernel(1024, 1 << 20, 1 << 20)
    monkeypatch.setattr(open_files.resource, "getrlimit", kernel.getrlimit)
    monkeypatch.setattr(open_files.resource, "setrlimit", kernel.setrlimit)
    chosen, refused = open_files.settle(10_000, FULL_MAP)
    assert refused is None and kernel.limits == (WANTED, 1 << 20) and chosen.limit == WANTED


def test_settle_steps_down_to_the_highest_limit_the_os_takes_as_redis_does(monkeypatch):
    # under the hard limit yet refused (macOS caps a process at kern.maxfilesperproc)
    kernel = _Kernel(256, resource.RLIM_INFINITY, 10_240)
    monkeypatch.setattr(open_files.resource, "getrlimit", kernel.getrlimit)
    monkeypatch.setattr(open_files.resource, "setrlimit", kernel.setrlimit)
    chosen, refused = open_files.settle(10_000, FULL_MAP)
    assert kernel.asked[0] == WANTED and all(a - b == 16 for a, b in zip(kernel.asked, kernel.asked[1:]))
    assert kernel.limits[0] == chosen.limit == kernel.asked[-1] and 10_240 - 16 < chosen.limit <= 10_240
    assert refused is not None and str(WANTED) in str(refused)
    assert chosen.short and files_for(chosen.maxclients, chosen.mesh_peers) <= chosen.limit


def test_settle_keeps_the_soft_limit_when_the_os_takes_no_raise(monkeypatch):
    kernel = _Kernel(256, 4096, 0)
    monkeypatch.setattr(open_files.resource, "getrlimit", kernel.getrlimit)
    monkeypatch.setattr(open_files.resource, "setrlimit", kernel.setrlimit)
    chosen, refused = open_files.settle(10_000, FULL_MAP)
    assert kernel.limits == (256, 4096) and chosen == plan(256, 256, 10_000, FULL_MAP) and refused is not None


def test_make_room_answers_what_fits_beside_the_meshs_room(monkeypatch):
    kernel = _Kernel(1024, 2048, 2048)
    monkeypatch.setattr(open_files.resource, "getrlimit", kernel.getrlimit)
    monkeypatch.setattr(open_files.resource, "setrlimit", kernel.setrlimit)
    assert open_files.make_room(500, 18) == 500 and kernel.limits[0] == 1024     # enough already: kept
    assert open_files.make_room(1500, 18) == 1500 and kernel.limits[0] == files_for(1500, 18)
    assert open_files.make_room(10_000, 18) == 2048 - RESERVED_FDS - FILES_PER_PEER * 18 and kernel.limits[0] == 2048


def test_settle_holds_this_process_limit_to_the_plan():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    chosen, refused = open_files.settle(10, 2)    # a need far below any limit: nothing to raise
    assert refused is None and chosen.limit == soft and not chosen.short
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
