/* The releases page: a release still building shows its live progress and can be cancelled.
 * Rows are rendered by the server; this follows the live ones through /api/releases/{id}/. */
(() => {
  "use strict";
  const { api, fmt } = window.HB;
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
        const release = await api("GET", `/api/releases/${id}/`);
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
          await api("POST", `/api/releases/${id}/cancel/`);
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

  document.querySelectorAll('tr[data-live="1"]').forEach(follow);
})();
