/* The admins' takedown page: file a request (POST /api/takedowns/), list them, and for the one
 * chosen add the person's photos, find matches, confirm or reject each, remove the confirmed
 * images (a long job, followed until it ends) or reject the request; its report lists every
 * place each image was found, what was done, and the audit trail. */
(() => {
  "use strict";
  const { $, api, url, node, showMessage, hideMessage, jsonForm } = window.HB;
  const cfg = JSON.parse($("takedowns-config").textContent);
  const POLL_MS = 1500;
  let current = null;

  const listOf = (text) => text.split(/[,\s]+/).map((s) => s.trim()).filter(Boolean);

  function idsOf(text) {
    return listOf(text).map((s) => {
      if (!/^\d+$/.test(s)) throw new Error(`Image ids are whole numbers: "${s}" is not one.`);
      return Number(s);
    });
  }

  async function loadList() {
    const body = $("requests").querySelector("tbody");
    try {
      const data = await api("GET", cfg.urls.requests);
      const rows = data.results || data;
      body.replaceChildren(...(rows.length ? rows.map((r) => node("tr", { dataset: { request: r.id } },
        node("td", {}, node("button", { type: "button", class: "btn btn-sm", text: `#${r.id}`,
          onclick: () => open(r.id) })),
        node("td", { text: r.person }),
        node("td", {}, node("span", { class: `badge badge-${r.status}`, text: r.status })),
        node("td", { text: String(r.matches.length) }),
        node("td", { text: new Date(r.created_at).toLocaleString() }),
      )) : [node("tr", {}, node("td", { colspan: 5, text: "No requests yet." }))]));
    } catch (err) {
      body.replaceChildren(node("tr", {}, node("td", { colspan: 5, text: err.message })));
    }
  }

  function decideButtons(r, m) {
    if (r.status !== "matched") return m.decision;
    const decide = (decision) => async () => {
      try {
        await api("POST", url(cfg.urls.decide, r.id), { decisions: [{ match: m.id, decision, note: "" }] });
        open(r.id);
      } catch (err) {
        showMessage($("request-msg"), err.message, "error");
      }
    };
    return node("span", {},
      node("button", { type: "button", class: "btn btn-sm", dataset: { decide: "confirmed" },
        "aria-pressed": String(m.decision === "confirmed"), text: "Confirm", onclick: decide("confirmed") }), " ",
      node("button", { type: "button", class: "btn btn-sm", dataset: { decide: "rejected" },
        "aria-pressed": String(m.decision === "rejected"), text: "Reject", onclick: decide("rejected") }));
  }

  function renderReport(report) {
    const box = $("report");
    const matches = report.matches.map((m) => node("div", { class: "report-image" },
      node("h4", { class: "record-path", text: `Image ${m.image_id} (${m.original_path || m.sha256.slice(0, 12)}): ${m.decision}` }),
      m.places.length ? node("ul", {}, m.places.map((p) => node("li", { class: "record-path", text: `${p.place}: ${p.what} — ${p.done}` })))
        : node("p", { class: "muted", text: "Not removed (yet)." })));
    const audit = node("ol", { class: "audit", id: "audit" }, report.audit.map((e) =>
      node("li", { class: "record-path", text: `${new Date(e.at).toLocaleString()} · ${e.actor || "system"} · ${e.action}${e.why ? ` — ${e.why}` : ""}` })));
    box.replaceChildren(...matches, node("h4", { text: "Audit trail" }), audit);
  }

  async function open(id) {
    current = id;
    hideMessage($("request-msg"));
    $("request-card").hidden = false;
    const r = await api("GET", url(cfg.urls.request, id));
    $("h-request").textContent = `Request #${r.id}: ${r.person}`;
    $("request-sub").textContent = `${r.status} · contact ${r.contact} · ${r.photos.length} photo(s) · ${r.reason}`;
    const body = $("matches").querySelector("tbody");
    body.replaceChildren(...(r.matches.length ? r.matches.map((m) => node("tr", { dataset: { match: m.id } },
      node("td", { text: String(m.image_id) }),
      node("td", { text: m.original_path || m.sha256.slice(0, 12) }),
      node("td", { text: m.how + (m.distance ? ` (${m.distance} bits)` : "")
        + (m.similarity != null ? ` (cosine ${m.similarity.toFixed(3)})` : ""), title: m.evidence || "" }),
      node("td", { text: m.decision }),
      node("td", {}, decideButtons(r, m)),
    )) : [node("tr", {}, node("td", { colspan: 5, text: "No matches yet." }))]));
    const open_ = ["open", "matched"].includes(r.status);
    $("photos-form").hidden = !open_;
    $("remove-actions").hidden = r.status !== "matched";
    $("reject-actions").hidden = !open_;
    renderReport(await api("GET", url(cfg.urls.report, id)));
    const live = r.removals.find((x) => ["queued", "running"].includes(x.status));
    if (live) window.setTimeout(() => follow(live.id), POLL_MS);
  }

  async function follow(removalId) {
    const removal = await api("GET", url(cfg.urls.removal, removalId));
    const p = removal.progress || {};
    showMessage($("request-msg"), `Removal ${removal.status}: ${p.done || 0} of ${p.total || 0} image(s).`,
      removal.status === "failed" ? "error" : "info");
    if (["queued", "running"].includes(removal.status)) window.setTimeout(() => follow(removalId), POLL_MS);
    else { open(current); loadList(); }
  }

  jsonForm($("file-form"), {
    errorEl: $("file-error"),
    submit: $("file-submit"),
    body: () => ({
      person: $("td-person").value,
      contact: $("td-contact").value,
      reason: $("td-reason").value,
      image_ids: idsOf($("td-ids").value),
      file_names: listOf($("td-files").value),
    }),
    post: (payload) => api("POST", cfg.urls.requests, payload),
    done: async (r) => {
      $("file-form").reset();
      await loadList();
      await open(r.id);
    },
  });

  $("photos-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const files = [...$("td-photos").files]; // a copy: the input's own list empties below
    if (!files.length) { showMessage($("request-msg"), "Choose the photos first.", "error"); return; }
    const form = new FormData();
    for (const f of files) form.append("photos", f);
    try {
      await api("POST", url(cfg.urls.photos, current), form);
      $("td-photos").value = "";
      await open(current);
      showMessage($("request-msg"), `${files.length} photo(s) hashed; their bytes were not kept.`, "ok");
    } catch (err) {
      showMessage($("request-msg"), err.message, "error");
    }
  });

  $("match-btn").addEventListener("click", async () => {
    try {
      // With a face model configured, the same face is searched for too.
      const found = await api("POST", url(cfg.urls.match, current),
        { faces: Boolean(cfg.face_matching && cfg.face_matching.available) });
      await open(current);
      showMessage($("request-msg"), `${found.length} match(es).`, "info");
      loadList();
    } catch (err) {
      showMessage($("request-msg"), err.message, "error");
    }
  });

  $("remove-btn").addEventListener("click", async () => {
    if (!window.confirm("Remove every confirmed image from the pool, the projects and the releases? This cannot be undone.")) return;
    try {
      const removal = await api("POST", url(cfg.urls.remove, current));
      follow(removal.id);
    } catch (err) {
      showMessage($("request-msg"), err.message, "error");
    }
  });

  $("reject-btn").addEventListener("click", async () => {
    const why = window.prompt("Why is the request rejected? (told to the person)");
    if (why === null) return;
    try {
      await api("POST", url(cfg.urls.reject, current), { why });
      await open(current);
      loadList();
    } catch (err) {
      showMessage($("request-msg"), err.message, "error");
    }
  });

  loadList();
})();
