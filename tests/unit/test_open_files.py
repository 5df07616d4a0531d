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


def test_a_limit_with_no_room_for_a_client_plans_none():
    assert plan(RESERVED_FDS, RESERVED_FDS, 10_000, FULL_MAP).maxclients == 0
    assert plan(RESERVED_FDS + 1, RESERVED_FDS + 1, 10_000, FULL_MAP).maxclients == 1


def test_clients_room_beside_a_fixed_mesh():
    assert clients_room(256, 18, 10_000) == 256 - RESERVED_FDS - FILES_PER_PEER * 18
    assert clients_room(256, 18, 50) == 50
    assert clients_room(64, 18, 50) == 0
    assert clients_room(resource.RLIM_INFINITY, FULL_MAP, 10_000) == 10_000


def test_settle_holds_this_process_limit_to_the_plan():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    chosen, refused = open_files.settle(10, 2)    # a need far below any limit: nothing to raise
    assert refused is None and chosen.limit == soft and not chosen.short
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
