"""The status UI's HTTP contract: JSON shapes, health codes, Prometheus text, JSON errors, escaping.

Flask's test client against create_app() over snapshot dicts built here; no node, no sockets.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from web.metrics import LATENCY_BOUNDS_US
from web import create_app
from web.views import nodes_view, page_url

SLOTS = 16384
HOSTILE = "<script>alert(1)</script>"


def _id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def _member(index: int, *, myself: bool = False, state: str = "alive", host: str = "127.0.0.1",
            primary: list[list[int]] | None = None, replica: list[list[int]] | None = None) -> dict[str, Any]:
    return {
        "id": _id(f"node-{index}"), "host": host, "port": 8080 + index, "mesh_port": 18080 + index,
        "http_port": 9080 + index, "state": state, "incarnation": 1,
        "last_heartbeat_age_s": None if myself else 0.25, "myself": myself,
        "primary_ranges": primary or [], "replica_ranges": replica or [],
        "keys": 10 * index, "used_memory": 1000 * index, "ops_per_sec": 1.5 * index,
        "replication": {"feed": None, "follow": None} if myself else {
            "feed": {"in_sync": True, "broken": False, "lag": 0, "sent": 40 + index, "acked": 40 + index,
                     "slots": 5000, "slots_copying": 0},
            "follow": {"applied": 30 + index, "slots_receiving": 0},
        },
    }


def _snapshot(members: list[dict[str, Any]], *, state: str = "ok", reason: str | None = None,
              accepting_writes: bool = True, epoch: int = 7) -> dict[str, Any]:
    me = next(m for m in members if m["myself"])
    return {
        "node": {**{key: me[key] for key in ("id", "host", "port", "mesh_port", "http_port")}, "version": "9.8.7",
                 "compiled": True, "form": "mypyc (13 modules)"},
        "cluster": {"state": state, "reason": reason, "epoch": epoch, "replication_factor": 2,
                    "accepting_writes": accepting_writes, "slots_assigned": SLOTS, "slots_ok": SLOTS,
                    "balance": {"primary_max_over_ideal": 1.21, "replica_max_over_ideal": 1.3,
                                "evening_out": True}},
        "members": members,
        "replication": replication(streams=len(members) - 1),
        "stats": {
            "keys": 42, "used_memory": 123456, "ops_per_sec": 99.5, "connected_clients": 3,
            "expired_keys": 4, "evicted_keys": 5, "moved_sent": 6, "ask_sent": 7,
            "mesh_in": 8, "mesh_out": 9, "mesh_dropped": 1, "mesh_dropped_by_reason": {"impersonation": 1},
            "uptime_s": 60.0,
            "commands": {
                "get": {"calls": 10, "usec": 250, "failed_calls": 1, "rejected_calls": 2,
                        "latency_us_buckets": {1: 2, 2: 0, 16: 8}},
                # Keys as strings, the way they look after a JSON round trip.
                "set": {"calls": 3, "usec": 90, "failed_calls": 0, "rejected_calls": 0,
                        "latency_us_buckets": {"32": 3}},
            },
        },
        "events": [
            {"at_unix": 100.0, "kind": "join", "node": members[0]["id"], "epoch": 1, "text": "joined"},
            {"at_unix": 300.0, "kind": "epoch", "node": None, "epoch": 7, "text": "epoch 7"},
            {"at_unix": 200.0, "kind": "suspect", "node": members[-1]["id"], "epoch": 6, "text": "suspect"},
        ],
    }


def replication(*, streams: int = 2, behind: list[str] | None = None, slots_behind: int = 0,
                loading: int = 0, receiving: int = 0) -> dict[str, Any]:
    behind = behind or []
    return {
        "mode": "sync", "in_sync": not behind and not slots_behind and not loading and not receiving,
        "streams": streams, "streams_in_sync": streams - len(behind), "not_in_sync": behind,
        "slots_behind": slots_behind, "slots_loading": loading, "slots_receiving": receiving,
        "lag_frames": 3, "offset": 81,
        "primaries_followed": streams, "clients_held": 1, "frames_applied": 61, "effects_applied": 900,
        "frames_refused": 2, "full_syncs": 4, "writes_held": 123, "clients_dropped": 0,
    }


def one_member() -> dict[str, Any]:
    return _snapshot([_member(0, myself=True, primary=[[0, SLOTS - 1]])])


def three_members(*, me: int = 0, dead: int | None = None) -> dict[str, Any]:
    thirds = [[0, 5460], [5461, 10922], [10923, SLOTS - 1]]
    members = [
        _member(i, myself=i == me, state="dead" if i == dead else "alive",
                primary=[thirds[i]], replica=[thirds[(i + 1) % 3]])
        for i in range(3)
    ]
    return _snapshot(members)


def _client(snapshot: dict[str, Any]):
    return create_app(lambda: snapshot).test_client()


# ---- /cluster/status ---------------------------------------------------------


def test_status_reports_the_cluster_as_this_node_sees_it() -> None:
    body = _client(three_members(dead=2)).get("/cluster/status").get_json()
    assert body["node_id"] == _id("node-0")
    assert body["node"] == {"id": _id("node-0"), "host": "127.0.0.1", "port": 8080, "mesh_port": 18080, "http_port": 9080}
    assert (body["state"], body["reason"], body["epoch"]) == ("ok", None, 7)
    assert body["members"] == {"alive": 2, "suspect": 0, "dead": 1, "total": 3}
    assert body["slots_assigned"] == body["slots_ok"] == SLOTS
    assert body["replication_factor"] == 2 and body["accepting_writes"] is True
    assert body["balance"] == {"primary_max_over_ideal": 1.21, "replica_max_over_ideal": 1.3, "evening_out": True}


def test_status_in_fail_state_says_why() -> None:
    snap = _snapshot([_member(0, myself=True)], state="fail", reason="no majority", accepting_writes=False)
    body = _client(snap).get("/cluster/status").get_json()
    assert (body["state"], body["reason"], body["accepting_writes"]) == ("fail", "no majority", False)


def test_status_says_when_replication_is_not_in_sync() -> None:
    body = _client(three_members()).get("/cluster/status").get_json()
    assert body["replication"]["in_sync"] is True and body["replication"]["writes_held"] == 123
    snap = three_members()
    snap["replication"] = replication(behind=[_id("node-2")], slots_behind=17)
    # the node's verdict (hypercache/health.py): every slot served, a copy missing
    snap["cluster"].update(state="degraded", reason="17 slots lack a complete copy on replica node-2")
    body = _client(snap).get("/cluster/status").get_json()
    assert body["replication"]["in_sync"] is False
    assert (body["state"], body["reason"]) == ("degraded", "17 slots lack a complete copy on replica node-2")
    assert body["replication"]["not_in_sync"] == [_id("node-2")] and body["replication"]["slots_behind"] == 17
    # /health: the node takes writes (200), but does not say "ok"
    response = _client(snap).get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["reason"] == "17 slots lack a complete copy on replica node-2"


def test_status_says_how_late_this_node_runs_and_which_peers_it_cannot_hear() -> None:
    body = _client(three_members()).get("/cluster/status").get_json()
    assert body["mesh"] == {"peers_refused": 0, "local_health": 0, "suspect_after_s": None, "late_evidence": 0,
                            "stranded": False}
    snap = three_members()
    snap["stats"].update(mesh_peers_refused=2, mesh_local_health=3, mesh_suspect_after_s=12.0, mesh_late_evidence=9,
                         mesh_stranded=True)
    body = _client(snap).get("/cluster/status").get_json()
    assert body["mesh"] == {"peers_refused": 2, "local_health": 3, "suspect_after_s": 12.0, "late_evidence": 9,
                            "stranded": True}
    metrics = _client(snap).get("/metrics").get_data(as_text=True)
    assert "hypercache_mesh_stranded 1.0" in metrics


def test_status_of_a_healthy_cluster_is_ok() -> None:
    body = _client(three_members()).get("/cluster/status").get_json()
    assert (body["state"], body["reason"]) == ("ok", None)
    assert _client(three_members()).get("/health").get_json()["status"] == "ok"


def test_nodes_carry_each_members_streams_with_this_node() -> None:
    members = {m["id"]: m for m in _client(three_members()).get("/cluster/nodes").get_json()["members"]}
    assert members[_id("node-0")]["replication"] == {"feed": None, "follow": None}
    assert members[_id("node-1")]["replication"]["feed"]["acked"] == 41
    assert members[_id("node-1")]["replication"]["follow"] == {"applied": 31, "slots_receiving": 0}


# ---- /cluster/nodes ------------------------------------------------------------


def test_nodes_lists_every_member_in_id_order_with_ranges_and_load() -> None:
    snap = three_members()
    response = _client(snap).get("/cluster/nodes")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    ids = [m["id"] for m in body["members"]]
    assert ids == sorted(ids) and len(ids) == 3
    first = next(m for m in body["members"] if m["id"] == _id("node-0"))
    assert first["primary_ranges"] == [[0, 5460]] and first["primary_slots"] == 5461
    assert first["replica_ranges"] == [[5461, 10922]] and first["replica_slots"] == 5462
    assert first["myself"] is True and first["url"] == "http://127.0.0.1:9080/"
    assert first["address"] == "127.0.0.1:8080"
    assert sum(m["primary_slots"] for m in body["members"]) == SLOTS
    expected_keys = {"id", "host", "port", "mesh_port", "http_port", "address", "url", "state", "incarnation",
                     "last_heartbeat_age_s", "myself", "primary_ranges", "replica_ranges", "primary_slots",
                     "replica_slots", "keys", "used_memory", "ops_per_sec", "replication"}
    assert all(set(m) == expected_keys for m in body["members"])


def test_every_node_reports_the_same_topology_for_the_same_epoch() -> None:
    # Three observers of one epoch: they differ in who is "myself", in heartbeat
    # ages and in member order, and one already suspects a peer. The topology agrees.
    views = []
    for me in range(3):
        snap = three_members(me=me)
        snap["members"].reverse()
        for member in snap["members"]:
            member["last_heartbeat_age_s"] = None if member["myself"] else 0.1 * (me + 1)
        if me == 1:
            snap["members"][0]["state"] = "suspect"
        views.append(_client(snap).get("/cluster/nodes").get_json())
    assert len({v["topology_digest"] for v in views}) == 1
    assert len({json.dumps([{k: m[k] for k in ("id", "primary_ranges", "replica_ranges", "address")}
                            for m in v["members"]]) for v in views}) == 1


def test_topology_digest_changes_with_the_epoch_or_the_ranges() -> None:
    base = nodes_view(three_members())["topology_digest"]  # type: ignore[arg-type]
    later = three_members()
    later["cluster"]["epoch"] += 1
    moved = three_members()
    moved["members"][0]["primary_ranges"] = [[0, 5459]]
    assert nodes_view(later)["topology_digest"] != base  # type: ignore[arg-type]
    assert nodes_view(moved)["topology_digest"] != base  # type: ignore[arg-type]


def test_a_dead_member_is_listed_as_dead() -> None:
    body = _client(three_members(dead=1)).get("/cluster/nodes").get_json()
    states = {m["id"]: m["state"] for m in body["members"]}
    assert states[_id("node-1")] == "dead"


# ---- /health -------------------------------------------------------------------


def test_health_is_200_while_accepting_writes() -> None:
    response = _client(one_member()).get("/health")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_health_is_503_with_a_reason_when_writes_are_refused() -> None:
    snap = _snapshot([_member(0, myself=True)], state="fail", reason="no majority for 2000 ms", accepting_writes=False)
    response = _client(snap).get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["reason"] == "no majority for 2000 ms"


def test_a_node_that_cannot_snapshot_answers_503_json() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("stopping")

    client = create_app(broken).test_client()  # type: ignore[arg-type]
    for path in ("/health", "/cluster/status", "/cluster/nodes", "/metrics"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.get_json()["error"] == "snapshot_unavailable"
    # The page itself still loads, and will say the node is not answering.
    assert client.get("/").status_code == 200


# ---- /cluster/events -----------------------------------------------------------


def test_events_are_newest_first_and_limited() -> None:
    client = _client(three_members())
    kinds = [e["kind"] for e in client.get("/cluster/events").get_json()["events"]]
    assert kinds == ["epoch", "suspect", "join"]
    assert [e["kind"] for e in client.get("/cluster/events?limit=1").get_json()["events"]] == ["epoch"]


@pytest.mark.parametrize("limit", ["0", "501", "abc", "-1", "1.5", "²", ""])
def test_a_bad_limit_is_a_400_json_error(limit: str) -> None:
    response = _client(three_members()).get("/cluster/events", query_string={"limit": limit})
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"


def test_overview_carries_status_nodes_ring_and_events_from_one_snapshot() -> None:
    body = _client(three_members()).get("/cluster/overview").get_json()
    assert set(body) == {"status", "nodes", "ring", "shares", "events"}
    assert body["ring"]["slots"] == SLOTS
    assert [t["role"] for t in body["ring"]["tracks"]] == ["primary", "replica"]
    assert sorted((s["primary"], s["replica"]) for s in body["shares"]) == [(5461, 5461), (5461, 5462), (5462, 5461)]
    assert [s["id"] for s in body["shares"]] == sorted(s["id"] for s in body["shares"])


# ---- /metrics --------------------------------------------------------------------


def _metrics(snapshot: dict[str, Any]) -> dict[str, Any]:
    response = _client(snapshot).get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.get_data(as_text=True))}


def _value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    for family in families.values():
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {sample_name} {labels}")


def test_metrics_parse_and_carry_the_snapshot() -> None:
    families = _metrics(three_members(dead=2))
    assert _value(families, "hypercache_commands_total", command="get") == 10
    assert _value(families, "hypercache_commands_duration_seconds_total", command="get") == pytest.approx(250e-6)
    assert _value(families, "hypercache_commands_failed_total", command="get") == 1
    assert _value(families, "hypercache_commands_rejected_total", command="get") == 2
    assert _value(families, "hypercache_keys") == 42
    assert _value(families, "hypercache_used_memory_bytes") == 123456
    assert _value(families, "hypercache_expired_keys_total") == 4
    assert _value(families, "hypercache_evicted_keys_total") == 5
    assert _value(families, "hypercache_connected_clients") == 3
    assert _value(families, "hypercache_redirects_total", kind="moved") == 6
    assert _value(families, "hypercache_redirects_total", kind="ask") == 7
    assert _value(families, "hypercache_mesh_messages_total", direction="in") == 8
    assert _value(families, "hypercache_mesh_messages_total", direction="out") == 9
    assert _value(families, "hypercache_mesh_messages_dropped_total") == 1
    assert _value(families, "hypercache_mesh_messages_dropped_by_reason_total", reason="impersonation") == 1
    assert _value(families, "hypercache_cluster_epoch") == 7
    assert _value(families, "hypercache_accepting_writes") == 1
    assert _value(families, "hypercache_cluster_members", state="alive") == 2
    assert _value(families, "hypercache_cluster_members", state="dead") == 1
    assert _value(families, "hypercache_cluster_members", state="suspect") == 0
    assert _value(families, "hypercache_node_info", node_id=_id("node-0")) == 1


def test_metrics_carry_replication_per_replica_and_for_the_node() -> None:
    snap = three_members()
    lagging = snap["members"][2]["replication"]["feed"]
    lagging.update(in_sync=False, lag=9, slots_copying=12)
    snap["replication"] = replication(behind=[_id("node-2")], slots_behind=12)
    families = _metrics(snap)
    assert _value(families, "hypercache_replication_in_sync") == 0
    assert _value(families, "hypercache_replication_slots_behind") == 12
    assert _value(families, "hypercache_replication_slots_loading") == 0
    assert _value(families, "hypercache_replica_in_sync", replica=_id("node-1")) == 1
    assert _value(families, "hypercache_replica_in_sync", replica=_id("node-2")) == 0
    assert _value(families, "hypercache_replica_lag_frames", replica=_id("node-2")) == 9
    assert _value(families, "hypercache_replica_slots_copying", replica=_id("node-2")) == 12
    assert _value(families, "hypercache_replica_acked_offset", replica=_id("node-1")) == 41
    assert _value(families, "hypercache_replication_applied_offset", primary=_id("node-1")) == 31
    assert _value(families, "hypercache_writes_held_total") == 123
    assert _value(families, "hypercache_replication_frames_applied_total") == 61
    assert _value(families, "hypercache_replication_full_syncs_total") == 4
    assert _value(families, "hypercache_clients_held") == 1
    # this node feeds no stream to itself
    assert not [s for f in families.values() for s in f.samples if s.labels.get("replica") == _id("node-0")]


def test_latency_histograms_are_cumulative_with_one_bucket_set_for_all_commands() -> None:
    families = _metrics(one_member())
    histogram = families["hypercache_command_latency_seconds"]
    assert histogram.type == "histogram"
    buckets: dict[str, list[tuple[str, float]]] = {}
    for sample in histogram.samples:
        if sample.name.endswith("_bucket"):
            buckets.setdefault(sample.labels["command"], []).append((sample.labels["le"], sample.value))
    # get: 2 at <=1us, 0 at <=2us, 8 at <=16us; set: 3 at <=32us (its key was a string).
    # The fixed bounds are 1, 4, 16, 64 ... us: a 2 us or 32 us bucket counts at the next one up.
    assert buckets["get"][:5] == [("1e-06", 2), ("4e-06", 2), ("1.6e-05", 10), ("6.4e-05", 10), ("0.000256", 10)]
    assert buckets["set"][:5] == [("1e-06", 0), ("4e-06", 0), ("1.6e-05", 0), ("6.4e-05", 3), ("0.000256", 3)]
    assert buckets["get"][-1] == ("+Inf", 10) and buckets["set"][-1] == ("+Inf", 3)
    assert len(buckets["get"]) == len(LATENCY_BOUNDS_US) + 1
    assert _value(families, "hypercache_command_latency_seconds_count", command="get") == 10
    assert _value(families, "hypercache_command_latency_seconds_sum", command="get") == pytest.approx(250e-6)


def test_a_scrape_stays_small_with_every_command_called() -> None:
    """Counters for commands that ran only; histograms for the busiest ten, the rest as "other"."""
    snap = one_member()
    snap["stats"]["commands"] = {
        f"cmd{i:03d}": {"calls": 1000 - i if i < 150 else 0, "usec": 10 * (i + 1), "failed_calls": 0,
                        "rejected_calls": 0, "latency_us_buckets": {2 ** (i % 12): 1000 - i} if i < 150 else {}}
        for i in range(240)}
    response = create_app(lambda: snap).test_client().get("/metrics")  # type: ignore[arg-type,return-value]
    text = response.get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    called = {s.labels["command"] for s in families["hypercache_commands"].samples}
    assert called == {f"cmd{i:03d}" for i in range(150)}          # the 90 never called are left out
    histogram = families["hypercache_command_latency_seconds"]
    named = {s.labels["command"] for s in histogram.samples}
    assert named == {f"cmd{i:03d}" for i in range(10)} | {"other"}
    # "other" sums the 140 less called commands: counts and time
    assert _value(families, "hypercache_command_latency_seconds_count", command="other") == \
        sum(1000 - i for i in range(10, 150))
    assert _value(families, "hypercache_command_latency_seconds_sum", command="other") == \
        pytest.approx(sum(10 * (i + 1) for i in range(10, 150)) * 1e-6)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(lines) < 1000, len(lines)


def test_metrics_take_one_snapshot_per_scrape() -> None:
    calls = []

    def snapshot() -> dict[str, Any]:
        calls.append(1)
        return one_member()

    client = create_app(snapshot).test_client()  # type: ignore[arg-type]
    assert calls == []  # registering the collector does not snapshot
    client.get("/metrics")
    assert len(calls) == 1


# ---- errors ------------------------------------------------------------------------


def test_unknown_paths_are_404_json() -> None:
    response = _client(one_member()).get("/no/such/thing")
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": response.get_json()["message"], "status": 404}


def test_wrong_method_is_405_json_with_allow() -> None:
    response = _client(one_member()).post("/health")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_a_malformed_snapshot_is_a_500_json_without_details() -> None:
    response = create_app(lambda: {}).test_client().get("/cluster/status")  # type: ignore[arg-type, return-value]
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error", "message": "internal error", "status": 500}


# ---- the page and escaping -----------------------------------------------------------


def _hostile() -> dict[str, Any]:
    snap = three_members()
    for member in snap["members"]:
        member["host"] = HOSTILE
    snap["node"]["host"] = HOSTILE
    snap["events"][0]["text"] = HOSTILE
    return snap


def test_the_page_escapes_a_hostile_host_and_loads_only_its_own_assets() -> None:
    response = _client(_hostile()).get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "http://" not in html.replace("http://www.w3.org", "")  # no CDN, no external asset


def test_the_json_carries_hostile_strings_as_data_and_never_links_them() -> None:
    client = _client(_hostile())
    response = client.get("/cluster/nodes")
    assert response.mimetype == "application/json"
    members = response.get_json()["members"]
    assert all(m["host"] == HOSTILE and m["url"] is None for m in members)
    events = client.get("/cluster/events").get_json()["events"]
    assert HOSTILE in [e["text"] for e in events]


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 9080, "http://127.0.0.1:9080/"),
    ("cache-1.internal", 9081, "http://cache-1.internal:9081/"),
    ("::1", 9080, "http://[::1]:9080/"),
    ("0.0.0.0", 9080, None),  # a bind address is not somewhere to go
    ("::", 9080, None),
    ("evil.example@127.0.0.1", 9080, None),
    ("127.0.0.1/x", 9080, None),
    ("javascript:alert(1)", 9080, None),
    (HOSTILE, 9080, None),
    ("127.0.0.1", 0, None),
    ("127.0.0.1", 70000, None),
])
def test_page_urls_are_only_made_from_plain_addresses(host: str, port: int, url: str | None) -> None:
    assert page_url(host, port) == url


def test_static_assets_are_served_and_the_scripts_never_write_html() -> None:
    client = _client(one_member())
    for name in ("app.js", "charts.js", "dom.js", "format.js", "ring.js"):
        script = client.get(f"/static/{name}")
        assert script.status_code == 200, name
        source = script.get_data(as_text=True)
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (name, sink)
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/nope.js").status_code == 404


def test_the_app_never_mutates_the_snapshot() -> None:
    snap = three_members(dead=2)
    before = copy.deepcopy(snap)
    client = _client(snap)
    for path in ("/", "/cluster/status", "/cluster/nodes", "/cluster/events", "/cluster/overview", "/health", "/metrics"):
        client.get(path)
    assert snap == before


def test_metrics_carry_mesh_traffic_per_peer() -> None:
    snap = three_members()
    snap["stats"]["mesh_out_bytes"] = 4096
    for index, member in enumerate(snap["members"]):
        member["mesh_received"], member["mesh_received_bytes"] = 10 + index, 1000 + index
    families = _metrics(snap)
    assert _value(families, "hypercache_mesh_sent_bytes_total") == 4096
    assert _value(families, "hypercache_mesh_received_messages_total", peer=_id("node-1")) == 11
    assert _value(families, "hypercache_mesh_received_bytes_total", peer=_id("node-2")) == 1002
    # none from myself
    assert not [s for f in families.values() for s in f.samples
                if f.name.startswith("hypercache_mesh_received") and s.labels.get("peer") == _id("node-0")]


def test_metrics_carry_mesh_messages_by_kind() -> None:
    snap = three_members()
    snap["stats"]["mesh_in_by_kind"] = {"heartbeat": 70, "commit": 3}
    families = _metrics(snap)
    assert _value(families, "hypercache_mesh_received_by_kind_total", kind="heartbeat") == 70
    assert _value(families, "hypercache_mesh_received_by_kind_total", kind="commit") == 3
