/* HumanBeauty plots: a small inline-SVG helper for the dashboards (no chart library).
 *
 * Each chart function draws into a container element at the container's current width and
 * returns the <svg>. Marks carry classes (`bar`, `line`, `dot`, `series-N`) so pages style
 * them in CSS and tests can count them; a `data-tip` attribute on a mark shows a tooltip.
 * Exposed as `window.HBPlot`.
 */
(() => {
  "use strict";

  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs = {}, parent = null) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, String(v));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function svgFor(container, height, label) {
    const width = Math.max(160, Math.floor(container.clientWidth || 480));
    const svg = el("svg", {
      class: "plot",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": label,
    });
    container.replaceChildren(svg);
    return { svg, width, height };
  }

  // --- scales -----------------------------------------------------------------------------

  function linear(domain, range) {
    const [d0, d1] = domain;
    const [r0, r1] = range;
    const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
    const f = (v) => r0 + (v - d0) * k;
    f.domain = domain;
    f.range = range;
    f.ticks = (n = 5) => niceTicks(d0, d1, n);
    return f;
  }

  function niceStep(span, n) {
    const raw = span / Math.max(1, n);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    return (norm >= 5 ? 10 : norm >= 2 ? 5 : norm >= 1 ? 2 : 1) * mag;
  }

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const step = niceStep(hi - lo, n);
    const out = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
      out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
    }
    return out;
  }

  /** A domain [0, nice max] for counts. */
  function niceMax(max, n = 4) {
    if (!(max > 0)) return 1;
    const step = niceStep(max, n);
    return Math.ceil(max / step) * step;
  }

  function band(count, range, padding = 0.2) {
    const [r0, r1] = range;
    const step = (r1 - r0) / Math.max(1, count);
    return { step, width: step * (1 - padding), at: (i) => r0 + i * step + (step * padding) / 2 };
  }

  const fmtInt = (n) => Math.round(n).toLocaleString();
  const fmtNum = (v, digits = 2) => (v === null || v === undefined || Number.isNaN(v) ? "–" : v.toFixed(digits));
  const fmtTick = (v) => (Math.abs(v) >= 1000 ? fmtInt(v) : +v.toPrecision(4) + "");

  // --- axes and grid ----------------------------------------------------------------------

  function yGrid(svg, y, x0, x1, { ticks = 4, format = fmtTick, label = null } = {}) {
    const g = el("g", { class: "axis axis-y" }, svg);
    for (const t of y.ticks(ticks)) {
      const yy = Math.round(y(t)) + 0.5;
      el("line", { class: t === 0 ? "grid grid-zero" : "grid", x1: x0, x2: x1, y1: yy, y2: yy }, g);
      el("text", { class: "tick", x: x0 - 6, y: yy, dy: "0.32em", "text-anchor": "end", text: format(t) }, g);
    }
    if (label) {
      const [r0, r1] = y.range;
      el("text", { class: "axis-label", transform: `translate(${x0 - 38},${(r0 + r1) / 2}) rotate(-90)`, "text-anchor": "middle", text: label }, g);
    }
    return g;
  }

  function xGrid(svg, x, y0, y1, { ticks = 5, format = fmtTick, label = null, grid = true } = {}) {
    const g = el("g", { class: "axis axis-x" }, svg);
    for (const t of x.ticks(ticks)) {
      const xx = Math.round(x(t)) + 0.5;
      if (grid) el("line", { class: t === 0 ? "grid grid-zero" : "grid", x1: xx, x2: xx, y1: y0, y2: y1 }, g);
      el("text", { class: "tick", x: xx, y: y1 + 14, "text-anchor": "middle", text: format(t) }, g);
    }
    if (label) {
      const [r0, r1] = x.range;
      el("text", { class: "axis-label", x: (r0 + r1) / 2, y: y1 + 32, "text-anchor": "middle", text: label }, g);
    }
    return g;
  }

  /** Time labels under a band of buckets: at most ~`max` of them, evenly spaced. */
  function timeLabels(svg, starts, xAt, y, format, max) {
    const g = el("g", { class: "axis axis-x" }, svg);
    const every = Math.max(1, Math.ceil(starts.length / max));
    starts.forEach((t, i) => {
      if (i % every) return;
      el("text", { class: "tick", x: xAt(i), y, "text-anchor": "middle", text: format(t) }, g);
    });
    return g;
  }

  // --- charts -------------------------------------------------------------------------------

  /**
   * Progress over time: cumulative ratings (line and area) against the ratings required
   * (dashed line), above the ratings per bucket (bars). Both share the time axis.
   * opts: {points: [{t, n, cumulative}], required, bucketLabel, formatTime}
   */
  function progress(container, opts) {
    const { points, required } = opts;
    const h = opts.height || 300;
    const { svg, width } = svgFor(container, h, opts.label || "Progress over time");
    const m = { left: 56, right: 16, top: 12, bottom: 26 };
    const gap = 30;
    const barsH = Math.round((h - m.top - m.bottom - gap) * 0.34);
    const lineBottom = h - m.bottom - barsH - gap;
    const x0 = m.left;
    const x1 = width - m.right;
    const slots = band(points.length, [x0, x1], points.length > 60 ? 0.1 : 0.25);
    const centre = (i) => slots.at(i) + slots.width / 2;

    // Cumulative vs required.
    const top = Math.max(required || 0, points.length ? points[points.length - 1].cumulative : 0);
    const y = linear([0, niceMax(top * 1.05)], [lineBottom, m.top]);
    yGrid(svg, y, x0, x1, { ticks: 4, format: fmtTick });
    if (required) {
      const ry = y(required);
      el("line", { class: "ref-line", x1: x0, x2: x1, y1: ry, y2: ry }, svg);
      el("text", { class: "ref-label", x: (x0 + x1) / 2, y: ry - 5, "text-anchor": "middle", text: `required ${fmtInt(required)}` }, svg);
    }
    if (points.length) {
      // Steps at the end of each bucket: the total is reached when the bucket closes.
      const xs = points.map((_, i) => slots.at(i) + slots.step - (slots.step - slots.width) / 2);
      const start = `M${slots.at(0)},${y(0)}`;
      const line = points.map((p, i) => `L${xs[i]},${y(p.cumulative)}`).join("");
      el("path", { class: "area", d: `${start}${line}L${xs[xs.length - 1]},${y(0)}Z` }, svg);
      el("path", { class: "line series-cumulative", d: `${start}${line}`, fill: "none" }, svg);
      const last = points[points.length - 1];
      const dot = el("circle", { class: "dot", cx: xs[xs.length - 1], cy: y(last.cumulative), r: 3.5 }, svg);
      dot.dataset.tip = `${fmtInt(last.cumulative)} ratings so far`;
    }
    el("text", { class: "panel-label", x: x0 + 6, y: m.top + 12, text: "Cumulative" }, svg);

    // Per-bucket bars.
    const barsTop = lineBottom + gap;
    const maxN = Math.max(0, ...points.map((p) => p.n));
    const yb = linear([0, niceMax(maxN, 2)], [barsTop + barsH, barsTop]);
    yGrid(svg, yb, x0, x1, { ticks: 2, format: fmtTick });
    const g = el("g", { class: "series series-per-bucket" }, svg);
    points.forEach((p, i) => {
      const yy = yb(p.n);
      const r = el("rect", {
        class: "bar",
        x: slots.at(i),
        y: yy,
        width: Math.max(1, slots.width),
        height: Math.max(0, yb(0) - yy),
      }, g);
      r.dataset.tip = `${opts.formatTime(p.t, true)}: ${fmtInt(p.n)} rating${p.n === 1 ? "" : "s"} (total ${fmtInt(p.cumulative)})`;
    });
    el("text", { class: "panel-label", x: x0 + 6, y: barsTop + 10, text: opts.bucketLabel || "Per bucket" }, svg);
    timeLabels(svg, points.map((p) => p.t), centre, h - 8, (t) => opts.formatTime(t, false), Math.floor((x1 - x0) / 70));
    return svg;
  }

  /**
   * Horizontal stacked bars, one row per item: rows [{label, values: [..], tip, note}],
   * series [{label, cls}] (one per value).
   */
  function hbars(container, opts) {
    const rows = opts.rows;
    const rowH = opts.rowHeight || 26;
    const m = { left: opts.labelWidth || 110, right: 64, top: 6, bottom: 30 };
    const h = m.top + m.bottom + rows.length * rowH;
    const { svg, width } = svgFor(container, h, opts.label);
    const totals = rows.map((r) => r.values.reduce((a, b) => a + b, 0));
    const x = linear([0, niceMax(Math.max(0, ...totals))], [m.left, width - m.right]);
    xGrid(svg, x, m.top, h - m.bottom, { ticks: 4, label: opts.xLabel });
    const slots = band(rows.length, [m.top, h - m.bottom], 0.3);
    const groups = opts.series.map((s, j) => el("g", { class: `series series-${j} ${s.cls || ""}` }, svg));
    rows.forEach((row, i) => {
      let acc = 0;
      row.values.forEach((v, j) => {
        const r = el("rect", { class: "bar", x: x(acc), y: slots.at(i), width: Math.max(0, x(acc + v) - x(acc)), height: slots.width }, groups[j]);
        r.dataset.tip = `${row.label}: ${fmtInt(v)} ${opts.series[j].label}`;
        acc += v;
      });
      el("text", { class: "row-label", x: m.left - 8, y: slots.at(i) + slots.width / 2, dy: "0.32em", "text-anchor": "end", text: row.label }, svg);
      if (row.note) el("text", { class: "row-note", x: x(acc) + 6, y: slots.at(i) + slots.width / 2, dy: "0.32em", text: row.note }, svg);
    });
    return svg;
  }

  /**
   * Grouped horizontal bars: one group per row (a dimension), one bar per series (a metric).
   * groups [{label, values: [v|null, ...]}], series [{label, cls}], domain [lo, hi].
   * A missing value draws no bar but an "n/a" mark, so the count of bars stays honest.
   */
  function groupedHBars(container, opts) {
    const { groups, series } = opts;
    const barH = opts.barHeight || 6;
    const groupH = barH * series.length + 12;
    const m = { left: opts.labelWidth || 200, right: 16, top: 8, bottom: 34 };
    const h = m.top + m.bottom + groups.length * groupH;
    const { svg, width } = svgFor(container, h, opts.label);
    const x = linear(opts.domain, [m.left, width - m.right]);
    groups.forEach((grp, i) => {
      if (i % 2 === 0) el("rect", { class: "band", x: 0, y: m.top + i * groupH, width, height: groupH }, svg);
    });
    xGrid(svg, x, m.top, h - m.bottom, { ticks: 6, label: opts.xLabel, format: (v) => v.toFixed(1) });
    if (opts.refs) {
      for (const ref of opts.refs) {
        const xx = Math.round(x(ref.value)) + 0.5;
        el("line", { class: "ref-line", x1: xx, x2: xx, y1: m.top, y2: h - m.bottom }, svg);
      }
    }
    const layers = series.map((s, j) => el("g", { class: `series series-${j} ${s.cls || ""}`, "data-series": s.key || j }, svg));
    const zero = x(Math.max(opts.domain[0], Math.min(0, opts.domain[1])));
    groups.forEach((grp, i) => {
      const gy = m.top + i * groupH + 6;
      grp.values.forEach((v, j) => {
        const yy = gy + j * barH;
        if (v === null || v === undefined || Number.isNaN(v)) {
          const t = el("text", { class: "na-mark", x: zero + 4, y: yy + barH / 2, dy: "0.32em", text: "n/a" }, layers[j]);
          t.dataset.tip = `${grp.label} · ${series[j].label}: not enough data`;
          return;
        }
        const xv = x(Math.max(opts.domain[0], Math.min(opts.domain[1], v)));
        const r = el("rect", { class: "bar", x: Math.min(zero, xv), y: yy, width: Math.max(1, Math.abs(xv - zero)), height: barH - 1 }, layers[j]);
        r.dataset.tip = `${grp.label} · ${series[j].label}: ${fmtNum(v)}`;
      });
      el("text", { class: "row-label", x: m.left - 10, y: m.top + i * groupH + groupH / 2, dy: "0.32em", "text-anchor": "end", text: grp.label }, svg);
    });
    return svg;
  }

  /**
   * One small histogram on [0, 1]: counts per equal-width bin; classOf(i) adds a class per bar
   * (the verbal level of the bin). Ticks at the level thresholds.
   */
  function histogram(container, opts) {
    const { counts } = opts;
    const h = opts.height || 120;
    const { svg, width } = svgFor(container, h, opts.label);
    const m = { left: 26, right: 8, top: 8, bottom: 18 };
    const x = linear([0, 1], [m.left, width - m.right]);
    const max = opts.max || Math.max(1, ...counts);
    const y = linear([0, niceMax(max, 2)], [h - m.bottom, m.top]);
    yGrid(svg, y, m.left, width - m.right, { ticks: 2 });
    const g = el("g", { class: "series" }, svg);
    const n = counts.length;
    counts.forEach((c, i) => {
      const xa = x(i / n) + 0.5;
      const xb = x((i + 1) / n) - 0.5;
      const r = el("rect", { class: `bar ${opts.classOf ? opts.classOf(i) : ""}`, x: xa, y: y(c), width: Math.max(1, xb - xa), height: Math.max(0, y(0) - y(c)) }, g);
      r.dataset.tip = `${(i / n).toFixed(2)}–${((i + 1) / n).toFixed(2)}: ${fmtInt(c)} image${c === 1 ? "" : "s"}`;
    });
    const ax = el("g", { class: "axis axis-x" }, svg);
    for (const t of opts.ticks || [0, 0.5, 1]) {
      el("text", { class: "tick", x: x(t), y: h - 4, "text-anchor": t === 0 ? "start" : t === 1 ? "end" : "middle", text: String(t) }, ax);
    }
    if (opts.mean !== null && opts.mean !== undefined) {
      const xm = Math.round(x(opts.mean)) + 0.5;
      const line = el("line", { class: "mean-line", x1: xm, x2: xm, y1: m.top, y2: h - m.bottom }, svg);
      line.dataset.tip = `mean ${fmtNum(opts.mean)}`;
    }
    return svg;
  }

  /**
   * Scatter: points [{x, y, label, cls, tip}], xDomain, yDomain, optional refs
   * {x: [values], y: [values]} drawn as dashed lines, and labels next to the dots.
   */
  function scatter(container, opts) {
    const h = opts.height || 300;
    const { svg, width } = svgFor(container, h, opts.label);
    const m = { left: 56, right: 20, top: 14, bottom: 42 };
    const x = linear(opts.xDomain, [m.left, width - m.right]);
    const y = linear(opts.yDomain, [h - m.bottom, m.top]);
    yGrid(svg, y, m.left, width - m.right, { ticks: 5, label: opts.yLabel, format: (v) => v.toFixed(2) });
    xGrid(svg, x, m.top, h - m.bottom, { ticks: 6, label: opts.xLabel, format: (v) => v.toFixed(1) });
    for (const v of (opts.refs && opts.refs.x) || []) {
      const xx = Math.round(x(v)) + 0.5;
      el("line", { class: "ref-line", x1: xx, x2: xx, y1: m.top, y2: h - m.bottom }, svg);
    }
    for (const v of (opts.refs && opts.refs.y) || []) {
      const yy = Math.round(y(v)) + 0.5;
      el("line", { class: "ref-line", x1: m.left, x2: width - m.right, y1: yy, y2: yy }, svg);
    }
    const g = el("g", { class: "series" }, svg);
    const labels = el("g", { class: "dot-labels" }, svg);
    const clampX = (v) => Math.max(opts.xDomain[0], Math.min(opts.xDomain[1], v));
    const clampY = (v) => Math.max(opts.yDomain[0], Math.min(opts.yDomain[1], v));
    const placed = []; // label boxes so far: {x0, x1, y}
    const free = (x0, x1, yy) => placed.every((b) => Math.abs(b.y - yy) >= 12 || x1 < b.x0 || x0 > b.x1);
    const marks = opts.points.map((p) => ({ p, cx: x(clampX(p.x)), cy: y(clampY(p.y)) }));
    for (const { p, cx, cy } of marks) {
      const dot = el("circle", { class: `dot ${p.cls || ""}`, cx, cy, r: 5.5 }, g);
      dot.dataset.tip = p.tip || p.label;
    }
    // Labels beside their dots; where dots crowd, a label moves up or down to a free line.
    marks.sort((a, b) => a.cy - b.cy);
    for (const { p, cx, cy } of marks) {
      const w = 6.6 * p.label.length + 4;
      const right = cx < width - m.right - w - 12;
      const x0 = right ? cx + 9 : cx - 9 - w;
      const offsets = [0, -13, 13, -26, 26, -39, 39];
      const dy = offsets.find((o) => free(x0, x0 + w, cy + o)) ?? 0;
      placed.push({ x0, x1: x0 + w, y: cy + dy });
      if (dy) el("line", { class: "dot-leader", x1: cx + (right ? 5 : -5), y1: cy, x2: right ? x0 - 1 : x0 + w + 1, y2: cy + dy }, labels);
      el("text", { class: "dot-label", x: right ? x0 : x0 + w, y: cy + dy, dy: "0.32em", "text-anchor": right ? "start" : "end", text: p.label }, labels);
    }
    return svg;
  }

  /** A small inline bar for a table cell: value on [lo, hi], optional threshold tick. */
  function cellBar(value, { lo = 0, hi = 1, threshold = null, cls = "", diverging = false, width = 72 } = {}) {
    const h = 10;
    const svg = el("svg", { class: "cell-bar", width, height: h, viewBox: `0 0 ${width} ${h}`, "aria-hidden": "true" });
    el("rect", { class: "cell-bar-track", x: 0, y: 2, width, height: h - 4, rx: 2 }, svg);
    if (value !== null && value !== undefined && !Number.isNaN(value)) {
      const x = linear([lo, hi], [0, width]);
      const v = Math.max(lo, Math.min(hi, value));
      const from = diverging ? x(0) : 0;
      el("rect", { class: `cell-bar-fill ${cls}`, x: Math.min(from, x(v)), y: 2, width: Math.max(1.5, Math.abs(x(v) - from)), height: h - 4, rx: 1 }, svg);
      if (diverging) el("line", { class: "cell-bar-zero", x1: x(0), x2: x(0), y1: 0, y2: h }, svg);
    }
    if (threshold !== null && threshold !== undefined) {
      const tx = linear([lo, hi], [0, width])(threshold);
      el("line", { class: "cell-bar-threshold", x1: tx, x2: tx, y1: 0, y2: h }, svg);
    }
    return svg;
  }

  // --- tooltips -----------------------------------------------------------------------------

  let tip = null;
  function ensureTip() {
    if (tip) return tip;
    tip = document.createElement("div");
    tip.className = "plot-tip";
    tip.setAttribute("role", "tooltip");
    tip.hidden = true;
    document.body.appendChild(tip);
    return tip;
  }

  document.addEventListener("pointerover", (e) => {
    const mark = e.target.closest && e.target.closest("[data-tip]");
    if (!mark || !(mark instanceof SVGElement)) return;
    const t = ensureTip();
    t.textContent = mark.dataset.tip;
    t.hidden = false;
    mark.classList.add("is-hover");
  });
  document.addEventListener("pointermove", (e) => {
    if (!tip || tip.hidden) return;
    const pad = 14;
    const r = tip.getBoundingClientRect();
    const left = Math.min(window.innerWidth - r.width - 8, e.clientX + pad);
    const top = e.clientY - r.height - pad < 4 ? e.clientY + pad : e.clientY - r.height - pad;
    tip.style.transform = `translate(${Math.max(4, left)}px, ${top}px)`;
  });
  document.addEventListener("pointerout", (e) => {
    const mark = e.target.closest && e.target.closest("[data-tip]");
    if (!mark || !tip) return;
    mark.classList.remove("is-hover");
    tip.hidden = true;
  });

  window.HBPlot = { el, linear, niceTicks, niceMax, band, progress, hbars, groupedHBars, histogram, scatter, cellBar, fmtNum, fmtInt };
})();
