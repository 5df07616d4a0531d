// Draws the ring of 16384 slots as SVG: one arc per run of slots, primaries outside, replicas inside.
//
// The layout (which arc goes on which track) comes from the server's /cluster/overview
// "ring"; this only turns arcs into paths.

import { svgEl } from "./dom.js";
import { shortId } from "./format.js";

const SLOTS = 16384;
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

let drawnKey = "";

// onHover(memberId | null) lets the page highlight the matching table row.
export function drawRing(svg, ring, status, members, colours, onHover) {
  const states = members.map((m) => m.id + ":" + m.state).join(",");
  const key = JSON.stringify(ring) + "|" + states + "|" + status.epoch;
  if (key === drawnKey) return; // redraw only when something changed: keeps hover tooltips stable
  drawnKey = key;

  const byMember = new Map(members.map((m) => [m.id, m]));
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
      shape.addEventListener("mouseenter", () => onHover(owner));
      shape.addEventListener("mouseleave", () => onHover(null));
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

// Dim every arc but memberId's (null: undim all).
export function focusRing(svg, memberId) {
  svg.classList.toggle("focus", memberId !== null);
  for (const arc of svg.querySelectorAll(".arc")) {
    arc.classList.toggle("focused", arc.getAttribute("data-member-id") === memberId);
  }
}

const BAR_WIDTH = 170; // viewBox units for 16384 slots
const BAR_HEIGHT = 7;
const ROW_HEIGHT = 21;
const LABEL_WIDTH = 52;
let sharesKey = "";

// One row per member: a bar of the slots it leads and one of the slots it holds copies of.
export function drawShares(svg, shares, members, colours, onHover) {
  const states = members.map((m) => m.id + ":" + m.state).join(",");
  const key = JSON.stringify(shares) + "|" + states;
  if (key === sharesKey) return;
  sharesKey = key;

  const byMember = new Map(members.map((m) => [m.id, m]));
  const width = LABEL_WIDTH + BAR_WIDTH + 70;
  svg.setAttribute("viewBox", "0 0 " + width + " " + Math.max(ROW_HEIGHT, shares.length * ROW_HEIGHT));
  svg.replaceChildren();
  shares.forEach((share, index) => {
    const member = byMember.get(share.id);
    const colour = colours.get(share.id) || { strong: "#888", light: "#ccc" };
    const dead = member && member.state === "dead";
    const row = svgEl("g", { class: "share" + (dead ? " dead" : ""), "data-member-id": share.id,
      transform: "translate(0 " + index * ROW_HEIGHT + ")" });
    const label = svgEl("text", { class: "share-label", x: 0, y: 10 });
    label.textContent = shortId(share.id);
    row.append(label);
    [["primary", share.primary, colour.strong, 2], ["replica", share.replica, colour.light, 2 + BAR_HEIGHT + 2]]
      .forEach(([role, slots, fill, y]) => {
        row.append(svgEl("rect", { class: "share-track", x: LABEL_WIDTH, y, width: BAR_WIDTH, height: BAR_HEIGHT }));
        const bar = svgEl("rect", { class: "share-bar " + role, x: LABEL_WIDTH, y, height: BAR_HEIGHT, fill,
          width: ((slots / SLOTS) * BAR_WIDTH).toFixed(2) });
        const title = svgEl("title");
        title.textContent = shortId(share.id) + " · " + role + " · " + slots + " slots (" +
          ((slots / SLOTS) * 100).toFixed(1) + "%)";
        bar.append(title);
        row.append(bar);
        const count = svgEl("text", { class: "share-count", x: LABEL_WIDTH + BAR_WIDTH + 4, y: y + BAR_HEIGHT - 0.5 });
        count.textContent = slots + " " + (role === "primary" ? "led" : "copies");
        row.append(count);
      });
    row.addEventListener("mouseenter", () => onHover(share.id));
    row.addEventListener("mouseleave", () => onHover(null));
    svg.append(row);
  });
}
