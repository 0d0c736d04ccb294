/* HumanBeauty manager dashboard: progress, throughput, agreement, histograms, raters.
 *
 * The dimensions (names, page order), levels and the project's thresholds come from the
 * page's JSON config, which the server builds from humanbeauty/standard.py. Data comes from
 * the REST API only: agreement/, raters/, timeline/, histograms/; managers change a rater's
 * status through raters/{username}/status/, include or exclude a rater from the consensus
 * through raters/{username}/exclusion/, and recompute through refresh/.
 * Plots are inline SVG drawn by static/js/plot.js.
 */
(() => {
  "use strict";

  const HB = window.HB;
  const { $, api, fmt, node, closeOnBackdrop } = HB;
  const cfg = JSON.parse($("dashboard-config").textContent);
  const P = window.HBPlot;

  const DIMS = cfg.dimensions; // page order
  const LEVELS = cfg.levels; // [{number, name, score, low, high}]
  const METRICS = [
    { key: "krippendorff_alpha", label: "Krippendorff's α (interval)" },
    { key: "icc2_1", label: "ICC(2,1)" },
    { key: "icc2_k", label: "ICC(2,k)" },
    { key: "mean_pairwise_srcc", label: "Mean pairwise SRCC" },
  ];
  const OVERALL = DIMS[DIMS.length - 1]; // the comprehensive score closes the page order
  // What a manager may do from each status: [label, new status, needs a reason].
  const ACTIONS = {
    candidate: [["Certify", "certified", false]],
    certified: [["Pause", "paused", true], ["Revoke", "revoked", true]],
    flagged: [["Certify", "certified", false], ["Pause", "paused", true], ["Revoke", "revoked", true]],
    paused: [["Resume", "certified", false], ["Revoke", "revoked", true]],
    revoked: [["Certify", "certified", true]],
  };
  const VERB = { certified: "certified", paused: "paused", revoked: "revoked" };

  const state = {
    bucket: "auto",
    bins: 10,
    timeline: null,
    agreement: null,
    raters: null,
    histograms: null,
    dialog: null, // {username, status} or {username, exclusion}
  };

  // --- small helpers ------------------------------------------------------------------------

  const num = (v, digits = 2) => (v === null || v === undefined ? "–" : v.toFixed(digits));
  const signed = (v, digits = 3) => (v === null || v === undefined ? "–" : (v > 0 ? "+" : v < 0 ? "−" : "") + Math.abs(v).toFixed(digits));

  const showMessage = (text, kind) => HB.showMessage($("message"), text, kind);
  const clearMessage = () => HB.hideMessage($("message"));

  function empty(container, text) {
    container.replaceChildren(node("p", { class: "chart-empty", text }));
  }

  const levelOf = (score) => {
    for (let i = 0; i < LEVELS.length; i += 1) if (score < LEVELS[i].high || i === LEVELS.length - 1) return i;
    return LEVELS.length - 1;
  };

  // --- time formatting --------------------------------------------------------------------

  function formatTime(iso, long) {
    const tl = state.timeline;
    const tz = tl ? tl.timezone : undefined;
    const d = new Date(iso);
    const opts = { timeZone: tz };
    const safe = (o) => {
      try {
        return new Intl.DateTimeFormat(undefined, { ...opts, ...o }).format(d);
      } catch (_) {
        return new Intl.DateTimeFormat(undefined, o).format(d);
      }
    };
    if (tl && tl.bucket === "hour") {
      return long ? safe({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : safe({ hour: "2-digit", minute: "2-digit" });
    }
    const day = safe({ day: "numeric", month: "short" });
    if (tl && tl.bucket === "week") return long ? `week of ${day}` : day;
    return long ? safe({ weekday: "short", day: "numeric", month: "short", year: "numeric" }) : day;
  }

  // --- key figures --------------------------------------------------------------------------

  function kpi(i, value, sub, href) {
    const card = $("kpis").children[i];
    const v = card.querySelector(".kpi-value");
    v.textContent = value;
    let s = card.querySelector(".kpi-sub");
    if (!s) {
      s = node("span", { class: "kpi-sub" });
      card.append(s);
    }
    s.replaceChildren();
    if (href) s.append(node("a", { href, text: sub }));
    else s.textContent = sub;
  }

  function renderKpis() {
    const tl = state.timeline;
    if (tl) {
      const p = tl.progress;
      const pct = p.ratings_required ? Math.round((100 * p.ratings_done) / p.ratings_required) : 0;
      kpi(0, `${pct}%`, `${fmt(p.ratings_done)} of ${fmt(p.ratings_required)} ratings`);
      const card = $("kpis").children[0];
      let bar = card.querySelector(".progress");
      if (!bar) {
        bar = node("div", { class: "progress", role: "progressbar", "aria-label": "Ratings done", "aria-valuemin": "0", "aria-valuemax": "100" }, node("span", { class: "progress-bar" }));
        card.append(bar);
      }
      bar.setAttribute("aria-valuenow", String(pct));
      bar.firstChild.style.width = `${pct}%`;
      kpi(1, fmt(p.images_complete), `of ${fmt(p.images)} images${p.images_excluded ? ` · ${fmt(p.images_excluded)} excluded` : ""}`);
      kpi(2, fmt(p.open_reviews), p.open_reviews ? "Open the review queue" : "Nothing to review", p.open_reviews && cfg.urls.review ? cfg.urls.review : null);
    }
    if (state.raters) {
      const r = state.raters;
      const certified = r.filter((x) => x.status === "certified").length;
      const attention = r.filter((x) => x.status === "flagged" || x.status === "paused").length;
      const excluded = r.filter((x) => x.excluded).length;
      const bits = [`of ${r.length} rater${r.length === 1 ? "" : "s"}`];
      if (attention) bits.push(`${attention} flagged or paused`);
      if (excluded) bits.push(`${excluded} left out of the consensus`);
      kpi(3, fmt(certified), bits.join(" · "));
    }
    if (state.agreement) {
      const a = state.agreement.dimensions[OVERALL.key];
      kpi(4, a ? num(a.krippendorff_alpha) : "–", `Krippendorff's α, ${OVERALL.name}`);
    }
  }

  // --- progress and throughput ----------------------------------------------------------

  const BUCKET_WORD = { hour: "Per hour", day: "Per day", week: "Per week" };

  /** [the chart element `id`, the timeline], or null when there is nothing to draw yet (the
   * chart then says `emptyText` where the timeline has no `rows`). */
  function timelineChart(id, rows, emptyText) {
    const tl = state.timeline;
    if (!tl) return null;
    if (!rows(tl).length) {
      empty($(id), emptyText);
      return null;
    }
    return [$(id), tl];
  }

  function drawProgress() {
    const chart = timelineChart("chart-progress", (tl) => tl.points, "No production ratings yet.");
    if (!chart) return;
    const [c, tl] = chart;
    P.progress(c, {
      points: tl.points,
      required: tl.progress.ratings_required,
      bucketLabel: BUCKET_WORD[tl.bucket],
      formatTime,
      label: `Cumulative production ratings per ${tl.bucket}, against ${tl.progress.ratings_required} required`,
    });
    const first = formatTime(tl.points[0].t, true);
    const last = formatTime(tl.points[tl.points.length - 1].t, true);
    $("progress-sub").textContent = `Production ratings per ${tl.bucket} (${tl.timezone}), ${first} – ${last}; cumulative against the ${fmt(tl.progress.ratings_required)} required`;
  }

  function drawThroughput() {
    const chart = timelineChart("chart-throughput", (tl) => tl.raters, "Nobody has rated yet.");
    if (!chart) return;
    const [c, tl] = chart;
    P.hbars(c, {
      rows: tl.raters.map((r) => ({
        label: r.username,
        values: [r.n, r.n_reference],
        note: `${r.median_seconds < 10 ? r.median_seconds.toFixed(1) : Math.round(r.median_seconds)} s`,
      })),
      series: [
        { label: "production ratings", cls: "series-production" },
        { label: "gold & qualification answers", cls: "series-reference" },
      ],
      xLabel: "ratings",
      labelWidth: Math.min(140, 24 + 7.5 * Math.max(...tl.raters.map((r) => r.username.length))),
      label: "Ratings per rater",
    });
  }

  async function loadTimeline() {
    try {
      state.timeline = await api("GET", `${cfg.urls.timeline}?bucket=${state.bucket}`);
    } catch (err) {
      empty($("chart-progress"), `Could not load the timeline: ${err.message}`);
      empty($("chart-throughput"), "");
      return;
    }
    for (const b of document.querySelectorAll("#bucket-picker .seg-btn")) {
      const on = b.dataset.bucket === state.bucket;
      b.setAttribute("aria-pressed", String(on));
      if (b.dataset.bucket === "auto") b.textContent = state.bucket === "auto" ? `Auto (${state.timeline.bucket})` : "Auto";
    }
    drawProgress();
    drawThroughput();
    renderKpis();
  }

  for (const b of document.querySelectorAll("#bucket-picker .seg-btn")) {
    b.addEventListener("click", () => {
      state.bucket = b.dataset.bucket;
      loadTimeline();
    });
  }

  // --- agreement ----------------------------------------------------------------------------

  function drawAgreement() {
    const c = $("chart-agreement");
    const a = state.agreement;
    if (!a) return;
    const dims = a.dimensions || {};
    if (!Object.keys(dims).length) {
      $("agreement-legend").replaceChildren();
      return empty(c, "No production ratings yet: agreement needs images rated by two raters or more.");
    }
    const values = DIMS.flatMap((d) => METRICS.map((m) => (dims[d.key] || {})[m.key])).filter((v) => typeof v === "number");
    const lo = Math.min(0, Math.floor(Math.min(...values, 0) * 5) / 5);
    P.groupedHBars(c, {
      groups: DIMS.map((d) => ({ label: d.name, values: METRICS.map((m) => (dims[d.key] ? dims[d.key][m.key] : null)) })),
      series: METRICS.map((m, j) => ({ key: m.key, label: m.label, cls: `metric-${j}` })),
      domain: [lo, 1],
      labelWidth: 236,
      barHeight: 7,
      xLabel: "agreement (1 = perfect)",
      label: "Agreement per dimension: Krippendorff's alpha, ICC(2,1), ICC(2,k), mean pairwise Spearman",
    });
    $("agreement-legend").replaceChildren(...METRICS.map((m, j) => node("li", {}, node("span", { class: `swatch metric-${j}` }), m.label)));
    const n = Math.max(0, ...Object.values(dims).map((d) => d.n_images || 0));
    $("agreement-sub").textContent = `Over ${fmt(a.n_ratings)} production ratings of up to ${fmt(n)} images rated twice or more`;

    // The same figures as a table, for exact numbers.
    const head = node("tr", {}, node("th", { scope: "col", text: "Dimension" }), ...METRICS.map((m) => node("th", { scope: "col", class: "num", text: m.label })), node("th", { scope: "col", class: "num", text: "Images" }));
    const rows = DIMS.map((d) => {
      const e = dims[d.key] || {};
      return node("tr", {}, node("th", { scope: "row", text: d.name }), ...METRICS.map((m) => node("td", { class: "num", text: num(e[m.key], 3) })), node("td", { class: "num", text: fmt(e.n_images) }));
    });
    $("agreement-table").replaceChildren(node("table", { class: "data-table compact" }, node("thead", {}, head), node("tbody", {}, ...rows)));
  }

  // When each figure was computed, and what has happened since (the consensus follows the
  // ratings by itself; rater figures and agreement are recomputed every few minutes).
  function renderMeta() {
    const a = state.agreement;
    const when = (t) => (t ? new Date(t).toLocaleString() : "never");
    const since = a.n_ratings_now - a.n_ratings;
    const meta = $("stats-meta");
    meta.dataset.computedAt = a.computed_at || "";
    meta.dataset.consensusComputedAt = a.consensus_computed_at || "";
    meta.dataset.staleImages = String(a.stale_images);
    const figures = `Rater figures and agreement computed ${when(a.computed_at)} from ${fmt(a.n_ratings)} production ratings${since > 0 ? ` (${fmt(since)} newer ratings not yet in them)` : ""}.`;
    const consensus = a.stale_images
      ? `Consensus computed ${when(a.consensus_computed_at)}; ${fmt(a.stale_images)} image${a.stale_images === 1 ? " has" : "s have"} newer ratings and ${a.stale_images === 1 ? "is" : "are"} being refreshed.`
      : `Consensus computed ${when(a.consensus_computed_at)}, up to date with every rating.`;
    meta.replaceChildren(node("span", { class: "meta-figures", text: figures }), " ", node("span", { class: `meta-consensus${a.stale_images ? " is-stale" : ""}`, text: consensus }));
    const warn = $("screening-warning");
    const warning = a.screening && a.screening.warning;
    warn.hidden = !warning;
    warn.textContent = warning ? `Screening: ${warning}.` : "";
  }

  async function loadAgreement() {
    try {
      state.agreement = await api("GET", cfg.urls.agreement);
    } catch (err) {
      empty($("chart-agreement"), `Could not load agreement: ${err.message}`);
      $("stats-meta").textContent = "";
      return;
    }
    renderMeta();
    drawAgreement();
    renderKpis();
  }

  // --- histograms -----------------------------------------------------------------------------

  function drawHistograms() {
    const h = state.histograms;
    const grid = $("histograms");
    if (!h) return;
    if (!h.n_images) return empty(grid, "No consensus labels yet: refresh the statistics once images have their ratings.");
    const cards = DIMS.map((d) => {
      const e = h.dimensions[d.key];
      const chart = node("div", { class: "hist-chart", "data-dimension": d.key });
      const meta = [`n ${fmt(e.n)}`];
      if (e.mean !== null) meta.push(`mean ${num(e.mean)}`);
      if (e.not_applicable) meta.push(`${fmt(e.not_applicable)} n/a`);
      const card = node(
        "figure",
        { class: "hist-card", "data-dimension": d.key },
        node("figcaption", {}, node("span", { class: "hist-group", text: d.group_label }), node("span", { class: "hist-name", text: d.name, title: d.name }), node("span", { class: "hist-meta", text: meta.join(" · ") })),
        chart,
      );
      return [card, chart, e];
    });
    grid.replaceChildren(...cards.map(([card]) => card));
    cards.forEach(([, chart, e], i) => {
      P.histogram(chart, {
        counts: e.counts,
        mean: e.mean,
        height: 112,
        classOf: (b) => `lvl-fill-${LEVELS[levelOf((b + 0.5) / h.bins)].number}`,
        label: `Histogram of the consensus ${DIMS[i].name}`,
      });
    });
    $("hist-sub").textContent = `Consensus score per dimension over ${fmt(h.n_images)} labelled images (a reviewer's final score where set); ${h.bins} bins on [0, 1], coloured by verbal level, the line is the mean`;
  }

  async function loadHistograms() {
    try {
      state.histograms = await api("GET", `${cfg.urls.histograms}?bins=${state.bins}`);
    } catch (err) {
      empty($("histograms"), `Could not load the histograms: ${err.message}`);
      return;
    }
    for (const b of document.querySelectorAll("#bins-picker .seg-btn")) b.setAttribute("aria-pressed", String(Number(b.dataset.bins) === state.bins));
    drawHistograms();
  }

  for (const b of document.querySelectorAll("#bins-picker .seg-btn")) {
    b.addEventListener("click", () => {
      state.bins = Number(b.dataset.bins);
      loadHistograms();
    });
  }

  // --- raters: map and table ------------------------------------------------------------------

  const STATUS_ORDER = ["certified", "candidate", "flagged", "paused", "revoked"];

  function drawMap() {
    const c = $("chart-map");
    const raters = state.raters;
    if (!raters) return;
    const pts = raters.filter((r) => r.corr_with_others !== null && r.bias !== null);
    const present = STATUS_ORDER.filter((s) => raters.some((r) => r.status === s));
    $("map-legend").replaceChildren(
      ...present.map((s) => node("li", {}, node("span", { class: `swatch dot-swatch status-${s}` }), s)),
      node("li", {}, node("span", { class: "swatch dot-swatch is-excluded" }), "screened out"),
    );
    if (!pts.length) return empty(c, "No rater figures yet: they need raters who share images, and a refresh.");
    const maxBias = Math.max(0.2, ...pts.map((r) => Math.abs(r.bias)));
    const yMax = Math.ceil(maxBias * 10 + 0.5) / 10;
    const xMin = Math.min(0, Math.floor(Math.min(...pts.map((r) => r.corr_with_others)) * 5) / 5);
    const refs = { y: [0], x: [] };
    if (cfg.project.screening === "correlation") refs.x.push(cfg.project.screening_min_corr);
    P.scatter(c, {
      points: pts.map((r) => ({
        x: r.corr_with_others,
        y: r.bias,
        label: r.username,
        cls: `status-${r.status}${r.excluded ? " is-excluded" : ""}`,
        tip: `${r.username} (${r.status}${r.excluded ? ", screened out" : ""}): corr ${num(r.corr_with_others)}, bias ${signed(r.bias)}`,
      })),
      xDomain: [xMin, 1],
      yDomain: [-yMax, yMax],
      xLabel: "correlation with the mean of the others",
      yLabel: "bias",
      refs,
      height: 340,
      label: "Rater map: correlation with the others against bias",
    });
  }

  function statusBadge(r) {
    const b = node("span", { class: `status status-${r.status}`, text: r.status });
    if (r.status_reason) b.title = r.status_reason;
    return b;
  }

  function metricCell(text, bar, title) {
    const td = node("td", { class: "metric" }, node("span", { class: "metric-value", text }), bar);
    if (title) td.title = title;
    return td;
  }

  function raterRow(r) {
    const p = cfg.project;
    const goldBad = r.gold_mae !== null && r.gold_n >= p.gold_min_n && r.gold_mae > p.gold_max_mae;
    const corrBad = r.corr_with_others !== null && cfg.project.screening === "correlation" && r.corr_with_others < p.screening_min_corr;
    const cells = [
      node("th", { scope: "row", class: "rater-name" }, node("span", { text: r.username })),
      node("td", {}, statusBadge(r), r.status_reason ? node("div", { class: "status-reason", text: r.status_reason, title: r.status_reason }) : null),
      node("td", { class: "num", text: fmt(r.n_ratings) }),
      node("td", { class: "num", text: fmt(r.gold_n) }),
      metricCell(num(r.gold_mae, 3), P.cellBar(r.gold_mae, { lo: 0, hi: Math.max(0.5, p.gold_max_mae * 2), threshold: p.gold_max_mae, cls: goldBad ? "is-bad" : "" }), `Mean absolute error on gold; flagged above ${p.gold_max_mae} after ${p.gold_min_n} gold items`),
      metricCell(signed(r.bias), P.cellBar(r.bias, { lo: -0.3, hi: 0.3, diverging: true, cls: r.bias !== null && Math.abs(r.bias) > 0.1 ? "is-warn" : "" }), "Mean offset from the consensus (positive: rates higher)"),
      node("td", { class: "num", text: num(r.spread, 3), title: "The rater's own standard deviation (for z-scores)" }),
      metricCell(num(r.corr_with_others), P.cellBar(r.corr_with_others, { lo: -0.2, hi: 1, threshold: cfg.project.screening === "correlation" ? p.screening_min_corr : null, cls: corrBad ? "is-bad" : "" }), "Pearson correlation with the mean of the other raters of the same images"),
      consensusCell(r),
    ];
    if (cfg.can_manage) {
      const actions = (ACTIONS[r.status] || []).map(([label, to, needsReason]) => {
        const b = node("button", { type: "button", class: `btn btn-sm ${to === "revoked" ? "btn-danger-quiet" : ""}`, "data-username": r.username, "data-status": to, text: label });
        b.addEventListener("click", () => openStatusDialog(r, label, to, needsReason));
        return b;
      });
      for (const [label, decision, needsReason] of exclusionActions(r)) {
        const b = node("button", { type: "button", class: `btn btn-sm ${decision === "exclude" ? "btn-danger-quiet" : ""}`, "data-username": r.username, "data-exclusion": decision, text: label });
        b.addEventListener("click", () => openExclusionDialog(r, label, decision, needsReason));
        actions.push(b);
      }
      cells.push(node("td", { class: "actions-col" }, node("div", { class: "row-actions" }, ...actions)));
    }
    const tr = node("tr", { "data-username": r.username, class: r.excluded ? "is-excluded" : "" }, ...cells);
    return tr;
  }

  // The consensus column: included or left out, by whom and why (screening's finding or the
  // manager's reason), and what screening saw for an included rater.
  function consensusCell(r) {
    const by = r.exclusion_source === "manager" ? "by a manager" : "by screening";
    let badge;
    if (r.excluded) badge = node("span", { class: "status status-revoked exclusion", text: r.exclusion_source === "manager" ? "excluded" : "screened out", title: `Ratings kept, left out of the consensus ${by}` });
    else if (r.exclusion_override === "include") badge = node("span", { class: "status status-certified exclusion", text: "included", title: "Included by a manager, whatever screening finds" });
    else badge = node("span", { class: "muted exclusion", text: r.n_ratings ? "included" : "–" });
    const why = r.excluded ? `${r.exclusion_source === "manager" ? "Manager" : "Screening"}: ${r.exclusion_reason}` : r.exclusion_override === "include" ? `Manager's decision. Screening: ${r.screening_note}` : r.screening_note;
    return node("td", { class: "consensus-col" }, badge, why ? node("div", { class: "status-reason exclusion-reason", text: why, title: why }) : null);
  }

  // [label, decision, needs a reason]: a manager's decision wins until undone ("auto").
  function exclusionActions(r) {
    if (!r.n_ratings) return [];
    const out = r.excluded ? [["Include", "include", false]] : [["Exclude", "exclude", true]];
    if (r.exclusion_override) out.push(["Undo", "auto", false]);
    return out;
  }

  function renderRaters() {
    const body = $("rater-table").tBodies[0];
    const raters = state.raters;
    if (!raters.length) {
      body.replaceChildren(node("tr", {}, node("td", { colspan: "10", class: "muted", text: "This project has no raters." })));
    } else {
      body.replaceChildren(...raters.map(raterRow));
    }
    const byStatus = STATUS_ORDER.map((s) => [s, raters.filter((r) => r.status === s).length]).filter(([, n]) => n);
    $("raters-sub").textContent = `${raters.length} rater${raters.length === 1 ? "" : "s"}: ${byStatus.map(([s, n]) => `${n} ${s}`).join(", ") || "none"}. Gold MAE flags above ${cfg.project.gold_max_mae}; screening: ${cfg.project.screening}${cfg.project.screening === "correlation" ? ` (corr. below ${cfg.project.screening_min_corr})` : ""}.`;
    drawMap();
    renderKpis();
  }

  async function loadRaters() {
    try {
      state.raters = await api("GET", cfg.urls.raters);
    } catch (err) {
      $("rater-table").tBodies[0].replaceChildren(node("tr", {}, node("td", { colspan: "10", class: "muted", text: `Could not load the raters: ${err.message}` })));
      return;
    }
    renderRaters();
  }

  // --- certify, revoke, pause, resume ---------------------------------------------------------

  const dlg = $("status-dialog");

  /** The one dialog for a rater's status and their consensus exclusion: `state.dialog`
   * (what the confirm sends), its text, whether a reason is asked for, the confirm's look. */
  function openRaterDialog(dialog, { text, reasonLabel, danger }) {
    state.dialog = dialog;
    $("status-title").textContent = `${dialog.label} ${dialog.username}`;
    $("status-text").textContent = text;
    $("status-reason-label").textContent = dialog.needsReason ? reasonLabel : "Reason (optional)";
    $("status-reason").value = "";
    $("status-error").hidden = true;
    const confirm = $("status-confirm");
    confirm.textContent = dialog.label;
    confirm.className = `btn ${danger ? "btn-danger" : "btn-primary"}`;
    dlg.showModal();
    $("status-reason").focus();
  }

  function openStatusDialog(r, label, to, needsReason) {
    const what = {
      certified: r.status === "paused" ? "They get production tasks again." : "They get production tasks.",
      paused: "They get no new tasks until resumed. Their ratings are kept.",
      revoked: "Their certification ends: no new production tasks. Their ratings are kept.",
    }[to];
    openRaterDialog(
      { username: r.username, status: to, needsReason, label },
      {
        text: `Now ${r.status}${r.status_reason ? ` (${r.status_reason})` : ""}. ${what}`,
        reasonLabel: "Reason (required)",
        danger: to === "revoked",
      },
    );
  }

  function openExclusionDialog(r, label, decision, needsReason) {
    const what = {
      include: "Their ratings count in the consensus again, whatever screening finds, until you undo this.",
      exclude: "Their ratings are kept but leave the consensus, whatever screening finds, until you undo this.",
      auto: "Screening decides again from the next refresh on.",
    }[decision];
    const now = r.excluded ? `Now left out of the consensus (${r.exclusion_reason}).` : "Now included in the consensus.";
    openRaterDialog(
      { username: r.username, exclusion: decision, needsReason, label },
      {
        text: `${now} ${what}`,
        reasonLabel: "Reason (required, shown with the exclusion)",
        danger: decision === "exclude",
      },
    );
  }

  const EXCLUSION_DONE = { include: "is included in the consensus", exclude: "is left out of the consensus", auto: "is left to screening again" };

  async function confirmStatus() {
    const d = state.dialog;
    if (!d) return;
    const reason = $("status-reason").value.trim();
    if (d.needsReason && !reason) {
      $("status-error").hidden = false;
      $("status-error").textContent = "Give a reason: it goes into the audit trail.";
      $("status-reason").focus();
      return;
    }
    const confirm = $("status-confirm");
    confirm.disabled = true;
    try {
      const who = encodeURIComponent(d.username);
      const entry = d.exclusion
        ? await api("POST", cfg.urls.rater_exclusion.replace("{username}", who), { decision: d.exclusion, reason })
        : await api("POST", cfg.urls.rater_status.replace("{username}", who), { status: d.status, reason });
      if (d.exclusion) {
        // The consensus of their images was recomputed: every rater's figures may move.
        state.raters = await api("GET", cfg.urls.raters);
        state.agreement = await api("GET", cfg.urls.agreement);
        renderMeta();
      } else {
        state.raters = state.raters.map((r) => (r.username === entry.username ? entry : r));
      }
      dlg.close();
      renderRaters();
      showMessage(d.exclusion ? `${entry.username} ${EXCLUSION_DONE[d.exclusion]}.` : `${entry.username} is now ${VERB[d.status] || d.status}.`, "ok");
      const row = document.querySelector(`#rater-table tr[data-username="${CSS.escape(entry.username)}"]`);
      if (row) row.classList.add("is-changed");
    } catch (err) {
      $("status-error").hidden = false;
      $("status-error").textContent = err.message;
    } finally {
      confirm.disabled = false;
    }
  }

  if (dlg) {
    $("status-form").addEventListener("submit", (e) => {
      e.preventDefault();
      confirmStatus();
    });
    $("status-cancel").addEventListener("click", () => dlg.close());
    closeOnBackdrop(dlg);
    $("status-reason").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        confirmStatus();
      }
    });
  }

  // --- refresh --------------------------------------------------------------------------------

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function refresh() {
    const b = $("btn-refresh");
    const before = state.agreement ? state.agreement.computed_at : null;
    b.disabled = true;
    b.textContent = "Refreshing…";
    clearMessage();
    try {
      await api("POST", cfg.urls.refresh);
    } catch (err) {
      showMessage(`Could not start the refresh: ${err.message}`);
      b.disabled = false;
      b.textContent = "Refresh statistics";
      return;
    }
    // The work runs in a Celery task: wait (a while) for new figures, then reload the page.
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      try {
        const a = await api("GET", cfg.urls.agreement);
        if (a.computed_at !== before) {
          location.reload();
          return;
        }
      } catch (_) {
        // keep waiting
      }
      await sleep(1000);
    }
    showMessage("The refresh is queued but has not finished yet (is a Celery worker running?). Reload the page later.", "warn");
    b.disabled = false;
    b.textContent = "Refresh statistics";
  }

  if ($("btn-refresh")) $("btn-refresh").addEventListener("click", refresh);

  // --- resize and start -------------------------------------------------------------------------

  let lastWidth = 0;
  let resizeTimer = 0;
  new ResizeObserver(() => {
    const w = document.querySelector(".dash-grid").clientWidth;
    if (Math.abs(w - lastWidth) < 8) return;
    lastWidth = w;
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      drawProgress();
      drawThroughput();
      drawAgreement();
      drawHistograms();
      drawMap();
    }, 120);
  }).observe(document.querySelector(".dash-grid"));

  async function start() {
    lastWidth = document.querySelector(".dash-grid").clientWidth;
    await Promise.all([loadAgreement(), loadTimeline(), loadHistograms(), loadRaters()]);
    document.body.dataset.ready = "true";
  }

  start();
})();
