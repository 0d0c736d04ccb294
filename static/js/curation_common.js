/* HumanBeauty curation pages: what the sources, source and job pages share.
 *
 * The page's JSON config (urls, rights, defaults) comes from the server; every datum comes from
 * the REST API (curation/jobs_api.py), through static/js/api.js (`window.HB`). Exposed as
 * `window.HBCur`. No library, no build step.
 */
(() => {
  "use strict";

  const HB = window.HB;
  const { $, api, fmt, node } = HB;
  const cfg = JSON.parse($("curation-config").textContent);

  // The page's message box, or another one (a form's, a dialog's).
  const showMessage = (text, kind, el = $("message")) => HB.showMessage(el, text, kind);
  const hideMessage = (el = $("message")) => HB.hideMessage(el);

  const pct = (a, b) => (b > 0 ? Math.floor((100 * a) / b) : 0);

  function fmtTime(iso, { withTime = true } = {}) {
    if (!iso) return "–";
    const d = new Date(iso);
    const opts = { year: "numeric", month: "short", day: "numeric" };
    if (withTime) Object.assign(opts, { hour: "2-digit", minute: "2-digit" });
    return d.toLocaleString(undefined, opts);
  }

  function fmtDuration(seconds) {
    if (!(seconds >= 0) || !Number.isFinite(seconds)) return "–";
    if (seconds < 1) return "under a second";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  function statusPill(status) {
    return node("span", { class: "job-status", dataset: { status } }, status);
  }

  /** One line on a job's settings: what a curator compares between jobs. */
  function settingsLine(config) {
    if (!config || !config.clip) return "–";
    const parts = [
      `CLIP ${config.clip.enabled ? "on" : "off"}`,
      `faces ${config.faces && config.faces.enabled ? "on" : "off"}`,
      `k ${config.near_dup_k}`,
      `min side ${config.min_short_side}px`,
      `chunk ${config.chunk_size}`,
    ];
    return parts.join(" · ");
  }

  const { jsonForm } = HB;
  const intField = (input, label) => HB.numberField(input, label);

  /** The project-from-curation form (job and source pages). */
  function projectForm(postUrl) {
    const form = $("project-form");
    if (!form) return;
    jsonForm(form, {
      errorEl: $("project-error"),
      submit: $("project-submit"),
      body: () => {
        const name = $("prj-name").value.trim();
        if (!name) throw new Error("The project needs a name.");
        const out = { name, seed: intField($("prj-seed"), "Seed") ?? 0 };
        const sample = intField($("prj-sample"), "Sample");
        const overlap = intField($("prj-overlap"), "Raters per image");
        if (sample !== null) out.sample = sample;
        if (overlap !== null) out.overlap = overlap;
        return out;
      },
      post: (payload) => api("POST", postUrl, payload),
      done: (data) => {
        const how = data.sample ? `a stratified sample (seed ${data.seed}) of ${fmt(data.accepted)} accepted` : "all accepted";
        const box = $("project-result");
        box.replaceChildren(
          node(
            "div",
            { class: "notice notice-ok result-box", role: "status" },
            node("strong", {}, `Project “${data.project.name}” created`),
            ` with ${fmt(data.images)} image${data.images === 1 ? "" : "s"} from job ${data.job} (${how}), ${data.project.overlap} raters per image.`,
            data.strata && data.strata.length
              ? node(
                  "ul",
                  { class: "strata" },
                  data.strata.map((s) =>
                    node("li", {}, s.low === null ? "no score" : `score ${s.low.toFixed(2)}–${s.high.toFixed(2)}`, node("span", { class: "muted" }, ` ${s.taken} of ${s.size}`)),
                  ),
                )
              : null,
            node("div", { class: "muted small" }, "Add raters to it with ", node("code", {}, "manage.py add_member"), "."),
          ),
        );
        form.reset();
      },
    });
  }

  window.HBCur = { cfg, showMessage, hideMessage, pct, fmtTime, fmtDuration, statusPill, settingsLine, jsonForm, intField, projectForm };
})();
