/* HumanBeauty curation pages: what the sources, source and job pages share.
 *
 * The page's JSON config (urls, rights, defaults) comes from the server; every datum comes from
 * the REST API (curation/jobs_api.py). Exposed as `window.HBCur`. No library, no build step.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("curation-config").textContent);

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  class ApiError extends Error {
    constructor(status, detail, data) {
      super(detail);
      this.status = status;
      this.data = data;
    }
  }

  function detailOf(data, resp) {
    if (data && typeof data === "object") {
      if (typeof data.detail === "string") return data.detail;
      const parts = [];
      for (const [field, msgs] of Object.entries(data)) {
        if (field === "code") continue;
        const text = Array.isArray(msgs) ? msgs.join(" ") : typeof msgs === "object" ? JSON.stringify(msgs) : String(msgs);
        parts.push(field === "non_field_errors" ? text : `${field}: ${text}`);
      }
      if (parts.length) return parts.join(" · ");
    }
    return `The server answered ${resp.status} ${resp.statusText || ""}`.trim() + ".";
  }

  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      opts.headers["X-CSRFToken"] = csrfToken();
      if (body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
      }
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (_) {
      throw new ApiError(0, "Cannot reach the server. Check the connection and try again.");
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      if (resp.status === 401) throw new ApiError(401, "Your session has ended. Log in again to continue.", data);
      throw new ApiError(resp.status, detailOf(data, resp), data);
    }
    return data;
  }

  function node(tag, attrs = {}, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k === "dataset") Object.assign(n.dataset, v);
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      n.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return n;
  }

  function showMessage(text, kind = "error", el = $("message")) {
    if (!el) return;
    el.hidden = false;
    el.className = "notice notice-" + kind;
    el.textContent = text;
  }

  function hideMessage(el = $("message")) {
    if (el) el.hidden = true;
  }

  const fmt = (n) => (typeof n === "number" ? n.toLocaleString() : "–");
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

  const url = (pattern, id) => pattern.replace("{id}", String(id));

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

  /** A form that posts JSON: disables its button while busy, shows the server's refusal. */
  function jsonForm(form, { errorEl, submit, body, post, done }) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      hideMessage(errorEl);
      let payload;
      try {
        payload = body();
      } catch (err) {
        showMessage(err.message, "error", errorEl);
        return;
      }
      submit.disabled = true;
      const label = submit.textContent;
      submit.textContent = submit.dataset.busy || "Working…";
      try {
        const data = await post(payload);
        await done(data);
      } catch (err) {
        showMessage(err.message || String(err), "error", errorEl);
      } finally {
        submit.disabled = false;
        submit.textContent = label;
      }
    });
  }

  /** The integer in an <input>, or null when it is empty; a clear error when it is not one. */
  function intField(input, label) {
    const raw = input.value.trim();
    if (raw === "") return null;
    const v = Number(raw);
    if (!Number.isInteger(v)) throw new Error(`${label} must be a whole number.`);
    return v;
  }

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

  window.HBCur = { $, cfg, api, ApiError, node, showMessage, hideMessage, fmt, pct, fmtTime, fmtDuration, statusPill, url, settingsLine, jsonForm, intField, projectForm };
})();
