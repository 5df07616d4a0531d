// Small SVG line charts of a member's recent load and memory.

import { svgEl } from "./dom.js";

// A sparkline: the line scaled to the window's maximum, with gaps where a member was dead.
export function drawSpark(svg, values, colour) {
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
