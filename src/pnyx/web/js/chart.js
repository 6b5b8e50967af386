// Listeners over time as a small SVG line chart, drawn by hand. Attributes only (no
// style attributes): the page's Content-Security-Policy refuses inline styles; colours
// come from styles.css through classes.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const child of children) el.append(child);
  return el;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** points: [{at: ISO time, listeners: n}], oldest first. */
export function timelineChart(points, { width = 560, height = 160 } = {}) {
  const pad = { left: 40, right: 12, top: 12, bottom: 24 };
  const w = width - pad.left - pad.right;
  const hgt = height - pad.top - pad.bottom;
  const times = points.map((p) => new Date(p.at).getTime());
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const peak = Math.max(1, ...points.map((p) => p.listeners));
  const x = (t) => pad.left + (t1 > t0 ? ((t - t0) / (t1 - t0)) * w : w / 2);
  const y = (n) => pad.top + hgt - (n / peak) * hgt;
  const line = points.map((p, i) => `${x(times[i]).toFixed(1)},${y(p.listeners).toFixed(1)}`).join(" ");
  const label = points.length
    ? `Listeners over time: ${points.length} points from ${clock(points[0].at)} to ${clock(points.at(-1).at)}, at most ${peak}.`
    : "Listeners over time: no data yet.";
  const chart = svg("svg", {
    class: "timeline-chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label,
    preserveAspectRatio: "none",
  });
  chart.append(
    svg("line", { class: "axis", x1: pad.left, y1: pad.top + hgt, x2: pad.left + w, y2: pad.top + hgt }),
    svg("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: pad.top + hgt }),
    svg("text", { class: "tick", x: pad.left - 6, y: pad.top + 4, "text-anchor": "end" }, String(peak)),
    svg("text", { class: "tick", x: pad.left - 6, y: pad.top + hgt, "text-anchor": "end" }, "0"),
  );
  if (points.length) {
    chart.append(
      svg("text", { class: "tick", x: pad.left, y: height - 6, "text-anchor": "start" }, clock(points[0].at)),
      svg("text", { class: "tick", x: pad.left + w, y: height - 6, "text-anchor": "end" }, clock(points.at(-1).at)),
      svg("polyline", { class: "line", points: line, fill: "none" }),
    );
  }
  return chart;
}
