// Draws the status page from /cluster/overview and redraws it every second, without reloading.
//
// Every value shown comes from the network, so the page only ever writes it
// through textContent or setAttribute on non-URL attributes; the one URL it
// uses (a member's page) is built and checked by the server and checked again
// here. No innerHTML anywhere.
(function () {
  "use strict";

  const POLL_MS = 1000;
  const TIMEOUT_MS = 2500;
  const HISTORY = 60; // samples kept per member for the small charts (~1 min)
  const SLOTS = 16384;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SAFE_URL = /^http:\/\/[A-Za-z0-9.\-[\]:]+\/$/;

  const history = new Map(); // member id -> {ops: number[], mem: number[]}
  const rows = new Map(); // member id -> row parts
  let ringKey = "";
  let eventsKey = "";
  let lastOkAt = null;

  // ---- small DOM helpers -------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  // ---- formatting --------------------------------------------------------

  const DASH = "—";

  function shortId(id) {
    return String(id).slice(0, 8);
  }

  function fmtInt(n) {
    return n === null || n === undefined ? DASH : Math.round(n).toLocaleString("en-US");
  }

  function fmtOps(n) {
    if (n === null || n === undefined) return DASH;
    return n < 10 ? n.toFixed(1) : fmtInt(n);
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return DASH;
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? String(value) : value.toFixed(1)) + " " + units[unit];
  }

  function fmtAge(s) {
    if (s === null || s === undefined) return DASH;
    return s < 10 ? s.toFixed(1) + " s ago" : Math.round(s) + " s ago";
  }

  function fmtDuration(s) {
    const total = Math.floor(s);
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    return h > 0 ? h + " h " + m + " min" : m > 0 ? m + " min " + (total % 60) + " s" : total + " s";
  }

  function fmtClock(date) {
    return date.toLocaleTimeString("en-GB", { hour12: false });
  }

  // One colour per member, taken in id order (the same on every node) and
  // spread by the golden angle so neighbours never look alike.
  function palette(members) {
    const colours = new Map();
    members.forEach((member, index) => {
      const hue = Math.round((205 + index * 137.508) % 360);
      colours.set(member.id, {
        strong: "hsl(" + hue + ", 62%, 44%)",
        light: "hsl(" + hue + ", 70%, 80%)",
      });
    });
    return colours;
  }

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
    renderMembers(members, colours);
    renderRing(overview.ring, overview.status, members, colours);
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

  function renderSummary(status) {
    const pill = byId("cluster-state");
    pill.textContent = "cluster " + status.state;
    pill.className = "state-pill " + (status.state === "ok" ? "ok" : "fail");
    byId("cluster-reason").textContent = status.reason || "";

    const counts = status.members;
    const facts = [
      ["epoch", fmtInt(status.epoch)],
      ["replication factor", fmtInt(status.replication_factor)],
      ["slots ok / assigned", fmtInt(status.slots_ok) + " / " + fmtInt(status.slots_assigned)],
      ["members", counts.alive + " alive · " + counts.suspect + " suspect · " + counts.dead + " dead"],
      ["writes", status.accepting_writes ? "accepting" : "refused"],
      ["uptime", fmtDuration(status.uptime_s)],
    ];
    const list = byId("facts");
    list.replaceChildren();
    for (const [term, value] of facts) {
      const item = el("div", "fact");
      item.append(el("dt", null, term), el("dd", null, value));
      if (term === "writes" && !status.accepting_writes) item.classList.add("bad");
      list.append(item);
    }
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
    row.append(idCell, parts.address, stateCell, parts.incarnation, parts.heartbeat, parts.slots, parts.keys, opsCell, memCell);
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

  // A sparkline: the line scaled to the window's maximum, with gaps where a member was dead.
  function drawSpark(svg, values, colour) {
    svg.replaceChildren();
    const present = values.filter((v) => v !== null && v !== undefined);
    if (present.length === 0) return;
    const max = Math.max(1, ...present);
    // Spread what we have over the full width until the window is full, so a
    // fresh page shows a chart rather than a sliver at the right edge.
    const step = 100 / Math.max(values.length - 1, 1);
    const offset = values.length === 1 ? 1 : 0;
    let segment = [];
    const segments = [];
    values.forEach((v, i) => {
      if (v === null || v === undefined) {
        if (segment.length) segments.push(segment);
        segment = [];
        return;
      }
      segment.push([(offset + i) * step, 23 - (v / max) * 21]);
    });
    if (segment.length) segments.push(segment);
    for (const points of segments) {
      const line = points.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" ");
      const first = points[0][0].toFixed(1);
      const last = points[points.length - 1][0].toFixed(1);
      svg.append(svgEl("polygon", { points: first + ",24 " + line + " " + last + ",24", fill: colour, "fill-opacity": 0.15 }));
      svg.append(svgEl("polyline", { points: line, fill: "none", stroke: colour, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
    }
  }

  // ---- the ring ----------------------------------------------------------

  const OUTER_RADIUS = 100;
  const OUTER_WIDTH = 18;
  const INNER_WIDTH = 11;
  const TRACK_GAP = 3;

  function trackGeometry(index) {
    if (index === 0) return { r: OUTER_RADIUS, w: OUTER_WIDTH };
    const r = OUTER_RADIUS - OUTER_WIDTH / 2 - TRACK_GAP - INNER_WIDTH / 2 - (index - 1) * (INNER_WIDTH + TRACK_GAP);
    return { r, w: INNER_WIDTH };
  }

  function point(r, slot) {
    // Slot 0 at twelve o'clock, slots increasing clockwise.
    const angle = (slot / SLOTS) * 2 * Math.PI - Math.PI / 2;
    return [r * Math.cos(angle), r * Math.sin(angle)];
  }

  function arcShape(r, start, end) {
    if (end - start + 1 >= SLOTS) return svgEl("circle", { cx: 0, cy: 0, r });
    const [x0, y0] = point(r, start);
    const [x1, y1] = point(r, end + 1);
    const large = end + 1 - start > SLOTS / 2 ? 1 : 0;
    const d = "M " + x0.toFixed(3) + " " + y0.toFixed(3) + " A " + r + " " + r + " 0 " + large + " 1 " + x1.toFixed(3) + " " + y1.toFixed(3);
    return svgEl("path", { d });
  }

  function renderRing(ring, status, members, colours) {
    const states = members.map((m) => m.id + ":" + m.state).join(",");
    const key = JSON.stringify(ring) + "|" + states + "|" + status.epoch;
    if (key === ringKey) return; // redraw only when something changed: keeps hover tooltips stable
    ringKey = key;

    const byMember = new Map(members.map((m) => [m.id, m]));
    const svg = byId("ring");
    svg.replaceChildren();

    ring.tracks.forEach((track, index) => {
      const { r, w } = trackGeometry(index);
      svg.append(svgEl("circle", { class: "track", cx: 0, cy: 0, r, "stroke-width": w }));
      for (const [start, end, owner] of track.arcs) {
        const member = byMember.get(owner);
        const colour = colours.get(owner) || { strong: "#888", light: "#ccc" };
        const shape = arcShape(r, start, end);
        const dead = member && member.state === "dead";
        shape.setAttribute("class", "arc " + track.role + (dead ? " dead" : ""));
        shape.setAttribute("stroke", track.role === "primary" ? colour.strong : colour.light);
        shape.setAttribute("stroke-width", String(w));
        shape.setAttribute("data-member-id", owner);
        shape.setAttribute("data-role", track.role);
        const title = svgEl("title");
        title.textContent =
          shortId(owner) + (member ? " " + member.address + " (" + member.state + ")" : "") +
          " · " + track.role + " · slots " + start + "–" + end + " (" + (end - start + 1) + ")";
        shape.append(title);
        shape.addEventListener("mouseenter", () => highlight(owner));
        shape.addEventListener("mouseleave", () => highlight(null));
        svg.append(shape);
      }
    });

    for (const slot of [0, 4096, 8192, 12288]) {
      const [x0, y0] = point(OUTER_RADIUS + OUTER_WIDTH / 2 + 1, slot);
      const [x1, y1] = point(OUTER_RADIUS + OUTER_WIDTH / 2 + 5, slot);
      svg.append(svgEl("line", { class: "tick", x1: x0, y1: y0, x2: x1, y2: y1 }));
      const [lx, ly] = point(OUTER_RADIUS + OUTER_WIDTH / 2 + 7, slot);
      // Anchor labels away from the ring so the left and right ones stay inside the picture.
      const anchor = slot === 4096 ? "start" : slot === 12288 ? "end" : "middle";
      const dy = slot === 0 ? -1 : slot === 8192 ? 6 : 2.5;
      const label = svgEl("text", { class: "tick-label", x: lx, y: ly + dy, "text-anchor": anchor });
      label.textContent = String(slot);
      svg.append(label);
    }

    const centre = svgEl("text", { class: "ring-epoch", x: 0, y: -4, "text-anchor": "middle" });
    centre.textContent = "epoch " + status.epoch;
    const sub = svgEl("text", { class: "ring-sub", x: 0, y: 12, "text-anchor": "middle" });
    sub.textContent = members.length + (members.length === 1 ? " member" : " members") + " · rf " + status.replication_factor;
    svg.append(centre, sub);
  }

  function highlight(memberId) {
    const svg = byId("ring");
    svg.classList.toggle("focus", memberId !== null);
    for (const arc of svg.querySelectorAll(".arc")) {
      arc.classList.toggle("focused", arc.getAttribute("data-member-id") === memberId);
    }
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
})();
