/* Curation: one source, its filter jobs, the start-job form and the rating-project form. */
(() => {
  "use strict";

  const { $, api, node, fmt, url } = window.HB;
  const { cfg, showMessage, pct, fmtTime, statusPill, settingsLine, jsonForm, intField, projectForm } = window.HBCur;
  const LIVE = new Set(["queued", "running"]);
  let timer = null;

  function jobRow(j) {
    const done = j.total ? pct(j.decided, j.total) : 0;
    return node(
      "tr",
      { dataset: { job: j.id } },
      node("th", { scope: "row" }, node("a", { href: url(cfg.urls.job_page, j.id), class: "row-title" }, `Job ${j.id}`), j.created_by ? node("div", { class: "row-sub" }, `by ${j.created_by}`) : null),
      node("td", {}, statusPill(j.status)),
      node(
        "td",
        { class: "progress-cell" },
        node("div", { class: "progress progress-sm", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": done, "aria-label": `Job ${j.id} progress` }, node("span", { class: "progress-bar", style: `width: ${done}%` })),
        node("span", { class: "row-sub" }, `${fmt(j.decided)} / ${fmt(j.total)}`),
      ),
      node("td", { class: "num" }, fmt(j.counts.accepted)),
      node("td", { class: "num" }, fmt(j.counts.rejected)),
      node("td", { class: "num" }, fmt(j.counts.error)),
      node("td", { class: "settings-cell" }, settingsLine(j.config)),
      node("td", { class: "nowrap" }, fmtTime(j.started_at || j.created_at)),
    );
  }

  function showTerms(source) {
    $("terms-licence").textContent = source.licence || "licence unknown";
    $("terms-consent").textContent = source.consent_basis ? source.consent_basis.replaceAll("_", " ") : "consent basis unknown";
    $("terms-allows").textContent = source.allows.length ? `allows ${source.allows.join(", ")}` : "allows no commercial use, redistribution or derivatives";
    $("terms-origin").textContent = source.origin || "";
  }

  function termsForm() {
    const form = $("terms-form");
    if (!form) return;
    jsonForm(form, {
      errorEl: $("terms-error"),
      submit: $("terms-submit"),
      body: () => ({
        origin: $("terms-origin-input").value.trim(),
        licence: $("terms-licence-input").value.trim(),
        consent_basis: $("terms-consent-input").value,
      }),
      post: (payload) => api("PATCH", cfg.urls.source, payload),
      done: (source) => {
        showTerms(source);
        $("terms-licence-input").value = source.licence;
      },
    });
  }

  async function load() {
    clearTimeout(timer);
    try {
      const [source, jobs] = await Promise.all([api("GET", cfg.urls.source), api("GET", cfg.urls.jobs)]);
      $("kpi-items").textContent = fmt(source.items);
      $("kpi-scored").textContent = fmt(source.scored);
      $("kpi-scale").textContent = source.scale ? `raw scale ${source.scale[0]}–${source.scale[1]}, normalised to [0, 1]` : "no score scale";
      $("kpi-linked").textContent = fmt(source.linked);
      $("kpi-jobs").textContent = fmt(source.jobs);
      $("kpi-latest").textContent = source.latest_job ? `latest: job ${source.latest_job.id}, ${source.latest_job.status}` : "none yet";
      showTerms(source);
      const body = $("jobs-table").tBodies[0];
      body.replaceChildren(
        ...(jobs.results.length
          ? jobs.results.map(jobRow)
          : [node("tr", {}, node("td", { colspan: 8, class: "empty-cell" }, cfg.can_write ? "No jobs yet: start one with the form." : "No jobs yet."))]),
      );
      // Keep the list live while a job runs.
      if (jobs.results.some((j) => LIVE.has(j.status))) timer = setTimeout(load, 2000);
    } catch (err) {
      showMessage(err.message);
    }
  }

  function jobForm() {
    const form = $("job-form");
    if (!form) return;
    $("job-submit").dataset.busy = "Starting…";
    jsonForm(form, {
      errorEl: $("job-error"),
      submit: $("job-submit"),
      body: () => {
        const config = {
          clip: { enabled: $("job-clip").checked },
          faces: { enabled: $("job-faces").checked },
          terms: { require: [...form.querySelectorAll('input[name="require"]:checked')].map((i) => i.value) },
        };
        for (const [id, key, label] of [["job-chunk", "chunk_size", "Chunk size"], ["job-min-side", "min_short_side", "Min short side"]]) {
          const v = intField($(id), label);
          if (v !== null) config[key] = v;
        }
        return { source: cfg.source.id, config };
      },
      post: (payload) => api("POST", cfg.urls.start, payload),
      done: (job) => {
        window.location.assign(url(cfg.urls.job_page, job.id));
      },
    });
  }

  jobForm();
  termsForm();
  projectForm(cfg.urls.project);
  load();
})();
