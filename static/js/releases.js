/* The releases page: the build form (POST /api/releases/, the CLI's `release build` options;
 * a refusal is shown under the fields it names), and a release still building shows its live
 * progress and can be cancelled. Rows are rendered by the server; this follows the live ones
 * through /api/releases/{id}/ and reloads the page when one is over (its counts and links). */
(() => {
  "use strict";
  const { $, api, fmt, url, jsonForm, numberField } = window.HB;
  const cfg = JSON.parse($("releases-config").textContent);
  const POLL_MS = 2000;

  function progressText(release) {
    const p = release.progress || {};
    if (!p.phase) return release.status === "queued" ? "waiting for a worker" : "";
    return p.total ? `${p.phase}: ${fmt(p.done)} of ${fmt(p.total)}` : p.phase;
  }

  function follow(row) {
    const id = row.dataset.release;
    const status = row.querySelector('[data-role="status"]');
    const progress = row.querySelector('[data-role="progress"]');
    const cancel = row.querySelector('[data-role="cancel"]');
    let timer = null;

    async function poll() {
      try {
        const release = await api("GET", url(cfg.urls.release, id));
        status.textContent = release.status;
        status.className = `badge badge-${release.status}`;
        if (progress) progress.textContent = progressText(release);
        if (["ready", "failed", "cancelled"].includes(release.status)) {
          window.location.reload(); // counts, warnings and links come with the finished row
          return;
        }
      } catch (err) {
        if (progress) progress.textContent = err.message;
      }
      timer = window.setTimeout(poll, POLL_MS);
    }

    if (cancel) {
      cancel.addEventListener("click", async () => {
        cancel.disabled = true;
        try {
          await api("POST", url(cfg.urls.cancel, id));
          window.clearTimeout(timer);
          poll();
        } catch (err) {
          cancel.disabled = false;
          if (progress) progress.textContent = err.message;
        }
      });
    }
    poll();
  }

  const checked = (field) => [...document.querySelectorAll(`input[name="${field}"]:checked`)].map((i) => i.value);

  /** The request body, as POST /api/releases/ reads it; empty optional fields are left out. */
  function body() {
    const text = (id) => $(id).value.trim();
    const out = {
      name: text("rel-name"),
      version: text("rel-version"),
      out: text("rel-out") || `${text("rel-name")}-${text("rel-version")}`,
      projects: checked("projects"),
      sources: checked("sources"),
      formats: checked("formats"),
      images: $("rel-images").value,
      na: $("rel-na").value,
      license: text("rel-license") || "unknown",
      split: {},
    };
    if (text("rel-contact")) out.contact = text("rel-contact");
    if (text("rel-licence")) out.licence = text("rel-licence");
    for (const input of document.querySelectorAll("[data-split]")) {
      const share = numberField(input, `The ${input.dataset.split} share`, { integer: false });
      if (share !== null) out.split[input.dataset.split] = share;
    }
    const numbers = [
      ["max_side", "rel-max-side", "Max side", true],
      ["min_raters", "rel-min-raters", "Min raters", true],
      ["max_disagreement", "rel-max-dis", "Max disagreement", false],
      ["seed", "rel-seed", "Seed", true],
      ["shard_size", "rel-shard", "Shard size", true],
    ];
    for (const [key, id, label, integer] of numbers) {
      const v = numberField($(id), label, { integer });
      if (v !== null) out[key] = v;
    }
    return out;
  }

  function buildForm() {
    const form = $("release-form");
    if (!form) return;
    jsonForm(form, {
      errorEl: $("release-error"),
      submit: $("release-submit"),
      body,
      post: (payload) => api("POST", cfg.urls.releases, payload),
      done: () => window.location.reload(), // the new row, followed live from there
    });
  }

  document.querySelectorAll('tr[data-live="1"]').forEach(follow);
  buildForm();
})();
