// Draws the status page from /cluster/overview and redraws it every second, without reloading.
//
// Every value shown comes from the network, so the page only ever writes it
// through textContent or setAttribute on non-URL attributes; the one URL it
// uses (a member's page) is built and checked by the server and checked again
// here. No innerHTML anywhere.

import { drawSpark } from "./charts.js";
import { byId, el, svgEl } from "./dom.js";
import { DASH, fmtAge, fmtBytes, fmtClock, fmtDuration, fmtInt, fmtOps, palette, shortId } from "./format.js";
import { drawRing, drawShares, focusRing } from "./ring.js";

const POLL_MS = 1000;
const TIMEOUT_MS = 2500;
const HISTORY = 60; // samples kept per member for the small charts (~1 min)
const SAFE_URL = /^http:\/\/[A-Za-z0-9.\-[\]:]+\/$/;

const history = new Map(); // member id -> {ops: number[], mem: number[]}
const rows = new Map(); // member id -> row parts
let eventsKey = "";
let lastOkAt = null;

// ---- polling -----------------------------------------------------------

async function fetchOverview() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch("cluster/overview?limit=50", {
      cache: "no-store",
      signal: controller.signal,
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return await response.json();
  } finally {
    clearTimeout(timer);
  }
}

async function poll() {
  try {
    const overview = await fetchOverview();
    lastOkAt = new Date();
    render(overview);
    showLive(true, null);
  } catch (error) {
    // Logged so a drawing bug is not mistaken for a node that is down (the browser test watches the console).
    console.error("status refresh failed:", error);
    showLive(false, error);
  } finally {
    // Chained, not setInterval: a slow node never gets requests piled up.
    setTimeout(poll, POLL_MS);
  }
}

function showLive(ok, error) {
  const live = byId("live");
  const banner = byId("banner");
  live.classList.toggle("down", !ok);
  if (ok) {
    live.textContent = "live · updated " + fmtClock(lastOkAt);
    banner.classList.add("hidden");
    return;
  }
  live.textContent = "not answering";
  banner.textContent =
    "This node is not answering (" + (error && error.message ? error.message : "no response") + ")" +
    (lastOkAt ? "; the data below is from " + fmtClock(lastOkAt) + "." : ".") +
    " Open another member's page from the Address column.";
  banner.classList.remove("hidden");
}

// ---- rendering ---------------------------------------------------------

function render(overview) {
  const members = overview.nodes.members;
  const colours = palette(members);
  recordHistory(members);
  renderSummary(overview.status);
  renderReplication(overview.status.replication);
  renderMembers(members, colours);
  drawRing(byId("ring"), overview.ring, overview.status, members, colours, highlight);
  drawShares(byId("shares"), overview.shares || [], members, colours, highlight);
  renderEvents(overview.events, members);
}

function recordHistory(members) {
  const seen = new Set();
  for (const member of members) {
    seen.add(member.id);
    if (!history.has(member.id)) history.set(member.id, { ops: [], mem: [] });
    const h = history.get(member.id);
    const dead = member.state === "dead";
    h.ops.push(dead ? null : member.ops_per_sec);
    h.mem.push(dead ? null : member.used_memory);
    if (h.ops.length > HISTORY) h.ops.shift();
    if (h.mem.length > HISTORY) h.mem.shift();
  }
  for (const id of history.keys()) if (!seen.has(id)) history.delete(id);
}

function balanceFact(balance) {
  if (!balance) return "";
  const replica = balance.replica_max_over_ideal ? " · replica " + balance.replica_max_over_ideal.toFixed(2) + "x" : "";
  return "primary " + balance.primary_max_over_ideal.toFixed(2) + "x" + replica + " of its share" +
    (balance.evening_out ? " (evening out)" : "");
}

function renderSummary(status) {
  const pill = byId("cluster-state");
  pill.textContent = "cluster " + status.state;
  pill.className = "state-pill " + ({ ok: "ok", degraded: "warn" }[status.state] || "fail");
  byId("cluster-reason").textContent = status.reason || "";

  const counts = status.members;
  const facts = [
    ["epoch", fmtInt(status.epoch)],
    ["replication factor", fmtInt(status.replication_factor)],
    ["slots ok / assigned", fmtInt(status.slots_ok) + " / " + fmtInt(status.slots_assigned)],
    ["busiest member", balanceFact(status.balance)],
    ["members", counts.alive + " alive · " + counts.suspect + " suspect · " + counts.dead + " dead"],
    ["writes", status.accepting_writes ? "accepting" : "refused"],
    ["replication", replicationFact(status.replication)],
    ["writes held for replicas", fmtInt(status.replication.writes_held)],
    ["uptime", fmtDuration(status.uptime_s)],
  ];
  const list = byId("facts");
  list.replaceChildren();
  for (const [term, value] of facts) {
    const item = el("div", "fact");
    item.append(el("dt", null, term), el("dd", null, value));
    if (term === "writes" && !status.accepting_writes) item.classList.add("bad");
    if (term === "replication" && status.replication.in_sync !== true) item.classList.add("bad");
    list.append(item);
  }
}

function replicationFact(replication) {
  return replication.mode + " · " + fmtInt(replication.streams_in_sync) + " / " + fmtInt(replication.streams) +
    " streams in sync · lag " + fmtInt(replication.lag_frames);
}

// A slot without a caught-up copy must never hide behind "cluster ok": a pill says
// whether every copy is complete, and a warning says what is not.
function renderReplication(replication) {
  const pill = byId("replication-state");
  const warning = byId("replication-warning");
  const inSync = replication.in_sync === true;
  pill.textContent = "replication " + (inSync ? "in sync" : "catching up");
  pill.className = "state-pill " + (inSync ? "ok" : "warn");
  if (inSync) {
    warning.classList.add("hidden");
    warning.textContent = "";
    return;
  }
  const parts = [];
  if (replication.slots_behind > 0) {
    parts.push(fmtInt(replication.slots_behind) + " slots this node leads have no complete copy on a replica");
  }
  const behind = replication.not_in_sync || [];
  if (behind.length > 0) {
    parts.push("streams not in sync to " + behind.map(shortId).join(", "));
  }
  if (replication.slots_loading > 0) {
    parts.push(fmtInt(replication.slots_loading) + " slots this node leads are still being pulled here (commands on them wait, then get TRYAGAIN)");
  }
  if (replication.slots_receiving > 0) {
    parts.push(fmtInt(replication.slots_receiving) + " slots this node holds as a replica are still being copied in");
  }
  warning.textContent =
    "Replication is not in sync: " + (parts.length ? parts.join("; ") : "copies are incomplete") +
    ". Until the copies complete, losing a node can lose their data.";
  warning.classList.remove("hidden");
}

function memberRow(member) {
  const row = el("tr");
  row.dataset.memberId = member.id;
  const parts = {
    row,
    swatch: el("span", "swatch"),
    id: el("span", "mono", shortId(member.id)),
    me: el("span", "tag", "this node"),
    address: el("td", "mono"),
    state: el("span", "state"),
    incarnation: el("td", "num"),
    heartbeat: el("td", "num"),
    slots: el("td", "num"),
    keys: el("td", "num"),
    opsText: el("span", "metric"),
    opsChart: svgEl("svg", { class: "spark", viewBox: "0 0 100 24", preserveAspectRatio: "none", "aria-hidden": "true" }),
    memText: el("span", "metric"),
    memChart: svgEl("svg", { class: "spark", viewBox: "0 0 100 24", preserveAspectRatio: "none", "aria-hidden": "true" }),
    feed: el("span", "repl feed"),
    follow: el("span", "repl follow"),
  };
  // Flex boxes live inside the cells: a flex <td> stops behaving as a table cell.
  const idCell = el("td");
  idCell.title = member.id;
  const idBox = el("div", "node-cell");
  idBox.append(parts.swatch, parts.id, parts.me);
  idCell.append(idBox);
  const stateCell = el("td", "state-cell");
  stateCell.append(parts.state);
  const opsCell = chartCell(parts.opsText, parts.opsChart);
  const memCell = chartCell(parts.memText, parts.memChart);
  const replCell = el("td");
  const replBox = el("div", "repl-cell");
  replBox.append(parts.feed, parts.follow);
  replCell.append(replBox);
  row.append(idCell, parts.address, stateCell, parts.incarnation, parts.heartbeat, parts.slots, parts.keys, opsCell, memCell,
    replCell);
  row.addEventListener("mouseenter", () => highlight(member.id));
  row.addEventListener("mouseleave", () => highlight(null));
  return parts;
}

function chartCell(text, chart) {
  const cell = el("td");
  const box = el("div", "chart-cell");
  box.append(text, chart);
  cell.append(box);
  return cell;
}

function renderMembers(members, colours) {
  const body = byId("members").tBodies[0];
  const seen = new Set();
  members.forEach((member, index) => {
    seen.add(member.id);
    if (!rows.has(member.id)) rows.set(member.id, memberRow(member));
    const parts = rows.get(member.id);
    const colour = colours.get(member.id);
    parts.row.className = "state-" + member.state + (member.myself ? " myself" : "");
    parts.swatch.style.background = colour.strong;
    parts.me.hidden = !member.myself;
    setAddress(parts.address, member);
    parts.state.textContent = member.state;
    parts.state.className = "state " + member.state;
    parts.incarnation.textContent = fmtInt(member.incarnation);
    parts.heartbeat.textContent = member.myself ? "self" : fmtAge(member.last_heartbeat_age_s);
    parts.slots.textContent = fmtInt(member.primary_slots) + " / " + fmtInt(member.replica_slots);
    parts.keys.textContent = fmtInt(member.keys);
    parts.opsText.textContent = fmtOps(member.ops_per_sec);
    parts.memText.textContent = fmtBytes(member.used_memory);
    const h = history.get(member.id);
    drawSpark(parts.opsChart, h.ops, colour.strong);
    drawSpark(parts.memChart, h.mem, colour.strong);
    setReplication(parts, member);
    // Keep the table in id order without rebuilding rows (rebuilding would drop hover and focus).
    if (body.children[index] !== parts.row) body.insertBefore(parts.row, body.children[index] || null);
  });
  for (const [id, parts] of rows) {
    if (!seen.has(id)) {
      parts.row.remove();
      rows.delete(id);
    }
  }
  byId("members-count").textContent = members.length + (members.length === 1 ? " member" : " members");
}

// The streams between this node and the member: "to" carries this node's slots to it,
// "from" carries the member's slots here.
function setReplication(parts, member) {
  const replication = member.replication || {};
  const feed = replication.feed;
  const follow = replication.follow;
  let feedText = "";
  let feedState = "";
  if (feed) {
    if (feed.broken) {
      feedText = "to: restarting with a full copy";
      feedState = "warn";
    } else if (!feed.in_sync) {
      feedText = "to: copying " + fmtInt(feed.slots_copying) + " slots";
      feedState = "warn";
    } else {
      feedText = "to: in sync · lag " + fmtInt(feed.lag);
      feedState = "ok";
    }
  }
  let followText = "";
  let followState = "";
  if (follow) {
    if (follow.slots_receiving > 0) {
      followText = "from: receiving " + fmtInt(follow.slots_receiving) + " slots";
      followState = "warn";
    } else {
      followText = "from: applied " + fmtInt(follow.applied);
    }
  }
  if (!feed && !follow) feedText = member.myself ? "" : DASH;
  parts.feed.textContent = feedText;
  parts.feed.className = "repl feed " + feedState;
  parts.feed.title = feed ? "offset acknowledged " + fmtInt(feed.acked) + " of " + fmtInt(feed.sent) + " sent, " +
    fmtInt(feed.slots) + " slots" : "";
  parts.follow.textContent = followText;
  parts.follow.className = "repl follow " + followState;
}

function setAddress(cell, member) {
  const text = member.address;
  const current = cell.firstChild;
  const url = typeof member.url === "string" && SAFE_URL.test(member.url) ? member.url : null;
  if (current && current.textContent === text && (current.tagName === "A") === (url !== null) &&
      (url === null || current.getAttribute("href") === url)) return;
  let node;
  if (url && !member.myself) {
    node = el("a", null, text);
    node.href = url;
    node.title = "Open this member's status page";
  } else {
    node = el("span", null, text);
  }
  cell.replaceChildren(node);
}

// Hovering a member's row or arc brings out the other: which slots are whose.
function highlight(memberId) {
  focusRing(byId("ring"), memberId);
  for (const [id, parts] of rows) parts.row.classList.toggle("focused", id === memberId);
}

// ---- events ------------------------------------------------------------

function renderEvents(events, members) {
  const key = JSON.stringify(events);
  if (key === eventsKey) return;
  eventsKey = key;
  const known = new Map(members.map((m) => [m.id, m]));
  const list = byId("events");
  list.replaceChildren();
  for (const event of events) {
    const item = el("li", "event kind-" + String(event.kind).replace(/[^a-z]/g, ""));
    const when = new Date(event.at_unix * 1000);
    const time = el("time", "when", fmtClock(when));
    time.dateTime = when.toISOString();
    item.append(time, el("span", "kind", event.kind));
    // Always a cell, even without a node, so the columns line up.
    const who = el("span", "who mono", event.node ? shortId(event.node) : "");
    if (event.node) {
      const member = known.get(event.node);
      who.title = event.node + (member ? " " + member.address : "");
    }
    item.append(who);
    item.append(el("span", "epoch", "epoch " + event.epoch), el("span", "text", event.text));
    list.append(item);
  }
  byId("events-empty").classList.toggle("hidden", events.length > 0);
}

poll();
