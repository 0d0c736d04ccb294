/* Curation: the sources list and the import form (POST /api/sources/ with background: the
 * import runs on a worker and its progress is polled from /api/source-imports/{id}/). */
(() => {
  "use strict";

  const { $, api, listAll, node, fmt, url } = window.HB;
  const { cfg, showMessage, fmtTime, statusPill, jsonForm, intField } = window.HBCur;
  const KINDS = Object.fromEntries(cfg.kinds.map((k) => [k.kind, k]));

  function row(s) {
    const link = node("a", { href: url(cfg.urls.source_page, s.id), class: "row-title" }, s.name);
    const latest = s.latest_job
      ? node("span", { class: "latest-job" }, statusPill(s.latest_job.status), node("a", { href: url(cfg.urls.job_page, s.latest_job.id) }, ` job ${s.latest_job.id}`), s.jobs > 1 ? node("span", { class: "muted" }, ` of ${s.jobs}`) : null)
      : node("span", { class: "muted" }, "none yet");
    return node(
      "tr",
      { dataset: { source: s.id } },
      node("th", { scope: "row" }, link, node("div", { class: "row-sub mono", title: s.location }, s.location || "")),
      node("td", {}, node("span", { class: "badge" }, (KINDS[s.kind] && KINDS[s.kind].title) || s.kind)),
      node("td", { class: "num" }, fmt(s.items)),
      node("td", { class: "num" }, fmt(s.scored), s.scale ? node("div", { class: "row-sub" }, `scale ${s.scale[0]}–${s.scale[1]}`) : null),
      node("td", { class: "num" }, fmt(s.linked)),
      node("td", {}, latest),
      node("td", { class: "nowrap" }, fmtTime(s.created_at, { withTime: false })),
      node("td", {}, cfg.can_write && !s.in_use ? deleteButton(s) : null),
    );
  }

  /** Delete a source nothing uses yet (no image in the pool, no job), after a confirm; the
   * server refuses (409) one whose images are in the pool after all, and says why. */
  function deleteButton(s) {
    const button = node("button", { type: "button", class: "btn btn-quiet btn-sm", dataset: { role: "delete" } }, "Delete");
    button.addEventListener("click", async () => {
      if (!window.confirm(`Delete the source “${s.name}” and its ${fmt(s.items)} record${s.items === 1 ? "" : "s"}? Its imports stay listed.`)) return;
      button.disabled = true;
      try {
        await api("DELETE", url(cfg.urls.source, s.id));
        showMessage(`Deleted the source “${s.name}”.`, "ok");
        await load();
      } catch (err) {
        button.disabled = false;
        showMessage(err.message);
      }
    });
    return button;
  }

  async function load() {
    const body = $("sources-table").tBodies[0];
    try {
      const all = await listAll(cfg.urls.sources);
      $("sources-sub").textContent = all.length
        ? `${fmt(all.length)} source${all.length === 1 ? "" : "s"}, ${fmt(all.reduce((a, s) => a + s.items, 0))} records`
        : "No sources yet.";
      body.replaceChildren(
        ...(all.length
          ? all.map(row)
          : [node("tr", {}, node("td", { colspan: 8, class: "empty-cell" }, cfg.can_write ? "Import a public dataset or a manifest with the form." : "Nothing has been imported yet."))]),
      );
    } catch (err) {
      showMessage(err.message);
    }
  }

  function kindHints() {
    const k = KINDS[$("imp-kind").value];
    $("imp-kind-hint").textContent = `Path: ${k.layout}.`;
    $("imp-scale-hint").textContent = k.scale
      ? `Leave empty for ${k.title}'s own scale, ${k.scale[0]}–${k.scale[1]}.`
      : "Leave empty to use each line's score_min / score_max (or no scores).";
  }

  function importForm() {
    const form = $("import-form");
    if (!form) return;
    $("imp-path-hint").textContent = cfg.import_roots.length
      ? `Inside the import roots: ${cfg.import_roots.join(", ")}`
      : "No import roots are configured (IMPORT_ROOTS): every path will be refused.";
    $("imp-kind").addEventListener("change", kindHints);
    kindHints();
    const sample = $("use-sample");
    if (sample && cfg.sample) {
      sample.addEventListener("click", () => {
        $("imp-kind").value = cfg.sample.kind;
        $("imp-path").value = cfg.sample.path;
        $("imp-name").value = cfg.sample.name;
        [$("imp-min").value, $("imp-max").value] = cfg.sample.scale;
        kindHints();
        $("import-submit").focus();
      });
    }
    $("import-submit").dataset.busy = "Importing…";
    jsonForm(form, {
      errorEl: $("import-error"),
      submit: $("import-submit"),
      body: () => {
        const out = { kind: $("imp-kind").value, path: $("imp-path").value.trim(), name: $("imp-name").value.trim() };
        if (!out.path) throw new Error("Give the path of the label file or dataset folder.");
        if (!out.name) throw new Error("Give the source a name.");
        const lo = $("imp-min").value.trim();
        const hi = $("imp-max").value.trim();
        if (lo !== "" || hi !== "") {
          if (lo === "" || hi === "") throw new Error("Give both ends of the score scale, or neither.");
          out.scale = [Number(lo), Number(hi)];
        }
        const priority = intField($("imp-priority"), "Priority");
        if (priority !== null) out.priority = priority;
        return out;
      },
      post: (payload) => api("POST", cfg.urls.sources, { ...payload, background: true }),
      done: async (job) => {
        job = await followImport(job);
        if (job.status !== "done") {
          $("import-result").replaceChildren();
          throw new Error(job.error || `The import ended ${job.status}.`);
        }
        const s = await api("GET", url(cfg.urls.source, job.source));
        const data = { ...job, source: s };
        const box = node(
          "div",
          { class: `notice ${data.refused ? "notice-warn" : "notice-ok"} result-box`, role: "status" },
          node("strong", {}, `Imported “${s.name}”`),
          `: ${fmt(data.created)} new record${data.created === 1 ? "" : "s"}, ${fmt(data.updated)} updated, ${fmt(data.refused)} refused. `,
          node("a", { href: url(cfg.urls.source_page, s.id) }, "Open the source →"),
          data.errors.length ? node("ul", { class: "error-list" }, data.errors.slice(0, 8).map((e) => node("li", { class: "mono" }, e))) : null,
          data.refused > 8 ? node("span", { class: "muted small" }, `and ${fmt(data.refused - 8)} more`) : null,
        );
        $("import-result").replaceChildren(box);
        form.reset();
        kindHints();
        await load();
        const tr = document.querySelector(`#sources-table tr[data-source="${s.id}"]`);
        if (tr) tr.classList.add("is-new");
      },
    });
    // Disabled in the HTML until now, so a click before this script ran cannot be lost.
    if (sample && cfg.sample) sample.disabled = false;
  }

  const IMPORT_POLL_MS = 700;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Poll an import until it is over, showing its progress and a Cancel button (curators);
   * the finished import. A cancelled one keeps the records written so far. */
  async function followImport(job) {
    const box = $("import-result");
    const cancel = node("button", { type: "button", class: "btn btn-quiet btn-sm", id: "import-cancel" }, "Cancel import");
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try {
        await api("POST", url(cfg.urls.source_import_cancel, job.id));
      } catch (err) {
        cancel.disabled = false;
        box.append(node("p", { class: "error small" }, err.message));
      }
    });
    for (;;) {
      const p = job.progress || {};
      const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
      const text = p.total
        ? `${fmt(p.done)} of ${fmt(p.total)} records`
        : job.status === "queued" ? "waiting for a worker…" : "reading the label file…";
      box.replaceChildren(
        node(
          "div",
          { class: "notice result-box", role: "status" },
          node("strong", {}, `Importing “${job.name}”`),
          `: ${text}`,
          node("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct }, node("div", { class: "progress-bar", style: `width: ${pct}%` })),
          cfg.can_write ? cancel : null,
        ),
      );
      if (!["queued", "running"].includes(job.status)) return job;
      await sleep(IMPORT_POLL_MS);
      job = await api("GET", url(cfg.urls.source_import, job.id));
    }
  }

  importForm();
  load();
})();
