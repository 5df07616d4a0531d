"""The status page in a real headless Chromium: members and ring drawn, a death shown live without a reload.

The page is served by web.serve() in a child process over a snapshot file the
test rewrites, so this runs without a cluster; the cluster version of the same
checks lives with the integration tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).with_name("web_snapshot_server.py")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
SLOTS = 16384
UI_TIMEOUT_MS = 10_000  # the page polls every second; ten polls is plenty


def _require_browser() -> None:
    """Skip when there is no browser here, but never in CI: there a missing browser is a broken setup."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not found"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)


# ---- a believable 3-member snapshot ---------------------------------------


def _node_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def _ranges(slots: list[int]) -> list[list[int]]:
    """Sorted slots -> inclusive [start, end] runs."""
    runs: list[list[int]] = []
    for slot in slots:
        if runs and runs[-1][1] + 1 == slot:
            runs[-1][1] = slot
        else:
            runs.append([slot, slot])
    return runs


def _ring(ids: list[str], vnodes: int = 6, replication_factor: int = 2) -> dict[str, tuple[list, list]]:
    """Owners per slot by walking a ring of vnode tokens: enough like the real ring to draw it."""
    rng = random.Random(7)
    tokens = sorted((rng.randrange(SLOTS), member) for member in ids for _ in range(vnodes))
    primary: dict[str, list[int]] = {m: [] for m in ids}
    replica: dict[str, list[int]] = {m: [] for m in ids}
    for slot in range(SLOTS):
        start = next((i for i, (token, _) in enumerate(tokens) if token >= slot), 0)
        owners: list[str] = []
        for step in range(len(tokens)):
            member = tokens[(start + step) % len(tokens)][1]
            if member not in owners:
                owners.append(member)
            if len(owners) == replication_factor:
                break
        primary[owners[0]].append(slot)
        for member in owners[1:]:
            replica[member].append(slot)
    return {m: (_ranges(primary[m]), _ranges(replica[m])) for m in ids}


def _snapshot(ops: float = 1200.0) -> dict[str, Any]:
    ids = [_node_id(f"node-{i}") for i in range(3)]
    ring = _ring(ids)
    members = []
    for index, member_id in enumerate(ids):
        members.append({
            "id": member_id, "host": "127.0.0.1", "port": 8080 + index, "mesh_port": 18080 + index,
            "http_port": 9080 + index, "state": "alive", "incarnation": 1,
            "last_heartbeat_age_s": None if index == 0 else 0.2 * index, "myself": index == 0,
            "primary_ranges": ring[member_id][0], "replica_ranges": ring[member_id][1],
            "keys": 1000 * (index + 1), "used_memory": 3_500_000 * (index + 1), "ops_per_sec": ops * (1 + index / 3),
            "replication": {"feed": None, "follow": None} if index == 0 else {
                "feed": {"in_sync": True, "broken": False, "lag": 0, "sent": 500 + index, "acked": 500 + index,
                         "slots": 2700, "slots_copying": 0},
                "follow": {"applied": 480 + index, "slots_receiving": 0},
            },
        })
    now = time.time()
    events = [
        {"at_unix": now - 30 + i, "kind": "join", "node": member_id, "epoch": i + 1, "text": f"node-{i} joined"}
        for i, member_id in enumerate(ids)
    ]
    # Hostile text must show up as text and never run.
    events.append({"at_unix": now - 20, "kind": "epoch", "node": None, "epoch": 3,
                   "text": "<img src=x onerror=\"window.__pwned=1\">"})
    return {
        "node": {**{key: members[0][key] for key in ("id", "host", "port", "mesh_port", "http_port")},
                 "version": "9.8.7", "compiled": True, "form": "mypyc (13 modules)"},
        "cluster": {"state": "ok", "reason": None, "epoch": 3, "replication_factor": 2, "accepting_writes": True,
                    "slots_assigned": SLOTS, "slots_ok": SLOTS,
                    "balance": {"primary_max_over_ideal": 1.21, "replica_max_over_ideal": 1.3,
                                "evening_out": True}},
        "members": members,
        "replication": {
            "mode": "sync", "in_sync": True, "streams": 2, "streams_in_sync": 2, "not_in_sync": [],
            "slots_behind": 0, "slots_loading": 0, "slots_receiving": 0, "lag_frames": 0, "offset": 1003,
            "primaries_followed": 2,
            "clients_held": 0, "frames_applied": 963, "effects_applied": 5000, "frames_refused": 0,
            "full_syncs": 2, "writes_held": 4321, "clients_dropped": 0,
        },
        "stats": {"keys": 1000, "used_memory": 3_500_000, "ops_per_sec": ops, "connected_clients": 3,
                  "expired_keys": 0, "evicted_keys": 0, "moved_sent": 0, "ask_sent": 0, "mesh_in": 10,
                  "mesh_out": 10, "mesh_dropped": 0, "uptime_s": 95.0, "commands": {}},
        "events": events,
    }


def _copying(snapshot: dict[str, Any], index: int, slots: int) -> None:
    """The stream to member `index` restarted: its full copy of `slots` slots is under way."""
    member = snapshot["members"][index]
    member["replication"]["feed"].update(in_sync=False, slots_copying=slots, lag=8)
    snapshot["replication"].update(in_sync=False, streams_in_sync=1, not_in_sync=[member["id"]],
                                   slots_behind=slots, lag_frames=8)


def _kill(snapshot: dict[str, Any], index: int) -> None:
    victim = snapshot["members"][index]
    victim.update(state="dead", last_heartbeat_age_s=12.5, ops_per_sec=None)
    snapshot["cluster"]["epoch"] += 1
    snapshot["events"].append({"at_unix": time.time(), "kind": "dead", "node": victim["id"],
                               "epoch": snapshot["cluster"]["epoch"], "text": f"node-{index} is dead"})


# ---- the served page --------------------------------------------------------


def _write(path: Path, snapshot: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(snapshot))
    os.replace(partial, path)  # the server never reads half a file


@pytest.fixture
def status_server(tmp_path: Path) -> Iterator[tuple[str, Callable[[dict[str, Any]], None]]]:
    snapshot_path, ready_path = tmp_path / "snapshot.json", tmp_path / "port"
    _write(snapshot_path, _snapshot())
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), str(snapshot_path), str(ready_path)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while not ready_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"status server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)  # poll interval, bounded by the deadline above
        yield f"http://127.0.0.1:{ready_path.read_text()}/", lambda snap: _write(snapshot_path, snap)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_page_draws_members_and_ring_and_shows_a_death_live(status_server, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    base_url, write = status_server
    snapshot = _snapshot()
    ids = [m["id"] for m in snapshot["members"]]
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            # CSP violations and script errors both surface here.
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(base_url)

            rows = page.locator("#members tbody tr")
            expect(rows).to_have_count(3, timeout=UI_TIMEOUT_MS)
            for member_id in ids:
                row = page.locator(f'#members tr[data-member-id="{member_id}"]')
                expect(row.locator(".state")).to_have_text("alive")
                for role in ("primary", "replica"):
                    expect(page.locator(f'#ring .arc.{role}[data-member-id="{member_id}"]').first).to_be_attached()
                # a bar per member: the slots it leads and holds copies of, in numbers
                share = page.locator(f'#shares .share[data-member-id="{member_id}"]')
                expect(share.locator(".share-bar.primary")).to_have_count(1)
                expect(share.locator(".share-count").first).to_have_text(re.compile(r"^\d+ led$"))
            expect(page.locator("#cluster-state")).to_have_text("cluster ok")
            expect(page.locator("#facts .fact", has_text="busiest member").locator("dd")).to_have_text(
                "primary 1.21x · replica 1.30x of its share (evening out)")
            # Other members' pages are linked; this node's own row is not.
            expect(page.locator(f'#members tr[data-member-id="{ids[1]}"] a')).to_have_attribute("href", "http://127.0.0.1:9081/")
            expect(page.locator(f'#members tr[data-member-id="{ids[0]}"] a')).to_have_count(0)

            # Live values: feed a few loads and see each one arrive, which also fills the charts.
            for ops in (800.0, 1500.0, 1100.0, 1900.0):
                write(_snapshot(ops))
                cell = page.locator(f'#members tr[data-member-id="{ids[0]}"] .chart-cell .metric').first
                expect(cell).to_have_text(f"{round(ops):,}", timeout=UI_TIMEOUT_MS)

            hostile = page.locator("#events .text", has_text="onerror")
            expect(hostile).to_have_text('<img src=x onerror="window.__pwned=1">')
            assert page.evaluate("window.__pwned") is None

            before = tmp_path / "status-page.png"
            page.screenshot(path=str(before), full_page=True)
            print(f"screenshot: {before}")

            # A member dies: the same page (no reload) must show it.
            page.evaluate("window.__sameDocument = true")
            snapshot = _snapshot(1900.0)
            _kill(snapshot, 2)
            write(snapshot)
            dead_row = page.locator(f'#members tr[data-member-id="{ids[2]}"]')
            expect(dead_row.locator(".state")).to_have_text("dead", timeout=UI_TIMEOUT_MS)
            expect(page.locator(f'#ring .arc.dead[data-member-id="{ids[2]}"]').first).to_be_attached()
            expect(page.locator(f'#shares .share.dead[data-member-id="{ids[2]}"]')).to_have_count(1)
            expect(page.locator("#events .event.kind-dead")).to_have_count(1)
            assert page.evaluate("window.__sameDocument") is True, "the page reloaded"

            after = tmp_path / "status-page-dead.png"
            page.screenshot(path=str(after), full_page=True)
            print(f"screenshot: {after}")
        finally:
            browser.close()

    assert problems == [], problems


def test_page_says_so_when_its_node_stops_answering(status_server) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    base_url, write = status_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(base_url)
            expect(page.locator("#members tbody tr")).to_have_count(3, timeout=UI_TIMEOUT_MS)
            # A snapshot missing every key makes the API answer 500, as a broken node would.
            write({})
            expect(page.locator("#banner")).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.locator("#live")).to_have_text("not answering")
            # The last good data stays on screen for the operator.
            expect(page.locator("#members tbody tr")).to_have_count(3)
        finally:
            browser.close()


def test_page_warns_while_a_slot_has_no_caught_up_copy(status_server, tmp_path: Path) -> None:
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    base_url, write = status_server
    ids = [m["id"] for m in _snapshot()["members"]]
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(base_url)
            pill, warning = page.locator("#replication-state"), page.locator("#replication-warning")
            expect(pill).to_have_text("replication in sync", timeout=UI_TIMEOUT_MS)
            expect(warning).to_be_hidden()
            row = page.locator(f'#members tr[data-member-id="{ids[2]}"]')
            expect(row.locator(".repl.feed")).to_have_text("to: in sync · lag 0")
            expect(row.locator(".repl.follow")).to_have_text("from: applied 482")

            # The stream to node-2 restarts with a full copy: every slot is served, but the cluster is not
            # "ok" (hypercache/health.py says degraded, with the reason), and the page must not hide it.
            page.evaluate("window.__sameDocument = true")
            snapshot = _snapshot()
            _copying(snapshot, 2, 2731)
            reason = f"2731 slots lack a complete copy on replica {ids[2][:8]} (copying)"
            snapshot["cluster"].update(state="degraded", reason=reason)
            write(snapshot)
            expect(pill).to_have_text("replication catching up", timeout=UI_TIMEOUT_MS)
            expect(warning).to_be_visible()
            expect(warning).to_contain_text("2,731 slots this node leads have no complete copy on a replica")
            expect(warning).to_contain_text("streams not in sync to " + ids[2][:8])
            expect(row.locator(".repl.feed")).to_have_text("to: copying 2,731 slots")
            expect(page.locator("#cluster-state")).to_have_text("cluster degraded")
            expect(page.locator("#cluster-state")).to_have_class(re.compile(r"\bwarn\b"))
            expect(page.locator("#cluster-reason")).to_have_text(reason)
            shot = tmp_path / "status-page-copying.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")

            write(_snapshot())
            expect(pill).to_have_text("replication in sync", timeout=UI_TIMEOUT_MS)
            expect(warning).to_be_hidden()
            expect(page.locator("#cluster-state")).to_have_text("cluster ok")
            expect(page.locator("#cluster-reason")).to_have_text("")
            assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
        finally:
            browser.close()
    assert problems == [], problems
