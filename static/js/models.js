/* The models page: the registry (GET /api/models/, activate), scoring an upload (POST
 * /api/score/, multipart) as 12 bars, batch scoring jobs (POST /api/scoring-jobs/) and training
 * runs (POST /api/training-runs/), both polled while they run and cancellable. Everything through window.HB (static/js/api.js); no library, no build step. */
(() => {
  "use strict";

  const HB = window.HB;
  const { $, api, node, url, fmt } = HB;
  const cfg = JSON.parse($("models-config").textContent);
  const POLL_MS = 2000;
  const FINISHED = new Set(["done", "failed", "cancelled"]);

  const showMessage = (text, kind = "error", el = $("message")) => HB.showMessage(el, text, kind);
  const num = (v, digits = 3) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–");
  const statusPill = (status) => node("span", { class: "job-status", dataset: { status } }, status);

  /** Every page of a paginated list (the registry is short; a cap keeps it bounded). */
  const all = (path, cap = 500) => HB.listAll(path, cap);

  // --- the registry ---------------------------------------------------------------------------

  function metricSummary(metrics) {
    const heads = metrics && metrics.overall;
    if (!heads || !Object.keys(heads).length) return node("span", { class: "muted" }, "no evaluation");
    const head = heads.metavoter ? "metavoter" : Object.keys(heads)[0];
    const m = heads[head];
    const n = metrics.n_images ? ` · n ${fmt(metrics.n_images)}` : "";
    return node(
      "span",
      { class: "metric-summary", title: JSON.stringify(heads, null, 1) },
      `${head}: SRCC ${num(m.srcc)} · PLCC ${num(m.plcc)} · RMSE ${num(m.rmse)}${n}`,
    );
  }

  function modelRow(m) {
    const active = m.is_active
      ? node("span", { class: "job-status", dataset: { status: "done" } }, "active")
      : node("button", { type: "button", class: "btn btn-sm", onclick: () => activate(m.version) }, "Activate");
    return node(
      "tr",
      { dataset: { version: m.version } },
      node("th", { scope: "row" }, node("span", { class: "row-title" }, m.version), node("div", { class: "row-sub mono", title: m.checkpoint_path }, m.checkpoint_path)),
      node("td", {}, m.backbone || "–", m.release ? node("div", { class: "row-sub" }, `release ${m.release.name} ${m.release.version}`) : null),
      node("td", {}, metricSummary(m.metrics)),
      node("td", {}, active),
    );
  }

  async function loadModels() {
    const body = $("models-table").tBodies[0];
    try {
      const models = await all(cfg.urls.models);
      const active = models.find((m) => m.is_active);
      $("models-sub").textContent = models.length
        ? `${models.length} version${models.length === 1 ? "" : "s"}; ${active ? `${active.version} is active` : "none is active: scoring needs a version or an active one"}.`
        : "Nothing registered yet: train a model below, or run `manage.py register_model VERSION DIR --activate`.";
      body.replaceChildren(...(models.length ? models.map(modelRow) : [node("tr", {}, node("td", { colspan: 4, class: "empty-cell" }, "No model versions."))]));
      const select = $("score-model");
      const chosen = select.value;
      select.replaceChildren(
        node("option", { value: "" }, active ? `The active version (${active.version})` : "The active version (none)"),
        ...models.map((m) => node("option", { value: m.version }, m.version)),
      );
      select.value = models.some((m) => m.version === chosen) ? chosen : "";
      const batch = $("batch-model");
      const batchChosen = batch.value;
      batch.replaceChildren(...Array.from(select.options, (o) => o.cloneNode(true)));
      batch.value = models.some((m) => m.version === batchChosen) ? batchChosen : "";
    } catch (err) {
      showMessage(err.message);
    }
  }

  async function activate(version) {
    try {
      await api("POST", url(cfg.urls.activate, version));
      showMessage(`${version} is now the active model.`, "ok");
      await loadModels();
    } catch (err) {
      showMessage(err.message);
    }
  }

  // --- scoring an upload ------------------------------------------------------------------------

  /** POST multipart (a FormData body): same errors as any HB.api call. */
  const postForm = (path, formData) => api("POST", path, formData);

  function bar(dim, score, level) {
    const pct = Math.max(0, Math.min(100, score * 100));
    return node(
      "li",
      { class: "score-bar" + (dim.parent ? " is-parent" : "") },
      node("span", { class: "score-name" }, dim.name),
      node(
        "span",
        { class: "score-track", role: "meter", "aria-valuemin": 0, "aria-valuemax": 1, "aria-valuenow": score.toFixed(3), "aria-label": dim.name },
        node("span", { class: `score-fill lvl-${level}`, style: `width: ${pct.toFixed(1)}%; display: block` }),
      ),
      node("span", { class: "score-value" }, score.toFixed(3)),
      node("span", { class: "muted" }, level),
    );
  }

  function showScores(result, fileName) {
    $("result-sub").textContent = `${fileName}, scored by ${result.model}.`;
    const heads = Object.entries(result.heads).map(([k, v]) => `${k} ${num(v)}`).join(" · ");
    $("score-result").replaceChildren(
      node("p", { class: "score-overall" }, node("span", { class: "muted" }, "Overall (MetaVoter)"), node("strong", {}, num(result.overall)), node("span", {}, result.overall_level)),
      node("ol", { class: "score-bars" }, cfg.dimensions.map((d) => bar(d, result.scores[d.key], result.levels[d.key]))),
      node("p", { class: "score-heads muted" }, `Each head's overall score: ${heads}.`),
    );
  }

  function scoreForm() {
    const form = $("score-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      HB.hideMessage($("score-error"));
      const file = $("score-image").files[0];
      if (!file) {
        HB.showMessage($("score-error"), "Choose an image first.", "error");
        return;
      }
      const data = new FormData();
      data.append("image", file);
      if ($("score-model").value) data.append("model", $("score-model").value);
      $("score-submit").disabled = true;
      try {
        showScores(await postForm(cfg.urls.score, data), file.name);
      } catch (err) {
        HB.showMessage($("score-error"), err.message, "error");
      } finally {
        $("score-submit").disabled = false;
      }
    });
  }

  // --- batch scoring jobs -----------------------------------------------------------------------

  let jobsPolling = null;

  function jobImages(job) {
    if (job.scope === "release") {
      const r = cfg.releases.find((x) => x.id === job.release);
      return r ? `release ${r.label}` : `release #${job.release}`;
    }
    return job.source ? `pool: ${job.source}` : "the whole pool";
  }

  function jobProgress(job) {
    const p = job.progress || {};
    const pct = p.total ? Math.min(100, Math.floor((100 * (p.done || 0)) / p.total)) : job.status === "done" ? 100 : 0;
    const text = p.total ? `${fmt(p.done || 0)} of ${fmt(p.total)}${p.failed ? ` · ${fmt(p.failed)} unreadable` : ""}` : job.status;
    return [
      node("div", { class: "progress", dataset: { status: job.status }, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct }, node("div", { class: "progress-bar", style: `width: ${pct}%` })),
      node("span", { class: "row-sub" }, text),
    ];
  }

  /** A Cancel button for a queued or running job or run (null once it is over). */
  function cancelButton(item, cancel) {
    if (FINISHED.has(item.status)) return null;
    return node("button", { type: "button", class: "btn btn-sm", dataset: { cancel: item.id }, onclick: () => cancel(item.id) }, "Cancel");
  }

  /** Ask first, POST the cancel, say how it went, then `refresh(the cancelled row or null)`. */
  async function confirmCancel(label, warning, path, refresh) {
    if (!window.confirm(`Cancel ${label}? ${warning}`)) return;
    let cancelled = null;
    try {
      cancelled = await api("POST", path);
      showMessage(`${label[0].toUpperCase()}${label.slice(1)} is cancelled.`, "ok");
    } catch (err) {
      showMessage(err.message);
    }
    await refresh(cancelled);
  }

  function jobRow(job) {
    return node(
      "tr",
      { dataset: { job: job.id } },
      node("th", { scope: "row" }, `#${job.id}`, node("div", { class: "row-sub" }, job.model || "–")),
      node("td", {}, jobImages(job)),
      node("td", {}, statusPill(job.status), " ", cancelButton(job, cancelJob)),
      node("td", { class: "progress-cell" }, ...jobProgress(job)),
      node("td", {}, job.download ? node("a", { href: job.download }, job.format.toUpperCase()) : job.error ? node("span", { class: "muted", title: job.error }, job.error) : "–"),
    );
  }

  async function loadJobs() {
    clearTimeout(jobsPolling);
    jobsPolling = null;
    try {
      const page = await api("GET", cfg.urls.scoring_jobs);
      const jobs = page.results;
      $("jobs-sub").textContent = jobs.length ? `${fmt(page.count)} job${page.count === 1 ? "" : "s"}, newest first.` : "No scoring jobs yet.";
      $("jobs-table").tBodies[0].replaceChildren(...(jobs.length ? jobs.map(jobRow) : [node("tr", {}, node("td", { colspan: 5, class: "empty-cell" }, "Start one with the form."))]));
      if (jobs.some((j) => !FINISHED.has(j.status))) jobsPolling = setTimeout(loadJobs, POLL_MS);
    } catch (err) {
      showMessage(err.message);
    }
  }

  function cancelJob(id) {
    const warning = "It stops after the chunk at hand; no results file is written.";
    return confirmCancel(`scoring job #${id}`, warning, url(cfg.urls.scoring_job_cancel, id), loadJobs);
  }

  function batchForm() {
    const images = $("batch-images");
    for (const r of cfg.releases) images.append(node("option", { value: `release:${r.id}` }, `Release ${r.label}`));
    for (const name of cfg.sources) images.append(node("option", { value: `source:${name}` }, `Pool: ${name}`));
    $("batch-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      HB.hideMessage($("batch-error"));
      const body = { format: $("batch-format").value, model: $("batch-model").value };
      const [kind, value] = images.value.split(/:(.*)/s);
      if (kind === "release") body.release = Number(value);
      if (kind === "source") body.source = value;
      $("batch-submit").disabled = true;
      try {
        await api("POST", cfg.urls.scoring_jobs, body);
        await loadJobs();
      } catch (err) {
        HB.showMessage($("batch-error"), err.message, "error");
      } finally {
        $("batch-submit").disabled = false;
      }
    });
  }

  // --- training runs ----------------------------------------------------------------------------

  function progressText(run) {
    const p = run.progress || {};
    const parts = [p.stage || run.status];
    if (p.step != null) parts.push(p.total ? `step ${fmt(p.step)} of ${fmt(p.total)}` : `step ${fmt(p.step)}`);
    if (typeof p.loss === "number") parts.push(`loss ${num(p.loss, 4)}`);
    return parts.join(" · ");
  }

  function cancelRun(id) {
    const warning = "The trainer is stopped and no model is registered.";
    return confirmCancel(`training run #${id}`, warning, url(cfg.urls.training_run_cancel, id), async (run) => {
      if (run) showRun(run);
      await loadRuns();
    });
  }

  function runRow(run) {
    return node(
      "tr",
      { dataset: { run: run.id } },
      node("th", { scope: "row" }, `#${run.id}`, node("div", { class: "row-sub mono", title: run.data_dir }, run.data_dir)),
      node("td", {}, run.backbone),
      node("td", {}, statusPill(run.status), " ", cancelButton(run, cancelRun)),
      node("td", {}, progressText(run)),
      node("td", {}, run.model || "–"),
    );
  }

  async function loadRuns() {
    try {
      const page = await api("GET", cfg.urls.training_runs);
      const runs = page.results;
      $("runs-sub").textContent = runs.length ? `${fmt(page.count)} run${page.count === 1 ? "" : "s"}, newest first.` : "No training runs yet.";
      $("runs-table").tBodies[0].replaceChildren(...(runs.length ? runs.map(runRow) : [node("tr", {}, node("td", { colspan: 5, class: "empty-cell" }, "Start one with the form."))]));
      const live = runs.find((r) => !FINISHED.has(r.status));
      if (live && !polling) follow(live.id);
    } catch (err) {
      showMessage(err.message);
    }
  }

  let polling = null;

  function showRun(run) {
    const p = run.progress || {};
    const pct = p.total ? Math.min(100, Math.floor((100 * (p.step || 0)) / p.total)) : run.status === "done" ? 100 : 0;
    const box = $("run-live");
    box.hidden = false;
    const parts = [
      node("p", {}, node("strong", {}, `Run #${run.id} `), statusPill(run.status), " ", node("span", { class: "muted" }, progressText(run)), " ", cancelButton(run, cancelRun)),
      node("div", { class: "progress progress-lg", dataset: { status: run.status }, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct }, node("div", { class: "progress-bar", style: `width: ${pct}%` })),
      run.error ? node("div", { class: "notice notice-error" }, run.error) : null,
      run.model ? node("p", {}, `Registered as ${run.model}.`) : null,
      run.log_tail ? node("pre", { class: "run-log" }, run.log_tail) : null,
    ];
    box.replaceChildren(...parts.filter(Boolean));
    const log = box.querySelector(".run-log");
    if (log) log.scrollTop = log.scrollHeight; // the newest lines in view
  }

  function follow(id) {
    clearTimeout(polling);
    const tick = async () => {
      try {
        const run = await api("GET", url(cfg.urls.training_run, id));
        showRun(run);
        if (FINISHED.has(run.status)) {
          polling = null;
          await Promise.all([loadRuns(), loadModels()]);
          return;
        }
      } catch (err) {
        showMessage(err.message);
        if (err.status === 401 || err.status === 403 || err.status === 404) {
          polling = null;
          return;
        }
      }
      polling = setTimeout(tick, POLL_MS);
    };
    polling = setTimeout(tick, 0);
  }

  function trainForm() {
    const releases = $("train-release");
    for (const r of cfg.releases) releases.append(node("option", { value: r.id }, r.label));
    if (cfg.releases.length) releases.value = String(cfg.releases[0].id);
    const toggle = () => {
      $("train-data-field").hidden = releases.value !== "";
      $("train-clip").hidden = $("train-backbone").value.trim() !== "lite";
    };
    releases.addEventListener("change", toggle);
    $("train-backbone").addEventListener("input", toggle);
    toggle();

    $("train-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      HB.hideMessage($("train-error"));
      const backbone = $("train-backbone").value.trim();
      const body = { backbone, activate: $("train-activate").checked, version: $("train-version").value.trim() };
      if (releases.value) body.release = Number(releases.value);
      else body.data = $("train-data").value.trim();
      if ($("train-steps").value) body.max_steps = Number($("train-steps").value);
      if (backbone === "lite") {
        body.clip_model = $("train-clip-model").value.trim();
        body.clip_checkpoint = $("train-clip-ckpt").value.trim();
      }
      $("train-submit").disabled = true;
      try {
        const run = await api("POST", cfg.urls.training_runs, body);
        showRun(run);
        await loadRuns();
        follow(run.id);
      } catch (err) {
        HB.showMessage($("train-error"), err.message, "error");
      } finally {
        $("train-submit").disabled = false;
      }
    });
  }

  scoreForm();
  batchForm();
  trainForm();
  loadModels();
  loadJobs();
  loadRuns();
})();
