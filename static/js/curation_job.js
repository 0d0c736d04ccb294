/* Curation: one filter job, live.
 *
 * While the job is queued or running the page polls GET /api/jobs/{id}/ every second and
 * shows the records decided, the progress of each stage, the rate and the time left. Once it
 * has ended: the summary (counts per decision and per reason, drawn with static/js/plot.js),
 * the contact sheets per group (PNG from /contact-sheet/), the decisions with override
 * buttons (a reason is required) and the form that turns the accepted images into a project.
 */
(() => {
  "use strict";

  const { $, api, node, fmt, url } = window.HB;
  const { cfg, showMessage, hideMessage, pct, fmtTime, fmtDuration, settingsLine, projectForm } = window.HBCur;
  const P = window.HBPlot;
  const LIVE = new Set(["queued", "running"]);
  const STAGE_INFO = {
    validate: ["Validate", "decodes fully, size, aspect ratio"],
    hash: ["Hash", "sha256, pHash and dHash"],
    dedup: ["Near-duplicates", "against the whole pool"],
    faces: ["Faces", "offline face detector"],
    clip: ["CLIP", "person and content screens"],
  };
  const DECISIONS = ["accepted", "rejected", "error"];

  const state = {
    job: null,
    resultsFor: null, // the last_change the results were drawn for
    samples: [], // [{t, decided}] for the rate
    sheet: { group: null, page: 1 },
    filter: { decision: "", reason: "" },
    decisionsUrl: null,
    decisionsAt: 0,
    overriding: null,
  };

  // --- header, progress, key figures --------------------------------------------------------

  function renderHeader(job) {
    const pill = $("job-status");
    pill.textContent = job.status;
    pill.dataset.status = job.status;
    const bits = [
      "on ",
      node("a", { href: cfg.urls.source_page }, job.source_name),
      job.created_by ? ` · started by ${job.created_by}` : "",
      ` · ${fmtTime(job.started_at || job.created_at)}`,
    ];
    if (job.finished_at && job.started_at) {
      bits.push(` · ${job.status} after ${fmtDuration((new Date(job.finished_at) - new Date(job.started_at)) / 1000)}`);
    }
    bits.push(node("span", { class: "settings-line" }, settingsLine(job.config)));
    $("job-meta").replaceChildren(...bits);
    const cancel = $("btn-cancel");
    if (cancel) cancel.hidden = !LIVE.has(job.status);
    if (job.status === "failed" && job.error) showMessage(`The job failed: ${job.error}`);
  }

  function rate(job) {
    const now = performance.now() / 1000;
    state.samples.push({ t: now, decided: job.progress.decided });
    state.samples = state.samples.filter((s) => now - s.t <= 15);
    const first = state.samples[0];
    const dt = now - first.t;
    return dt >= 1.5 ? (job.progress.decided - first.decided) / dt : null;
  }

  function renderProgress(job) {
    const p = job.progress;
    const percent = pct(p.decided, p.total);
    const bar = $("progress-overall");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.querySelector(".progress-bar").style.width = `${percent}%`;
    bar.classList.toggle("is-live", LIVE.has(job.status));
    bar.dataset.status = job.status;
    $("progress-percent").textContent = `${percent}%`;
    let sub = `${fmt(p.decided)} of ${fmt(p.total)} records decided`;
    if (job.status === "queued") sub = `Queued: waiting for a worker · ${fmt(p.total)} records`;
    if (job.status === "running") {
      const r = rate(job);
      if (r !== null && r > 0) sub += ` · ${r >= 10 ? Math.round(r) : r.toFixed(1)} images/s · about ${fmtDuration((p.total - p.decided) / r)} left`;
      if (p.chunks.total) sub += ` · chunk ${fmt(p.chunks.done)} of ${fmt(p.chunks.total)} done`;
    }
    if (job.status === "cancelled") sub = `Cancelled with ${fmt(p.decided)} of ${fmt(p.total)} records decided`;
    $("progress-sub").textContent = sub;

    const list = $("stages");
    const items = p.stages.map((s, i) => {
      const [label, what] = STAGE_INFO[s.name] || [s.name, ""];
      const width = s.enabled ? pct(s.done, p.total) : 0;
      let count;
      if (!s.enabled) count = "off";
      else if (!LIVE.has(job.status) && i > 0 && s.done < p.total) count = `${fmt(s.done)} of ${fmt(p.total)} · ${fmt(p.total - s.done)} stopped at validation`;
      else count = `${fmt(s.done)} / ${fmt(p.total)}`;
      const done = s.enabled && (s.done >= p.total || (!LIVE.has(job.status) && job.status === "done"));
      return node(
        "li",
        { class: `job-stage${s.enabled ? "" : " is-off"}${done ? " is-done" : ""}`, dataset: { stage: s.name } },
        node("span", { class: "stage-index", "aria-hidden": "true" }, done ? "✓" : String(i + 1)),
        node("span", { class: "stage-name" }, label, node("span", { class: "stage-what" }, what)),
        node("div", { class: "progress", role: "progressbar", "aria-label": `${label} stage`, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": width }, node("span", { class: "progress-bar", style: `width: ${width}%` })),
        node("span", { class: "stage-count" }, count),
      );
    });
    list.replaceChildren(...items);
  }

  function renderKpis(job) {
    const c = job.counts;
    const decided = job.progress.decided;
    for (const k of DECISIONS) $(`kpi-${k}`).textContent = fmt(c[k]);
    $("kpi-accepted-sub").textContent = decided ? `${pct(c.accepted, decided)}% of those decided` : "\u00a0";
    $("kpi-rejected-sub").textContent = decided ? `${pct(c.rejected, decided)}% of those decided` : "\u00a0";
    $("kpi-overridden").textContent = fmt(job.overridden);
  }

  // --- summary plots ------------------------------------------------------------------------

  function renderSummary(job) {
    // While the job runs the decisions are drawn from the live counts; the reasons (one pass
    // over every decision) once it has ended.
    const s = job.summary || { counts: job.counts, reasons: null };
    const decided = DECISIONS.reduce((a, k) => a + s.counts[k], 0);
    if (!decided) {
      $("chart-decisions").replaceChildren(node("p", { class: "chart-empty" }, "No record decided yet."));
      $("chart-reasons").replaceChildren(node("p", { class: "chart-empty" }, "–"));
      return;
    }
    const share = (n) => (decided ? ` (${pct(n, decided)}%)` : "");
    P.hbars($("chart-decisions"), {
      label: "Final decisions",
      labelWidth: 96,
      rowHeight: 30,
      series: DECISIONS.map((k) => ({ label: k, cls: `dec-${k}` })),
      rows: DECISIONS.map((k, i) => ({ label: k[0].toUpperCase() + k.slice(1), values: DECISIONS.map((_, j) => (i === j ? s.counts[k] : 0)), note: `${fmt(s.counts[k])}${share(s.counts[k])}` })),
    });
    if (!s.reasons) {
      $("chart-reasons").replaceChildren(node("p", { class: "chart-empty" }, "Counted when the job has finished."));
      return;
    }
    const reasons = Object.entries(s.reasons).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    if (!reasons.length) {
      $("chart-reasons").replaceChildren(node("p", { class: "chart-empty" }, "Nothing was rejected."));
    } else {
      P.hbars($("chart-reasons"), {
        label: "Reasons for rejection",
        labelWidth: 136,
        rowHeight: 26,
        xLabel: "images",
        series: [{ label: "images", cls: "dec-reason" }],
        rows: reasons.map(([r, n]) => ({ label: r, values: [n], note: fmt(n) })),
      });
    }
    // The reason filter of the decisions table.
    const select = $("reason-filter");
    const keep = select.value;
    select.replaceChildren(node("option", { value: "" }, "Any reason"), ...reasons.map(([r, n]) => node("option", { value: r }, `${r} (${fmt(n)})`)));
    select.value = reasons.some(([r]) => r === keep) ? keep : "";
  }

  // --- contact sheets -----------------------------------------------------------------------

  function renderGroups(job) {
    const groups = job.groups || [];
    const box = $("sheet-groups");
    if (!groups.length) {
      box.replaceChildren();
      return;
    }
    if (!groups.some((g) => g.group === state.sheet.group)) {
      const firstNonEmpty = groups.find((g) => g.count > 0);
      state.sheet = { group: (firstNonEmpty || groups[0]).group, page: 1 };
    }
    box.replaceChildren(
      ...groups.map((g) =>
        node(
          "button",
          {
            type: "button",
            class: `seg-btn group-btn group-${g.kind}`,
            "aria-pressed": String(g.group === state.sheet.group),
            dataset: { group: g.group },
            onclick: () => {
              state.sheet = { group: g.group, page: 1 };
              renderGroups(state.job);
              loadSheet();
            },
          },
          g.group === "accepted" ? "Accepted" : g.group,
          node("span", { class: "seg-count" }, fmt(g.count)),
        ),
      ),
    );
  }

  function loadSheet() {
    const job = state.job;
    const group = (job.groups || []).find((g) => g.group === state.sheet.group);
    const fig = $("sheet");
    if (!group) return;
    const pages = Math.max(1, Math.ceil(group.count / cfg.sheet_limit));
    state.sheet.page = Math.min(state.sheet.page, pages);
    $("sheet-pager").hidden = pages <= 1;
    $("sheet-page").textContent = `${state.sheet.page} / ${pages}`;
    $("sheet-prev").disabled = state.sheet.page <= 1;
    $("sheet-next").disabled = state.sheet.page >= pages;
    const src = `${cfg.urls.sheet}?group=${encodeURIComponent(group.group)}&page=${state.sheet.page}&v=${encodeURIComponent(job.last_change || "0")}`;
    const what = group.group === "accepted" ? "accepted images" : group.group === "error" ? "images that broke a stage" : `images rejected for ${group.group}`;
    $("sheet-sub").textContent = `${fmt(group.count)} ${what}; ${cfg.sheet_limit} to a sheet.`;
    const img = node("img", { class: "sheet-img", alt: `Contact sheet: ${what}, page ${state.sheet.page} of ${pages}`, "data-group": group.group });
    const loading = node("p", { class: "chart-empty sheet-loading" }, "Drawing the contact sheet…");
    img.addEventListener("load", () => {
      loading.remove();
      fig.classList.remove("is-loading");
    });
    img.addEventListener("error", () => {
      loading.textContent = "The contact sheet could not be drawn.";
      fig.classList.remove("is-loading");
    });
    fig.classList.add("is-loading");
    fig.replaceChildren(loading, node("a", { href: src, target: "_blank", rel: "noopener", title: "Open the sheet at full size" }, img));
    img.src = src;
  }

  // --- decisions ------------------------------------------------------------------------------

  function decisionsUrl(page) {
    const q = new URLSearchParams();
    if (state.filter.decision) q.set("decision", state.filter.decision);
    if (state.filter.reason) q.set("reason", state.filter.reason);
    if (page) q.set("page", page);
    const s = q.toString();
    return cfg.urls.decisions + (s ? `?${s}` : "");
  }

  function measurementText(d) {
    const m = d.measurements || {};
    if (d.decision === "error" || (m.error && !m.width)) return String(m.error || "").split("\n")[0];
    const bits = [];
    if (m.width) bits.push(`${m.width}×${m.height}${m.format ? " " + m.format : ""}`);
    if ("faces" in m) bits.push(`${m.faces} face${m.faces === 1 ? "" : "s"}${m.faces ? ` (${(100 * (m.largest_face_share || 0)).toFixed(1)}% of the image)` : ""}`);
    if ("clip_person" in m) bits.push(`person ${Number(m.clip_person).toFixed(2)}`);
    if ("clip_inappropriate" in m) bits.push(`inappropriate ${Number(m.clip_inappropriate).toFixed(2)}`);
    const c = m.cluster_change;
    if (c) bits.push(`cluster keeps image ${c.new_representative} since ${fmtTime(c.at)} (was ${(c.old_representatives || []).join(", ")}; caused by image ${c.caused_by})`);
    return bits.join(" · ");
  }

  function decisionRow(d) {
    const thumb = d.image
      ? node("a", { href: d.image.url, target: "_blank", rel: "noopener", class: "thumb", title: "Open the image" }, node("img", { src: d.image.url, alt: "", loading: "lazy", decoding: "async" }))
      : node("span", { class: "thumb thumb-none", title: "Not stored: the file could not be read as an image" }, "no file");
    const decisionCell = node("td", {}, node("span", { class: `decision-pill decision-${d.final}` }, d.final));
    if (d.override) {
      decisionCell.appendChild(
        node(
          "div",
          { class: "override-note" },
          node("span", {}, `overridden · job said ${d.decision}`),
          node("q", { title: d.override_reason }, d.override_reason),
          node("span", { class: "muted" }, `${d.overridden_by || "?"}, ${fmtTime(d.overridden_at)}`),
        ),
      );
    }
    const cells = [
      node("td", { class: "thumb-col" }, thumb),
      node("th", { scope: "row", class: "record-cell" }, node("span", { class: "mono record-path", title: d.item.path }, d.item.path), d.image && d.image.cluster ? node("div", { class: "row-sub" }, `duplicate cluster ${d.image.cluster}`) : null),
      node("td", { class: "num" }, d.item.score === null ? node("span", { class: "muted" }, "–") : d.item.score.toFixed(2), d.item.raw_score !== null ? node("div", { class: "row-sub" }, `raw ${d.item.raw_score}`) : null),
      decisionCell,
      node("td", {}, d.reasons.length ? node("span", { class: "chips" }, d.reasons.map((r) => node("span", { class: "chip-reason" }, r))) : node("span", { class: "muted" }, "–")),
      node("td", { class: "measure-cell" }, measurementText(d)),
    ];
    if (cfg.can_write) {
      const to = d.final === "accepted" ? "rejected" : "accepted";
      cells.push(
        node(
          "td",
          { class: "actions-col" },
          node("button", { type: "button", class: `btn btn-sm ${to === "accepted" ? "btn-accept" : "btn-reject"}`, dataset: { decision: d.id, to }, onclick: () => openOverride(d, to) }, to === "accepted" ? "Accept…" : "Reject…"),
        ),
      );
    }
    return node("tr", { dataset: { decision: d.id, final: d.final } }, cells);
  }

  async function loadDecisions(target) {
    state.decisionsUrl = target || state.decisionsUrl || decisionsUrl();
    state.decisionsAt = performance.now();
    const body = $("decisions-table").tBodies[0];
    try {
      const page = await api("GET", state.decisionsUrl);
      const cols = cfg.can_write ? 7 : 6;
      body.replaceChildren(...(page.results.length ? page.results.map(decisionRow) : [node("tr", {}, node("td", { colspan: cols, class: "empty-cell" }, "No decisions match."))]));
      const pager = $("decisions-pager");
      pager.hidden = !page.next && !page.previous;
      $("decisions-prev").disabled = !page.previous;
      $("decisions-next").disabled = !page.next;
      $("decisions-prev").onclick = () => loadDecisions(page.previous);
      $("decisions-next").onclick = () => loadDecisions(page.next);
      const pageNo = Number(new URL(state.decisionsUrl, location.href).searchParams.get("page") || 1);
      const size = page.results.length;
      const first = size ? (pageNo - 1) * 50 + 1 : 0;
      $("decisions-page").textContent = `${fmt(first)}–${fmt(first + size - 1)} of ${fmt(page.count)}`;
      $("decisions-sub").textContent = `${fmt(page.count)} decision${page.count === 1 ? "" : "s"}${state.filter.decision ? ` finally ${state.filter.decision}` : ""}${state.filter.reason ? ` with reason ${state.filter.reason}` : ""}, in the label file's order.`;
    } catch (err) {
      showMessage(err.message);
    }
  }

  function filters() {
    $("decision-filter").addEventListener("click", (e) => {
      const btn = e.target.closest("button[data-decision]");
      if (!btn) return;
      state.filter.decision = btn.dataset.decision;
      for (const b of $("decision-filter").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === btn));
      loadDecisions(decisionsUrl());
    });
    $("reason-filter").addEventListener("change", (e) => {
      state.filter.reason = e.target.value;
      loadDecisions(decisionsUrl());
    });
    $("sheet-prev").addEventListener("click", () => {
      state.sheet.page -= 1;
      loadSheet();
    });
    $("sheet-next").addEventListener("click", () => {
      state.sheet.page += 1;
      loadSheet();
    });
  }

  // --- overrides --------------------------------------------------------------------------------

  function openOverride(d, to) {
    const dialog = $("override-dialog");
    state.overriding = { d, to };
    $("override-title").textContent = to === "accepted" ? "Accept this image" : "Reject this image";
    $("override-path").textContent = d.item.path;
    const why = d.reasons.length ? ` (${d.reasons.join(", ")})` : "";
    $("override-text").textContent = `The job decided ${d.decision}${why}. Your override counts from now on; the job's own decision and reasons stay on record.`;
    const img = $("override-img");
    img.hidden = !d.image;
    if (d.image) img.src = d.image.url;
    $("override-reason").value = "";
    $("override-error").hidden = true;
    const confirm = $("override-confirm");
    confirm.textContent = to === "accepted" ? "Accept image" : "Reject image";
    confirm.className = `btn ${to === "accepted" ? "btn-primary" : "btn-danger"}`;
    dialog.showModal();
    $("override-reason").focus();
  }

  function overrideDialog() {
    const dialog = $("override-dialog");
    if (!dialog) return;
    $("override-cancel").addEventListener("click", () => dialog.close());
    $("override-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const reason = $("override-reason").value.trim();
      if (!reason) {
        showMessage("Say why: the reason is kept with the override.", "error", $("override-error"));
        $("override-reason").focus();
        return;
      }
      const { d, to } = state.overriding;
      const btn = $("override-confirm");
      btn.disabled = true;
      try {
        const updated = await api("POST", url(cfg.urls.override, d.id), { decision: to, reason });
        dialog.close();
        const tr = document.querySelector(`#decisions-table tr[data-decision="${d.id}"]`);
        if (tr) {
          const fresh = decisionRow(updated);
          fresh.classList.add("is-changed");
          tr.replaceWith(fresh);
        }
        showMessage(`${updated.item.path} is now ${updated.final}.`, "ok");
        await refresh({ force: true });
      } catch (err) {
        showMessage(err.message, "error", $("override-error"));
      } finally {
        btn.disabled = false;
      }
    });
  }

  // --- the loop -------------------------------------------------------------------------------

  function renderResults(job) {
    renderSummary(job);
    renderGroups(job);
    loadSheet();
  }

  async function refresh({ force = false } = {}) {
    let job;
    try {
      job = await api("GET", cfg.urls.job);
    } catch (err) {
      showMessage(err.message);
      return null;
    }
    const before = state.job;
    state.job = job;
    renderHeader(job);
    renderProgress(job);
    renderKpis(job);
    document.body.dataset.jobStatus = job.status;
    if (LIVE.has(job.status)) {
      renderSummary(job);
      // New decisions arrive as the workers go: show them, at most every two seconds.
      if (!before || before.progress.decided !== job.progress.decided) {
        if (performance.now() - state.decisionsAt > 2000) loadDecisions(decisionsUrl());
      }
    } else if (force || state.resultsFor !== job.last_change) {
      state.resultsFor = job.last_change;
      renderResults(job);
      if (!before || LIVE.has(before.status)) loadDecisions(decisionsUrl());
    }
    return job;
  }

  async function poll() {
    const job = await refresh();
    if (!job || LIVE.has(job.status)) setTimeout(poll, 1000);
  }

  function cancelButton() {
    const btn = $("btn-cancel");
    if (!btn) return;
    btn.addEventListener("click", async () => {
      if (!window.confirm(`Cancel job ${cfg.job.id}? Decisions made so far are kept.`)) return;
      btn.disabled = true;
      try {
        await api("POST", cfg.urls.cancel);
        hideMessage();
        showMessage(`Job ${cfg.job.id} was cancelled.`, "warn");
        await refresh({ force: true });
      } catch (err) {
        showMessage(err.message);
      } finally {
        btn.disabled = false;
      }
    });
  }

  filters();
  overrideDialog();
  cancelButton();
  projectForm(cfg.urls.project);
  poll();
})();
