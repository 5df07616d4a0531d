// Formats numbers, sizes, ages and times for people, and gives each member its colour.

export const DASH = "—";

export function shortId(id) {
  return String(id).slice(0, 8);
}

export function fmtInt(n) {
  return n === null || n === undefined ? DASH : Math.round(n).toLocaleString("en-US");
}

export function fmtOps(n) {
  if (n === null || n === undefined) return DASH;
  return n < 10 ? n.toFixed(1) : fmtInt(n);
}

export function fmtBytes(n) {
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

export function fmtAge(s) {
  if (s === null || s === undefined) return DASH;
  return s < 10 ? s.toFixed(1) + " s ago" : Math.round(s) + " s ago";
}

export function fmtDuration(s) {
  const total = Math.floor(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  return h > 0 ? h + " h " + m + " min" : m > 0 ? m + " min " + (total % 60) + " s" : total + " s";
}

export function fmtClock(date) {
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

// One colour per member, taken in id order (the same on every node) and
// spread by the golden angle so neighbours never look alike.
export function palette(members) {
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
