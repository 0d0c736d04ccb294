/* HumanBeauty review page: the reviewer queue, keyboard first.
 *
 * The dimensions (page order, names), levels and the project's thresholds come from the
 * page's JSON config, which the server builds from humanbeauty/standard.py. The queue comes
 * from GET /api/projects/{id}/reviews/?status=open (every rater's scores side by side, flags,
 * consensus); decisions go to POST /api/reviews/{id}/decision/. The server refreshes the
 * consensus of the listed images before answering; an entry whose consensus still lags its
 * ratings comes marked `consensus_stale`, and its old figures are not shown (nor accepted).
 */
(() => {
  "use strict";

  const HB = window.HB;
  const { $, api, fmt, url, node, NA, levelValue, pressLevel, isTyping, closeOnBackdrop } = HB;
  const cfg = JSON.parse($("review-config").textContent);

  const DIMS = cfg.dimensions; // page order
  const BY_KEY = Object.fromEntries(DIMS.map((d) => [d.key, d]));
  const LEVELS = cfg.levels; // [{number, name, score, low, high}]
  const THRESHOLD = cfg.project.disagreement_threshold;
  const FINAL_ROWS = DIMS.map((d) => $("final-" + d.key));

  const el = {
    stage: $("stage"),
    layer: $("photo-layer"),
    info: $("stage-info"),
    open: $("open-original"),
    toast: $("toast"),
    overlay: $("overlay"),
    overlayTitle: $("overlay-title"),
    overlayText: $("overlay-text"),
    overlayActions: $("overlay-actions"),
    title: $("item-title"),
    position: $("item-position"),
    reasons: $("reasons"),
    flags: $("flags"),
    scores: $("scores"),
    scoresWrap: document.querySelector(".scores-wrap"),
    message: $("message"),
    note: $("note"),
    open_count: $("q-open"),
    done: $("q-done"),
    prev: $("btn-prev"),
    next: $("btn-next"),
    decisions: Array.from(document.querySelectorAll(".decisions .btn")),
    excludeDialog: $("exclude-dialog"),
    finalDialog: $("final-dialog"),
    finalError: $("final-error"),
    helpDialog: $("help-dialog"),
  };

  const state = {
    items: [], // loaded open review entries, queue order
    index: 0, // the one on screen
    total: 0, // open items in the queue (server count, less what we decided since)
    nextUrl: cfg.urls.queue, // the following page of the queue, or null
    decided: new Set(), // ids decided here (the queue's pages shift under us)
    done: 0,
    busy: false,
    final: {}, // the final-scores form: key -> level number or NA
    cursor: 0, // the form's current dimension
    img: null,
  };

  // --- small helpers ------------------------------------------------------------------------

  function levelOf(score) {
    for (let i = 0; i < LEVELS.length; i += 1) if (score < LEVELS[i].high) return LEVELS[i];
    return LEVELS[LEVELS.length - 1];
  }

  function std(values) {
    if (values.length < 2) return null;
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1));
  }

  // --- messages -----------------------------------------------------------------------------

  const showMessage = (text, kind) => HB.showMessage(el.message, text, kind, { base: "message" });
  const clearMessage = () => HB.hideMessage(el.message);
  const toast = (text) => HB.toast(el.toast, text);
  const showOverlay = (title, text, actions) => HB.showOverlay(el, title, text, actions);

  // --- the queue ----------------------------------------------------------------------------

  async function fetchMore() {
    // Pages shift as items are decided: on reaching the end, start again from the first page
    // and keep what is new.
    let restarted = false;
    for (let guard = 0; guard < 50; guard += 1) {
      if (!state.nextUrl) {
        if (restarted || state.items.length >= state.total) return false;
        state.nextUrl = cfg.urls.queue;
        restarted = true;
      }
      const data = await api("GET", state.nextUrl);
      state.nextUrl = data.next;
      state.total = data.count;
      const known = new Set(state.items.map((i) => i.id));
      const fresh = data.results.filter((r) => !known.has(r.id) && !state.decided.has(r.id));
      state.items.push(...fresh);
      if (fresh.length) return true;
    }
    return false;
  }

  function current() {
    return state.items[state.index] || null;
  }

  function renderCounts() {
    el.open_count.textContent = fmt(state.total);
    el.done.textContent = fmt(state.done);
    const item = current();
    el.position.textContent = item ? `${state.index + 1} of ${fmt(state.total)} open` : "";
    el.prev.disabled = !item || state.index === 0;
    el.next.disabled = !item || (state.index >= state.items.length - 1 && !state.nextUrl && state.items.length >= state.total);
    for (const b of el.decisions) b.disabled = !item || state.busy;
    if (item && (!item.consensus || item.consensus_stale)) $("btn-accept").disabled = true;
  }

  function reasonLabel(r) {
    if (r === "disagreement") return ["Disagreement", "reason-disagreement", "The raters' scores spread more than the project allows"];
    if (r.startsWith("inconsistent:")) {
      const d = BY_KEY[r.slice(13)];
      return [`Inconsistent: ${d ? d.name : r.slice(13)}`, "reason-inconsistent", "The parent score disagrees with the mean of its parts"];
    }
    if (r.startsWith("flag:")) return [`Flag: ${cfg.flag_labels[r.slice(5)] || r.slice(5)}`, "reason-flag", "A rater flagged the image"];
    return [r, "", ""];
  }

  function disputes(item) {
    const out = {}; // key -> "spread" | "inconsistent"
    for (const d of DIMS) {
      const c = item.consensus ? item.consensus[d.key] : null;
      let s = c && c.n >= 2 ? c.std : null;
      if (!item.consensus || item.consensus_stale) s = std(item.ratings.map((r) => r.scores[d.key]).filter((v) => v !== null));
      if (s !== null && s > THRESHOLD) out[d.key] = "spread";
      if (item.reasons.includes(`inconsistent:${d.key}`)) out[d.key] = "inconsistent";
    }
    return out;
  }

  function scoreCell(value, extraClass = "") {
    if (value === null || value === undefined) return node("td", { class: `score is-na ${extraClass}`, title: "not applicable" }, node("span", { class: "na-chip", text: "N" }));
    const l = levelOf(value);
    return node("td", { class: `score ${extraClass}`, title: `${value.toFixed(3)} (${l.name})` }, node("span", { class: `chip lvl-bg-${l.number}`, text: value.toFixed(2) }));
  }

  function renderTable(item, disputed) {
    // One row per dimension (grouped, in page order), the raters side by side, the consensus
    // (and a final score, if any) at the right.
    const raters = item.ratings;
    const head = [node("th", { scope: "col", class: "dim-head", text: "Dimension" })];
    for (const r of raters) {
      const info = cfg.raters[r.rater] || {};
      const tags = [];
      if (info.excluded) tags.push(node("span", { class: "tag tag-warn", text: "screened out", title: `Left out of the consensus: ${info.exclusion_reason || "screening"}` }));
      if (info.status && info.status !== "certified") tags.push(node("span", { class: "tag", text: info.status }));
      if (r.late) tags.push(node("span", { class: "tag", text: "late", title: "Submitted after the lease expired" }));
      const th = node("th", { scope: "col", class: `rater-col${info.excluded ? " is-excluded" : ""}`, "data-rater": r.rater }, node("span", { class: "rater-name", text: r.rater }), ...tags);
      th.title = r.rater + (typeof info.bias === "number" ? ` · bias ${info.bias > 0 ? "+" : ""}${info.bias.toFixed(3)}` : "");
      head.push(th);
    }
    if (!raters.length) head.push(node("th", { scope: "col", class: "rater-col muted", text: "No ratings" }));
    const computed = item.consensus_computed_at ? new Date(item.consensus_computed_at).toLocaleString() : null;
    const sub = item.consensus_stale ? "being refreshed" : "mean ± std";
    const consTitle = item.consensus_stale
      ? "Ratings arrived after this consensus was computed: it is being refreshed (reload in a moment)"
      : `Mean opinion score of the included raters ± standard deviation${computed ? `; computed ${computed}` : ""}`;
    head.push(node("th", { scope: "col", class: `consensus-col${item.consensus_stale ? " is-stale" : ""}`, title: consTitle, "data-computed-at": item.consensus_computed_at || "" }, node("span", { text: "Consensus" }), node("span", { class: "sub", text: sub })));
    if (item.final) head.push(node("th", { scope: "col", class: "consensus-col final-col", text: "Final" }));
    el.scores.tHead.rows[0].replaceChildren(...head);

    const width = head.length;
    const c = item.consensus;
    const body = [];
    let group = null;
    for (const d of DIMS) {
      if (d.group !== group) {
        group = d.group;
        body.push(node("tr", { class: "group-row" }, node("th", { scope: "colgroup", colspan: String(width), text: d.group_label })));
      }
      const kind = disputed[d.key];
      const name = node("th", { scope: "row", class: `dim-name-cell${d.children.length ? " is-parent" : ""}` }, node("span", { text: d.name }));
      if (kind) {
        name.append(node("span", { class: "dispute-mark", text: kind === "spread" ? "disputed" : "inconsistent" }));
        name.title = kind === "spread" ? `${d.name}: the raters disagree (std above ${THRESHOLD})` : `${d.name}: disagrees with the mean of its parts`;
      }
      const cells = raters.map((r) => {
        const info = cfg.raters[r.rater] || {};
        return scoreCell(r.scores[d.key], info.excluded ? "is-excluded" : "");
      });
      if (!raters.length) cells.push(node("td", { class: "muted", text: "–" }));
      let cons;
      if (item.consensus_stale) cons = node("td", { class: "consensus-cell is-stale", text: "…", title: consTitle });
      else if (!c) cons = node("td", { class: "consensus-cell", text: "–", title: "no consensus yet" });
      else if (!c[d.key]) cons = scoreCell(null, "consensus-cell");
      else {
        const e = c[d.key];
        cons = scoreCell(e.mos, "consensus-cell");
        // One rating has no spread to show: say so rather than "±0.00".
        if (e.n >= 2) cons.append(node("span", { class: `std${e.std > THRESHOLD ? " is-high" : ""}`, text: `±${e.std.toFixed(2)}` }));
        else cons.append(node("span", { class: "std", text: `n=${e.n}` }));
        cons.title = `MOS ${e.mos.toFixed(3)}, ${e.n >= 2 ? `std ${e.std.toFixed(3)}, ` : ""}${e.n} rater${e.n === 1 ? "" : "s"}`;
      }
      cells.push(cons);
      if (item.final) cells.push(scoreCell(item.final[d.key], "consensus-cell"));
      body.push(node("tr", { class: `dim-row${kind ? " is-disputed" : ""}${d.children.length ? " is-parent" : ""}`, "data-key": d.key }, name, ...cells));
    }
    el.scores.tBodies[0].replaceChildren(...body);
  }

  function renderItem() {
    const item = current();
    renderCounts();
    if (!item) {
      el.layer.replaceChildren();
      el.info.textContent = "";
      el.open.hidden = true;
      el.title.textContent = "Review queue";
      el.reasons.replaceChildren();
      el.flags.hidden = true;
      el.scores.tHead.rows[0].replaceChildren();
      el.scores.tBodies[0].replaceChildren();
      el.scoresWrap.hidden = true;
      document.body.dataset.state = "empty";
      showOverlay("The review queue is empty", "Nothing is waiting for a decision. New items arrive when statistics are refreshed or raters flag images.", [{ label: "Open the dashboard", href: cfg.urls.dashboard, primary: true }]);
      return;
    }
    el.overlay.hidden = true;
    el.scoresWrap.hidden = false;
    document.body.dataset.state = "reviewing";
    el.stage.dataset.reviewId = String(item.id);
    el.stage.dataset.imageId = String(item.image);
    el.title.textContent = `Image #${item.image}`;
    const img = new Image();
    img.className = "photo review-photo";
    img.alt = `Image ${item.image} under review`;
    img.decoding = "async";
    img.src = item.image_url;
    img.addEventListener("load", () => {
      el.info.textContent = `Image #${item.image} · ${img.naturalWidth}×${img.naturalHeight} · ${item.ratings.length} rating${item.ratings.length === 1 ? "" : "s"}`;
    });
    img.addEventListener("error", () => {
      el.info.textContent = `Image #${item.image} could not be loaded`;
    });
    state.img = img;
    el.layer.replaceChildren(img);
    el.open.href = item.image_url;
    el.open.hidden = false;
    el.info.textContent = `Image #${item.image}`;

    el.reasons.replaceChildren(
      ...item.reasons.map((r) => {
        const [label, cls, title] = reasonLabel(r);
        return node("span", { class: `reason-chip ${cls}`, text: label, title });
      }),
    );
    el.flags.hidden = !item.flags.length;
    el.flags.replaceChildren(
      ...item.flags.map((f) => node("li", {}, node("strong", { text: f.rater }), ` flagged it: ${cfg.flag_labels[f.reason] || f.reason}`, f.text ? node("q", { text: f.text }) : null)),
    );
    renderTable(item, disputes(item));
    clearMessage();
    // Preload the next image.
    const following = state.items[state.index + 1];
    if (following) new Image().src = following.image_url;
  }

  async function go(delta) {
    if (state.busy) return;
    const target = state.index + delta;
    if (target < 0) return;
    if (target >= state.items.length) {
      try {
        if (!(await fetchMore())) return;
      } catch (err) {
        showMessage(`Could not load more of the queue: ${err.message}`);
        return;
      }
    }
    state.index = Math.min(target, state.items.length - 1);
    el.note.value = "";
    renderItem();
  }

  // --- decisions ----------------------------------------------------------------------------

  const DONE_TEXT = { accept: "Consensus accepted", set_final: "Final scores saved", more_ratings: "Sent for more ratings", exclude: "Image excluded" };

  async function decide(decision, extra = {}) {
    const item = current();
    if (!item || state.busy) return false;
    if (decision === "accept" && item.consensus_stale) {
      showMessage("Newer ratings are not in this consensus yet: reload the page in a moment to see it refreshed.");
      return false;
    }
    if (decision === "accept" && !item.consensus) {
      showMessage("There is no consensus to accept yet: set final scores, or send the image for more ratings.");
      return false;
    }
    state.busy = true;
    document.body.classList.add("is-busy");
    renderCounts();
    try {
      await api("POST", url(cfg.urls.decision, item.id), { decision, note: el.note.value.trim(), ...extra });
    } catch (err) {
      state.busy = false;
      document.body.classList.remove("is-busy");
      if (err.status === 409) {
        // Someone decided it meanwhile: it is no longer open.
        dropCurrent();
        showMessage(`${err.message} It left the queue.`, "warn");
        return true;
      }
      renderCounts();
      showMessage(err.message);
      return false;
    }
    state.busy = false;
    document.body.classList.remove("is-busy");
    state.done += 1;
    dropCurrent();
    toast(`${DONE_TEXT[decision]} · #${item.image}`);
    return true;
  }

  function dropCurrent() {
    const item = current();
    state.decided.add(item.id);
    state.items.splice(state.index, 1);
    state.total = Math.max(0, state.total - 1);
    el.note.value = "";
    if (state.index >= state.items.length && state.items.length) state.index = state.items.length - 1;
    if (!state.items.length && state.total > 0) {
      fetchMore()
        .catch(() => false)
        .then(() => {
          state.index = 0;
          renderItem();
        });
      return;
    }
    renderItem();
  }

  // Exclude asks first.
  function askExclude() {
    if (!current() || state.busy) return;
    $("exclude-title").textContent = `Exclude image #${current().image}?`;
    el.excludeDialog.showModal();
    $("exclude-confirm").focus();
  }

  $("exclude-form").addEventListener("submit", (e) => {
    e.preventDefault();
    el.excludeDialog.close();
    decide("exclude");
  });
  $("exclude-cancel").addEventListener("click", () => el.excludeDialog.close());

  // --- the final-scores form (the rater page's level widgets) -------------------------------

  function renderFinal() {
    DIMS.forEach((d, i) => {
      const row = FINAL_ROWS[i];
      const a = state.final[d.key];
      pressLevel(row, a);
      row.classList.toggle("is-answered", a !== undefined);
      row.classList.toggle("is-na", a === NA);
      row.classList.toggle("is-current", i === state.cursor);
    });
  }

  function focusFinal(i) {
    state.cursor = Math.max(0, Math.min(DIMS.length - 1, i));
    renderFinal();
    FINAL_ROWS[state.cursor].focus({ preventScroll: true });
    FINAL_ROWS[state.cursor].scrollIntoView({ block: "nearest" });
  }

  function openFinal() {
    const item = current();
    if (!item || state.busy) return;
    state.final = {};
    for (const d of DIMS) {
      const c = item.consensus && item.consensus[d.key];
      const hint = document.querySelector(`[data-consensus="${d.key}"]`);
      if (c) {
        state.final[d.key] = levelOf(c.mos).number;
        hint.textContent = `consensus ${c.mos.toFixed(2)}`;
      } else if (item.consensus && d.nullable) {
        state.final[d.key] = NA;
        hint.textContent = "consensus n/a";
      } else {
        hint.textContent = "";
      }
    }
    el.finalError.hidden = true;
    $("final-title").textContent = `Set final scores for image #${item.image}`;
    el.finalDialog.showModal();
    focusFinal(0);
  }

  function chooseFinal(i, value) {
    const d = DIMS[i];
    if (value === NA && !d.nullable) {
      el.finalError.hidden = false;
      el.finalError.textContent = `${d.name} cannot be “not applicable”.`;
      return;
    }
    el.finalError.hidden = true;
    state.final[d.key] = value;
    if (value === NA) {
      // A hidden face: its features cannot be rated either.
      for (const c of d.children) if (BY_KEY[c].nullable) state.final[c] = NA;
    } else {
      // A level on a part reopens an aggregate marked N/A.
      for (const p of DIMS) if (p.children.includes(d.key) && state.final[p.key] === NA) delete state.final[p.key];
    }
    renderFinal();
    if (i < DIMS.length - 1) focusFinal(i + 1);
  }

  async function saveFinal() {
    const missing = DIMS.filter((d) => state.final[d.key] === undefined);
    if (missing.length) {
      el.finalError.hidden = false;
      el.finalError.textContent = `Still to answer: ${missing.map((d) => d.name).join(", ")}.`;
      focusFinal(DIMS.indexOf(missing[0]));
      return;
    }
    const scores = {};
    for (const d of DIMS) scores[d.key] = state.final[d.key] === NA ? null : LEVELS[state.final[d.key] - 1].score;
    el.finalDialog.close();
    await decide("set_final", { final_scores: scores });
  }

  FINAL_ROWS.forEach((row, i) => {
    row.addEventListener("click", (e) => {
      const b = e.target.closest(".lvl");
      if (b) chooseFinal(i, levelValue(b));
      else focusFinal(i);
    });
    row.addEventListener("focus", () => {
      if (state.cursor !== i) {
        state.cursor = i;
        renderFinal();
      }
    });
  });

  $("final-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveFinal();
  });
  $("final-cancel").addEventListener("click", () => el.finalDialog.close());
  el.finalDialog.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const n = Number(e.key);
    if (e.key.length === 1 && Number.isInteger(n) && n >= 1 && n <= LEVELS.length) {
      e.preventDefault();
      chooseFinal(state.cursor, n);
    } else if (e.key === "n" || e.key === "N") {
      e.preventDefault();
      chooseFinal(state.cursor, NA);
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      focusFinal(state.cursor + 1);
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      focusFinal(state.cursor - 1);
    } else if (e.key === "Enter" && !(e.target.closest && e.target.closest("button"))) {
      e.preventDefault();
      saveFinal();
    }
  });

  // --- buttons, dialogs, keyboard -----------------------------------------------------------

  $("btn-accept").addEventListener("click", () => decide("accept"));
  $("btn-more").addEventListener("click", () => decide("more_ratings"));
  $("btn-exclude").addEventListener("click", askExclude);
  $("btn-final").addEventListener("click", openFinal);
  el.prev.addEventListener("click", () => go(-1));
  el.next.addEventListener("click", () => go(1));
  $("btn-help").addEventListener("click", () => el.helpDialog.showModal());
  $("help-close").addEventListener("click", () => el.helpDialog.close());

  const DIALOGS = [el.excludeDialog, el.finalDialog, el.helpDialog];
  for (const d of DIALOGS) closeOnBackdrop(d);
  const dialogOpen = () => DIALOGS.some((d) => d.open);

  el.note.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      el.note.blur();
    }
  });

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || dialogOpen() || isTyping(e.target)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (e.key === "?") {
      e.preventDefault();
      el.helpDialog.showModal();
      return;
    }
    if (e.repeat && "amxf".includes(key)) return;
    const actions = {
      a: () => decide("accept"),
      m: () => decide("more_ratings"),
      x: askExclude,
      f: openFinal,
      j: () => go(1),
      k: () => go(-1),
      ArrowRight: () => go(1),
      ArrowLeft: () => go(-1),
      e: () => el.note.focus(),
    };
    const act = actions[key];
    if (!act) return;
    e.preventDefault();
    act();
  });

  // --- start --------------------------------------------------------------------------------

  async function start() {
    $("threshold").textContent = THRESHOLD.toFixed(2);
    showOverlay("Loading the queue…", "");
    try {
      await fetchMore();
    } catch (err) {
      showOverlay("The queue could not be loaded", err.message, [{ label: "Try again", primary: true, onClick: () => location.reload() }]);
      return;
    }
    renderItem();
    document.body.dataset.ready = "true";
  }

  start();
})();
