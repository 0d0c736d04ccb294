/* HumanBeauty rater page: keyboard-first rating on the 12-dimensional standard.
 *
 * Everything about the standard (dimensions, groups, levels and their scores, skip reasons)
 * comes from the page's JSON config, which the server builds from humanbeauty/standard.py.
 * The page talks to the public API only: the project (progress, guidelines), next/, rating/
 * and skip/. It never asks for anybody's ratings, its own included. The project's dimension
 * guides (definitions, level lines, pinned examples) come with the config.
 *
 * Answers not yet submitted live in localStorage under user, project and lease, so a reload or
 * Back restores them into the same lease; a submit, a skip or the lease's end clears them.
 */
(() => {
  "use strict";

  const HB = window.HB;
  const { $, fmt, url, NA, levelValue, pressLevel, isTyping, closeOnBackdrop } = HB;
  const cfg = JSON.parse($("rate-config").textContent);

  const DIMS = cfg.groups.flatMap((g) => g.dimensions); // page order
  const BY_KEY = Object.fromEntries(DIMS.map((d) => [d.key, d]));
  const LEVELS = cfg.levels; // [{number, name, score, low, high}]
  const ROWS = DIMS.map((d) => $("dim-" + d.key));
  const REASONS = cfg.flag_reasons;

  const el = {
    stage: $("stage"),
    layer: $("photo-layer"),
    info: $("stage-info"),
    toast: $("toast"),
    zoom: $("zoom-level"),
    overlay: $("overlay"),
    overlayTitle: $("overlay-title"),
    overlayText: $("overlay-text"),
    overlayActions: $("overlay-actions"),
    guidelines: $("guidelines"),
    guidelinesContent: $("guidelines-content"),
    btnGuidelines: $("btn-guidelines"),
    message: $("message"),
    answered: $("answered"),
    submit: $("btn-submit"),
    skip: $("btn-skip"),
    flag: $("btn-flag"),
    today: $("p-today"),
    left: $("p-left"),
    lease: $("lease"),
    leaseLeft: $("lease-left"),
    fullscreen: $("btn-fullscreen"),
    flagDialog: $("flag-dialog"),
    flagForm: $("flag-form"),
    flagText: $("flag-text"),
    flagTextField: $("flag-text-field"),
    flagError: $("flag-error"),
    skipDialog: $("skip-dialog"),
    helpDialog: $("help-dialog"),
    guideDialog: $("guide-dialog"),
    guideTitle: $("guide-dialog-title"),
    guideDef: $("guide-dialog-def"),
    guideTabs: $("guide-tabs"),
    guideLevelDesc: $("guide-level-desc"),
    guideGallery: $("guide-gallery"),
  };

  const state = {
    task: null, // the image on screen: {assignment, image, expiresAt, requestId, answers, img, ...}
    preload: null, // Promise of the following task (null when nothing was left), or undefined
    cursor: 0, // index into DIMS of the current dimension
    busy: false, // a submit/skip is in flight
    clockOffset: 0, // server clock minus ours, from the Date header
    progress: null,
    stored: true, // the answers on screen are kept in localStorage (or there are none)
  };

  // --- small helpers ------------------------------------------------------------------------

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const serverNow = () => Date.now() + state.clockOffset;

  // Every answer's Date header sets the clock offset (the lease timer counts in server time).
  function noteServerClock(resp) {
    const date = resp.headers.get("Date");
    if (date && !Number.isNaN(Date.parse(date))) state.clockOffset = Date.parse(date) + 500 - Date.now();
  }

  const api = (method, path, body) => HB.api(method, path, body, { onResponse: noteServerClock });

  // --- messages -----------------------------------------------------------------------------

  const showMessage = (text, kind, link = null) => HB.showMessage(el.message, text, kind, { base: "message", link });
  const clearMessage = () => HB.hideMessage(el.message);
  const toast = (text) => HB.toast(el.toast, text);
  const showOverlay = (title, text, actions) => HB.showOverlay(el, title, text, actions);

  function loginLink() {
    const next = encodeURIComponent(location.pathname);
    return { href: `${cfg.urls.login}?next=${next}`, text: "Log in" };
  }

  const hideOverlay = () => {
    el.overlay.hidden = true;
    const extra = document.getElementById("overlay-feedback");
    if (extra) extra.remove();
  };

  // Qualification training: the rater's answers next to the reference, dimension by dimension.
  function showFeedback(scores, reference) {
    const label = (v) => (v === null || v === undefined ? "N/A" : levelOf(v));
    const table = document.createElement("table");
    table.id = "overlay-feedback";
    table.className = "feedback-table";
    table.innerHTML = "<thead><tr><th>Dimension</th><th>You</th><th>Reference</th><th><span class=\"sr-only\">Guide</span></th></tr></thead>";
    const body = document.createElement("tbody");
    for (const d of DIMS) {
      const tr = document.createElement("tr");
      const mine = label(scores[d.key]);
      const ref = label(reference[d.key]);
      tr.className = mine === ref ? "is-match" : "is-off";
      for (const text of [d.name, mine, ref]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      // Where the candidate missed: the dimension's guide and examples, one tap away.
      tr.append(HB.node("td", {}, mine === ref ? null : guideButton(d, "Guide")));
      body.append(tr);
    }
    table.append(body);
    return new Promise((resolve) => {
      showOverlay("Training feedback", "Your answers next to the reference answers.", [
        { label: "Continue", primary: true, onClick: () => { hideOverlay(); resolve(); } },
      ]);
      el.overlayText.after(table);
      focusOverlay();
    });
  }

  function guideButton(d, label) {
    return HB.node("button", {
      type: "button",
      class: "btn btn-xs guide-link",
      "aria-label": `The guide to ${d.name}`,
      dataset: { examples: d.key },
      text: label,
      onclick: () => openGuide(d.key),
    });
  }

  function levelOf(score) {
    const level = LEVELS.find((l) => score < l.high) || LEVELS[LEVELS.length - 1];
    return level.name;
  }

  // --- progress, guidelines -----------------------------------------------------------------

  function renderProgress() {
    const p = state.progress;
    el.today.textContent = p ? fmt(p.my_ratings_today) : "–";
    el.left.textContent = p ? fmt(p.ratings_left) : "–";
  }

  async function loadProject() {
    try {
      const project = await api("GET", cfg.urls.project);
      state.progress = project.progress;
      renderProgress();
      if (project.guidelines_html && project.guidelines_html.trim()) {
        // Sanitised on the server (Markdown rendered, then cleaned with nh3).
        el.guidelinesContent.innerHTML = project.guidelines_html;
      } else {
        el.guidelinesContent.innerHTML = '<p class="muted">This project has no written guidelines.</p>';
      }
    } catch (err) {
      el.guidelinesContent.textContent = `Guidelines could not be loaded: ${err.message}`;
    }
  }

  // --- the dimension guides: definitions and level lines inline, examples in a dialog --------

  const exampleCount = (d) => d.guide_levels.reduce((n, l) => n + l.examples.length, 0);

  for (const b of document.querySelectorAll(".guide-open[data-examples]")) {
    const n = exampleCount(BY_KEY[b.dataset.examples]);
    if (n) b.textContent = `Examples (${n})`;
  }

  function closeGuides(except = null) {
    for (const row of ROWS) {
      if (row === except || !row.classList.contains("is-guide-open")) continue;
      row.classList.remove("is-guide-open");
      row.querySelector(".dim-info").setAttribute("aria-expanded", "false");
    }
  }

  function toggleGuide(i, force) {
    const row = ROWS[i];
    const open = force === undefined ? !row.classList.contains("is-guide-open") : force;
    closeGuides(row);
    row.classList.toggle("is-guide-open", open);
    row.querySelector(".dim-info").setAttribute("aria-expanded", String(open));
    if (open) row.querySelector(".dim-guide").scrollIntoView({ block: "nearest" });
  }

  function openGuide(key, level = 0) {
    const d = BY_KEY[key];
    if (!d) return;
    closeGuides();
    el.guideTitle.textContent = d.name;
    el.guideDef.textContent = d.definition;
    const levels = d.guide_levels.map((l) => ({ level: l.name, number: l.number, description: l.description, examples: l.examples }));
    // Open at the level asked for, else the first one with examples.
    let current = level || (levels.find((l) => l.examples.length) || levels[0]).number;
    const tabs = levels.map((l) =>
      HB.node("button", {
        type: "button",
        role: "tab",
        class: `guide-tab lvl-${l.number}`,
        dataset: { level: l.number },
        text: `${l.number} ${l.level}${l.examples.length ? ` (${l.examples.length})` : ""}`,
        onclick: () => showLevel(l.number),
      }),
    );
    el.guideTabs.replaceChildren(...tabs);
    function showLevel(number) {
      current = number;
      const l = levels[number - 1];
      tabs.forEach((t, j) => t.setAttribute("aria-selected", String(j === number - 1)));
      el.guideLevelDesc.textContent = l.description;
      el.guideGallery.replaceChildren(
        ...(l.examples.length
          ? l.examples.map((e) =>
              HB.node("figure", { class: "guide-figure" },
                HB.node("img", { src: e.url, alt: `Example of ${l.level} ${d.name}`, loading: "lazy" })),
            )
          : [HB.node("p", { class: "muted", text: "No example image pinned for this level yet." })]),
      );
    }
    showLevel(current);
    openDialog(el.guideDialog);
    $("guide-close").focus();
  }

  for (const b of document.querySelectorAll(".guide-open[data-examples]")) {
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      openGuide(b.dataset.examples);
    });
  }
  $("guide-close").addEventListener("click", () => el.guideDialog.close());
  el.guideDialog.addEventListener("keydown", (e) => {
    const n = Number(e.key);
    if (Number.isInteger(n) && n >= 1 && n <= LEVELS.length) {
      e.preventDefault();
      el.guideTabs.children[n - 1].click();
    }
  });
  // A tap anywhere outside an open guide closes it.
  document.addEventListener("click", (e) => {
    if (!e.target.closest(".dim-info, .dim-guide")) closeGuides();
  });

  function toggleGuidelines(force) {
    const open = force === undefined ? el.guidelines.hidden : force;
    el.guidelines.hidden = !open;
    el.btnGuidelines.setAttribute("aria-expanded", String(open));
    el.btnGuidelines.classList.toggle("is-active", open);
  }

  // --- lease timer --------------------------------------------------------------------------

  function renderLease() {
    const t = state.task;
    if (!t) {
      el.leaseLeft.textContent = "–";
      el.lease.classList.remove("is-warn", "is-expired");
      return;
    }
    const ms = t.expiresAt - serverNow();
    el.lease.classList.toggle("is-warn", ms > 0 && ms < 120000);
    el.lease.classList.toggle("is-expired", ms <= 0);
    if (ms <= 0) {
      if (!t.stage) forgetAnswers(t); // qualification leases wait for the candidate
      el.leaseLeft.textContent = "expired";
      el.lease.title = "Your lease ran out: a submit still counts if the image needs more ratings.";
      return;
    }
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, "0");
    el.leaseLeft.textContent = h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
    el.lease.title = `Time left on your lease of this image (until ${new Date(t.expiresAt).toLocaleTimeString()})`;
  }
  setInterval(renderLease, 1000);

  // --- image view: zoom, pan, full screen ---------------------------------------------------

  const view = { scale: 1, x: 0, y: 0, fit: true, fitScale: 1 };

  function currentImg() {
    return state.task ? state.task.img : null;
  }

  function imgSize() {
    const img = currentImg();
    if (!img) return [1, 1];
    const t = state.task.image;
    return [img.naturalWidth || t.width || 1, img.naturalHeight || t.height || 1];
  }

  function applyView() {
    const img = currentImg();
    if (!img) return;
    img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    el.zoom.textContent = view.fit ? `Fit ${Math.round(view.scale * 100)}%` : `${Math.round(view.scale * 100)}%`;
    el.stage.classList.toggle("is-zoomed", !view.fit);
  }

  function fitView() {
    const [iw, ih] = imgSize();
    const sw = el.stage.clientWidth;
    const sh = el.stage.clientHeight;
    // Keep clear of the image info (top) and the view toolbar (bottom).
    const padX = 32;
    const padTop = 44;
    const padBottom = 64;
    const s = Math.max(0.01, Math.min((sw - 2 * padX) / iw, (sh - padTop - padBottom) / ih));
    view.fitScale = s;
    view.scale = s;
    view.x = (sw - iw * s) / 2;
    view.y = padTop + (sh - padTop - padBottom - ih * s) / 2;
    view.fit = true;
    applyView();
  }

  function zoomAt(factor, cx, cy) {
    if (!currentImg()) return;
    const min = Math.min(view.fitScale * 0.5, 1);
    const max = Math.max(view.fitScale * 4, 8);
    const next = Math.min(max, Math.max(min, view.scale * factor));
    if (cx === undefined) {
      cx = el.stage.clientWidth / 2;
      cy = el.stage.clientHeight / 2;
    }
    view.x = cx - (cx - view.x) * (next / view.scale);
    view.y = cy - (cy - view.y) * (next / view.scale);
    view.scale = next;
    view.fit = false;
    applyView();
  }

  el.stage.addEventListener(
    "wheel",
    (e) => {
      if (!currentImg()) return;
      e.preventDefault();
      const r = el.stage.getBoundingClientRect();
      const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      zoomAt(Math.exp(-dy * 0.0015), e.clientX - r.left, e.clientY - r.top);
    },
    { passive: false },
  );

  let drag = null;
  el.stage.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !currentImg() || e.target.closest(".stage-tools, .overlay-card")) return;
    drag = { id: e.pointerId, x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
    el.stage.setPointerCapture(e.pointerId);
    el.stage.classList.add("is-dragging");
  });
  el.stage.addEventListener("pointermove", (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    view.x = drag.vx + (e.clientX - drag.x);
    view.y = drag.vy + (e.clientY - drag.y);
    if (Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 2) view.fit = false;
    applyView();
  });
  const endDrag = (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    drag = null;
    el.stage.classList.remove("is-dragging");
  };
  el.stage.addEventListener("pointerup", endDrag);
  el.stage.addEventListener("pointercancel", endDrag);
  el.stage.addEventListener("dblclick", (e) => {
    if (!currentImg() || e.target.closest(".stage-tools, .overlay-card")) return;
    if (!view.fit) return fitView();
    const r = el.stage.getBoundingClientRect();
    const target = view.fitScale < 1 ? 1 : view.fitScale * 2; // 1:1 pixels, or 2x a small image
    zoomAt(target / view.scale, e.clientX - r.left, e.clientY - r.top);
    view.fit = false;
    applyView();
  });

  new ResizeObserver(() => {
    if (view.fit) fitView();
  }).observe(el.stage);

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen().catch((err) => showMessage(`Full screen is not available: ${err.message}`));
    }
  }
  document.addEventListener("fullscreenchange", () => {
    el.fullscreen.setAttribute("aria-pressed", String(!!document.fullscreenElement));
    el.fullscreen.textContent = document.fullscreenElement ? "Exit full screen" : "Full screen";
  });

  $("btn-zoom-in").addEventListener("click", () => zoomAt(1.25));
  $("btn-zoom-out").addEventListener("click", () => zoomAt(0.8));
  $("btn-reset").addEventListener("click", fitView);
  el.fullscreen.addEventListener("click", toggleFullscreen);

  // --- tasks: fetch, preload, show ----------------------------------------------------------

  function prepareTask(data) {
    const img = new Image();
    img.className = "photo";
    img.alt = `Image ${data.image.id} to rate`;
    img.draggable = false;
    img.decoding = "async";
    const task = {
      assignment: data.assignment,
      image: data.image,
      expiresAt: Date.parse(data.expires_at),
      requestId: uuid4(), // once per image: a retried submit is recognised by the server
      stage: data.stage || null, // "training" or "test" while qualifying; absent otherwise
      answers: {},
      img,
      loaded: null,
      shownAt: 0,
    };
    task.loaded = new Promise((resolve) => {
      img.onload = () => resolve(true);
      img.onerror = () => resolve(false);
    });
    img.src = data.image.url; // starts the download now: preloading
    task.loaded.then((ok) => ok && img.decode && img.decode().catch(() => {}));
    return task;
  }

  async function fetchNext(exclude) {
    const q = exclude.length ? `?exclude=${exclude.join(",")}` : "";
    const data = await api("GET", cfg.urls.next + q);
    return data ? prepareTask(data) : null;
  }

  function startPreload() {
    const current = state.task;
    // undefined (not null) on failure: "unknown", so advance() asks the server again.
    state.preload = fetchNext([current.assignment]).catch(() => undefined);
  }

  function show(task) {
    state.task = task;
    el.stage.dataset.imageId = String(task.image.id);
    el.stage.dataset.assignment = String(task.assignment);
    document.body.dataset.state = "rating";
    el.layer.replaceChildren(task.img);
    const stage = task.stage ? ` · Qualification: ${task.stage}` : "";
    el.info.textContent = `Image #${task.image.id} · ${task.image.width}×${task.image.height}${stage}`;
    const restored = restoreAnswers(task);
    renderAnswers();
    ROWS.forEach((r) => r.classList.remove("is-missing"));
    renderLease();
    setEnabled(true);
    const first = restored ? nextUnanswered(DIMS.length - 1) : 0;
    focusRow(first >= 0 ? first : 0);
    if (restored) showMessage(`Your ${restored} earlier answer${restored > 1 ? "s" : ""} for this image ${restored > 1 ? "were" : "was"} restored.`, "info");
    startPreload();
    if (task.img.complete && task.img.naturalWidth) {
      // Preloaded: on screen at once.
      hideOverlay();
      fitView();
      task.shownAt = performance.now();
      return;
    }
    el.layer.hidden = true;
    const slow = setTimeout(() => state.task === task && showOverlay("Loading image…", ""), 150);
    task.loaded.then((ok) => {
      clearTimeout(slow);
      if (state.task !== task) return;
      el.layer.hidden = false;
      hideOverlay();
      fitView();
      task.shownAt = performance.now();
      if (!ok) {
        showMessage(`Image #${task.image.id} could not be loaded. Press F to flag it as broken, or S to skip.`);
      }
    });
  }

  function showEmpty() {
    state.task = null;
    state.preload = undefined;
    el.layer.replaceChildren();
    el.layer.hidden = false;
    el.info.textContent = "";
    delete el.stage.dataset.imageId;
    delete el.stage.dataset.assignment;
    document.body.dataset.state = "empty";
    renderLease();
    renderAnswers();
    setEnabled(false);
    ROWS.forEach((r) => r.classList.remove("is-current", "is-missing"));
    const today = state.progress ? state.progress.my_ratings_today : null;
    showOverlay(
      "Nothing left to rate",
      "Every image in this project that you can rate is done or being rated by someone else." +
        (today ? ` You rated ${fmt(today)} today. Thank you!` : ""),
      [
        { label: "Check again", primary: true, onClick: () => start() },
        { label: "Back to projects", href: cfg.urls.home },
      ],
    );
    focusOverlay();
    loadProject();
  }

  function focusOverlay() {
    const first = el.overlayActions.querySelector("button, a");
    if (first) first.focus();
  }

  function showLoadError(err) {
    state.task = null;
    state.preload = undefined;
    el.layer.replaceChildren();
    delete el.stage.dataset.imageId;
    delete el.stage.dataset.assignment;
    renderLease();
    setEnabled(false);
    document.body.dataset.state = "error";
    const actions = [{ label: "Try again", primary: true, onClick: () => start() }];
    if (err.status === 401) actions.unshift({ label: "Log in", primary: true, href: loginLink().href });
    actions.push({ label: "Back to projects", href: cfg.urls.home });
    ROWS.forEach((r) => r.classList.remove("is-current"));
    showOverlay("Could not load the next image", err.message, actions);
    // A candidate who did not pass: the guide of each dimension the test names.
    const missed = err.code === "not_certified" ? DIMS.filter((d) => new RegExp(`\\b${d.key}\\b`).test(err.message)) : [];
    if (missed.length) {
      el.overlayText.after(
        HB.node("div", { id: "overlay-feedback", class: "guide-missed" },
          HB.node("p", { text: "Study the guide where you missed:" }),
          missed.map((d) => guideButton(d, d.name))),
      );
    }
    focusOverlay();
  }

  async function advance() {
    const stale = [];
    let next = state.preload ? await state.preload : undefined;
    state.preload = undefined;
    if (next && next.expiresAt - serverNow() < 5000) {
      stale.push(next.assignment); // ran out while waiting: let it go, ask for a fresh one
      next = undefined;
    }
    if (!next) next = await fetchNext(stale);
    if (next) show(next);
    else showEmpty();
  }

  async function start() {
    clearMessage();
    pruneKept();
    showOverlay("Loading…", "");
    try {
      const [task] = await Promise.all([fetchNext([]), loadProject()]);
      if (task) show(task);
      else showEmpty();
    } catch (err) {
      showLoadError(err);
    }
  }

  function setEnabled(on) {
    for (const b of [el.submit, el.skip, el.flag]) b.disabled = !on;
    for (const r of ROWS) r.classList.toggle("is-disabled", !on);
  }

  // --- answers ------------------------------------------------------------------------------

  // Kept under user + project + lease: restored only into the very lease they were given for.
  const STORE_PREFIX = `hb.answers.${cfg.user}.${cfg.project.id}.`;
  const storeKey = (task) => STORE_PREFIX + task.assignment;
  const KEEP_QUALIFICATION_MS = 30 * 24 * 3600 * 1000;

  function saveAnswers() {
    const t = state.task;
    if (!t) return;
    try {
      if (Object.keys(t.answers).length) {
        const kept = { answers: t.answers, expiresAt: t.expiresAt, stage: t.stage, savedAt: Date.now() };
        localStorage.setItem(storeKey(t), JSON.stringify(kept));
      } else {
        localStorage.removeItem(storeKey(t));
      }
      state.stored = true;
    } catch (_) {
      state.stored = false; // storage full or off: the unload warning still guards them
    }
  }

  function forgetAnswers(task) {
    try {
      localStorage.removeItem(storeKey(task));
    } catch (_) {
      /* nothing was kept */
    }
  }

  /** Puts the answers kept for this lease back (only valid ones); how many it restored. */
  function restoreAnswers(task) {
    let saved;
    try {
      saved = JSON.parse(localStorage.getItem(storeKey(task)) || "null");
    } catch (_) {
      saved = null;
    }
    if (!saved || typeof saved.answers !== "object") return 0;
    for (const d of DIMS) {
      const a = saved.answers[d.key];
      if ((a === NA && d.nullable) || LEVELS.some((l) => l.number === a)) task.answers[d.key] = a;
    }
    return Object.keys(task.answers).length;
  }

  /** Drops what was kept for leases that ended (their answers can no longer be restored). */
  function pruneKept() {
    try {
      for (let i = localStorage.length - 1; i >= 0; i -= 1) {
        const k = localStorage.key(i);
        if (!k || !k.startsWith(STORE_PREFIX)) continue;
        let v = null;
        try {
          v = JSON.parse(localStorage.getItem(k));
        } catch (_) {
          /* unreadable: dropped below */
        }
        // A qualification lease waits for its candidate, but not for ever.
        const ended = v && (v.stage ? Date.now() - v.savedAt > KEEP_QUALIFICATION_MS : v.expiresAt < serverNow());
        if (!v || ended) localStorage.removeItem(k);
      }
    } catch (_) {
      /* no storage */
    }
  }

  function levelName(a) {
    return a === NA ? "not applicable" : LEVELS[a - 1].name;
  }

  function renderAnswers() {
    const answers = state.task ? state.task.answers : {};
    let n = 0;
    DIMS.forEach((d, i) => {
      const a = answers[d.key];
      const row = ROWS[i];
      if (a !== undefined) n += 1;
      row.classList.toggle("is-answered", a !== undefined);
      row.classList.toggle("is-na", a === NA);
      if (a !== undefined) row.classList.remove("is-missing");
      row.dataset.value = a === undefined ? "" : String(a);
      pressLevel(row, a);
      $(`dim-${d.key}-state`).textContent = a === undefined ? "not answered" : levelName(a);
    });
    el.answered.textContent = `${n} of ${DIMS.length} answered`;
    const complete = n === DIMS.length && !!state.task;
    el.submit.classList.toggle("is-ready", complete);
    el.answered.classList.toggle("is-complete", complete);
  }

  function focusRow(i, { scroll = true } = {}) {
    state.cursor = Math.max(0, Math.min(DIMS.length - 1, i));
    ROWS.forEach((r, j) => r.classList.toggle("is-current", j === state.cursor));
    const row = ROWS[state.cursor];
    row.focus({ preventScroll: true });
    if (scroll) row.scrollIntoView({ block: "nearest" });
  }

  function nextUnanswered(from) {
    const answers = state.task.answers;
    for (let k = 1; k <= DIMS.length; k += 1) {
      const j = (from + k) % DIMS.length;
      if (answers[DIMS[j].key] === undefined) return j;
    }
    return -1;
  }

  function choose(i, value) {
    const t = state.task;
    if (!t || state.busy) return;
    const d = DIMS[i];
    const notes = [];
    if (value === NA) {
      if (!d.nullable) {
        showMessage(`${d.name} cannot be “not applicable”: choose a level 1–${LEVELS.length}.`);
        focusRow(i);
        return;
      }
      t.answers[d.key] = NA;
      // An aggregate that is not applicable (a hidden face) makes its parts not applicable.
      const parts = d.children.filter((c) => BY_KEY[c].nullable && t.answers[c] !== NA);
      for (const c of parts) t.answers[c] = NA;
      if (parts.length) notes.push(`${d.name} is N/A, so ${parts.map((c) => BY_KEY[c].name).join(", ")} ${parts.length > 1 ? "are" : "is"} N/A too.`);
    } else {
      t.answers[d.key] = value;
      // Rating a part of an aggregate marked N/A reopens the aggregate.
      for (const p of DIMS) {
        if (p.children.includes(d.key) && t.answers[p.key] === NA) {
          delete t.answers[p.key];
          notes.push(`${p.name} was N/A; answer it again now that ${d.name} has a level.`);
        }
      }
    }
    clearMessage();
    if (notes.length) showMessage(notes.join(" "), "info");
    renderAnswers();
    saveAnswers();
    const j = nextUnanswered(i);
    if (j >= 0) focusRow(j);
    else {
      focusRow(i);
      if (!notes.length) showMessage("All answered. Press Enter to submit.", "ok");
    }
  }

  function clearAnswer(i) {
    const t = state.task;
    if (!t || state.busy) return;
    delete t.answers[DIMS[i].key];
    clearMessage();
    renderAnswers();
    saveAnswers();
  }

  ROWS.forEach((row, i) => {
    row.addEventListener("click", (e) => {
      if (e.target.closest(".dim-info")) {
        toggleGuide(i);
        focusRow(i, { scroll: false });
        return;
      }
      if (e.target.closest(".dim-guide")) return;
      const b = e.target.closest(".lvl");
      if (b) choose(i, levelValue(b));
      else focusRow(i, { scroll: false });
    });
  });

  for (const b of document.querySelectorAll("[data-na-all]")) {
    b.addEventListener("click", () => {
      const i = DIMS.findIndex((d) => d.key === b.dataset.naAll);
      if (i >= 0) choose(i, NA);
    });
  }

  // --- submit, skip, flag -------------------------------------------------------------------

  function missingDims() {
    return DIMS.filter((d) => state.task.answers[d.key] === undefined);
  }

  function handleActionError(err, what) {
    const t = state.task;
    if (err.status === 401 || (err.status === 403 && /credentials|authenticat/i.test(err.message))) {
      showMessage("Your session has ended, nothing was saved. Log in again, then come back.", "error", loginLink());
      return false;
    }
    if (err.status === 0) {
      showMessage(`Not saved: ${err.message} Press ${what === "rating" ? "Enter" : "the key"} again to retry; it will not be counted twice.`);
      return false;
    }
    // The lease can no longer take this answer (already finished, expired and full, gone):
    // say so, and move on to the next image.
    const leaseGone = err.status === 409 || err.status === 404;
    if (leaseGone && t) {
      showMessage(`${err.message} Moving on to the next image.`, "warn");
      return true;
    }
    showMessage(err.message);
    return false;
  }

  async function finish(action, okText) {
    if (!state.task || state.busy) return;
    // Busy until the next image is on screen: no answer or second submit can reach the old one.
    state.busy = true;
    document.body.classList.add("is-busy");
    const t = state.task;
    try {
      try {
        await action(t);
        forgetAnswers(t);
        clearMessage();
        toast(okText);
      } catch (err) {
        if (!handleActionError(err, okText === "Saved" ? "rating" : "skip")) return;
        forgetAnswers(t); // the lease can no longer take them
      }
      loadProject(); // refresh progress in the background
      try {
        await advance();
      } catch (err) {
        showLoadError(err);
      }
    } finally {
      state.busy = false;
      document.body.classList.remove("is-busy");
    }
  }

  function submit() {
    const t = state.task;
    if (!t || state.busy) return;
    const missing = missingDims();
    if (missing.length) {
      ROWS.forEach((r, i) => r.classList.toggle("is-missing", t.answers[DIMS[i].key] === undefined));
      const shown = missing.slice(0, 3).map((d) => d.name);
      const more = missing.length - shown.length;
      const names = shown.join(", ") + (more ? ` and ${more} more` : "");
      showMessage(
        missing.length === 1
          ? `Not submitted: 1 dimension still needs an answer: ${names}.`
          : `Not submitted: ${missing.length} dimensions still need an answer (marked in red): ${names}.`,
      );
      focusRow(DIMS.indexOf(missing[0]));
      return;
    }
    const scores = {};
    for (const d of DIMS) {
      const a = t.answers[d.key];
      scores[d.key] = a === NA ? null : LEVELS[a - 1].score;
    }
    el.submit.textContent = "Saving…";
    finish(async (task) => {
      const spent = task.shownAt ? Math.round(performance.now() - task.shownAt) : 0;
      const saved = await api("POST", url(cfg.urls.rating, task.assignment), {
        scores,
        request_id: task.requestId,
        time_spent_ms: Math.max(0, spent),
      });
      forgetAnswers(task); // saved: nothing to restore, even if the page goes during feedback
      if (saved && saved.feedback) await showFeedback(scores, saved.feedback);
      if (state.progress) {
        state.progress.my_ratings_today += 1;
        state.progress.ratings_left = Math.max(0, state.progress.ratings_left - 1);
        renderProgress();
      }
    }, "Saved").finally(() => {
      el.submit.innerHTML = "Submit <kbd>Enter</kbd>";
    });
  }

  function skip(reason, text = "") {
    const label = reason === cfg.skip_reason ? "Skipped" : `Flagged: ${(REASONS.find((r) => r.value === reason) || {}).label || reason}`;
    return finish(async (task) => {
      await api("POST", url(cfg.urls.skip, task.assignment), { reason, text });
    }, label);
  }

  function askSkip() {
    if (!state.task || state.busy) return;
    if (Object.keys(state.task.answers).length === 0) return skip(cfg.skip_reason);
    openDialog(el.skipDialog);
  }

  el.submit.addEventListener("click", submit);
  el.skip.addEventListener("click", askSkip);
  el.flag.addEventListener("click", () => openFlag());

  // --- dialogs ------------------------------------------------------------------------------

  function openDialog(d) {
    if (d.open) return;
    d.showModal();
  }

  function dialogOpen() {
    return [el.flagDialog, el.skipDialog, el.helpDialog, el.guideDialog].some((d) => d.open);
  }

  for (const d of [el.flagDialog, el.skipDialog, el.helpDialog, el.guideDialog]) {
    d.addEventListener("close", () => {
      if (state.task) focusRow(state.cursor, { scroll: false });
    });
    closeOnBackdrop(d);
  }

  // Skip confirmation (only when some answers would be lost).
  el.skipDialog.addEventListener("keydown", (e) => {
    if (e.key === "s" || e.key === "S") {
      e.preventDefault();
      el.skipDialog.close();
      skip(cfg.skip_reason);
    }
  });
  $("skip-form").addEventListener("submit", (e) => {
    e.preventDefault();
    el.skipDialog.close();
    skip(cfg.skip_reason);
  });
  $("skip-cancel").addEventListener("click", () => el.skipDialog.close());

  // Flag menu.
  const reasonInputs = Array.from(el.flagForm.querySelectorAll('input[name="reason"]'));
  const needsText = (v) => cfg.reasons_needing_text.includes(v);
  const checkedReason = () => reasonInputs.find((r) => r.checked);

  function syncFlagForm() {
    const r = checkedReason();
    const showText = r && needsText(r.value);
    el.flagTextField.hidden = !showText;
    el.flagError.hidden = true;
    for (const input of reasonInputs) input.closest(".reason").classList.toggle("is-checked", input.checked);
  }

  function selectReason(i, { focusText = true } = {}) {
    const input = reasonInputs[(i + reasonInputs.length) % reasonInputs.length];
    input.checked = true;
    syncFlagForm();
    if (needsText(input.value) && focusText) el.flagText.focus();
    else input.focus();
  }

  function openFlag() {
    if (!state.task || state.busy) return;
    reasonInputs[0].checked = true;
    el.flagText.value = "";
    syncFlagForm();
    openDialog(el.flagDialog);
    reasonInputs[0].focus();
  }

  function confirmFlag() {
    const r = checkedReason();
    if (!r) return;
    const text = el.flagText.value.trim();
    if (needsText(r.value) && !text) {
      el.flagError.hidden = false;
      el.flagError.textContent = "Say what is wrong: this reason needs a short text.";
      el.flagText.focus();
      return;
    }
    el.flagDialog.close();
    skip(r.value, needsText(r.value) ? text : "");
  }

  for (const input of reasonInputs) input.addEventListener("change", () => syncFlagForm());
  el.flagForm.addEventListener("submit", (e) => {
    e.preventDefault();
    confirmFlag();
  });
  $("flag-cancel").addEventListener("click", () => el.flagDialog.close());
  el.flagDialog.addEventListener("keydown", (e) => {
    const inText = e.target === el.flagText;
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      if (e.target.closest && e.target.closest("#flag-cancel")) el.flagDialog.close();
      else confirmFlag();
      return;
    }
    if (inText) return;
    const idx = reasonInputs.indexOf(checkedReason());
    if (/^[1-9]$/.test(e.key) && Number(e.key) <= reasonInputs.length) {
      e.preventDefault();
      selectReason(Number(e.key) - 1);
    } else if (e.key === "ArrowDown" || e.key === "ArrowRight") {
      e.preventDefault();
      selectReason(idx + 1, { focusText: false });
    } else if (e.key === "ArrowUp" || e.key === "ArrowLeft") {
      e.preventDefault();
      selectReason(idx - 1, { focusText: false });
    }
  });

  // Help.
  $("btn-help").addEventListener("click", () => openDialog(el.helpDialog));
  $("help-close").addEventListener("click", () => el.helpDialog.close());
  el.helpDialog.addEventListener("keydown", (e) => {
    if (e.key === "?") {
      e.preventDefault();
      el.helpDialog.close();
    }
  });

  // Guidelines.
  el.btnGuidelines.addEventListener("click", () => toggleGuidelines());
  $("btn-guidelines-close").addEventListener("click", () => {
    toggleGuidelines(false);
    if (state.task) focusRow(state.cursor, { scroll: false });
  });

  // --- the keyboard ---------------------------------------------------------------------------

  const LEVEL_CODES = new Map(LEVELS.map((l) => [`Digit${l.number}`, l.number]).concat(LEVELS.map((l) => [`Numpad${l.number}`, l.number])));

  function levelFromEvent(e) {
    const n = Number(e.key);
    if (Number.isInteger(n) && n >= 1 && n <= LEVELS.length && e.key.length === 1) return n;
    // Layouts whose digit row types other characters (AZERTY) still rate by the key's position.
    if (!e.shiftKey && LEVEL_CODES.has(e.code) && !/^[0-9]$/.test(e.key)) return LEVEL_CODES.get(e.code);
    return 0;
  }

  function rowIndexOf(node) {
    return node && node.classList && node.classList.contains("dim") ? ROWS.indexOf(node) : -1;
  }

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || dialogOpen() || isTyping(e.target)) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key;
    const lower = key.length === 1 ? key.toLowerCase() : key;
    const onRow = rowIndexOf(e.target) >= 0;
    const onControl = !onRow && e.target.closest && e.target.closest("button, a, summary");
    const hasTask = !!state.task;

    // Shortcuts that work with or without an image on screen.
    if (key === "?") {
      e.preventDefault();
      openDialog(el.helpDialog);
      return;
    }
    if (lower === "g") {
      e.preventDefault();
      toggleGuidelines();
      return;
    }
    if (key === "Escape") {
      closeGuides();
      if (!el.guidelines.hidden) {
        toggleGuidelines(false);
        e.preventDefault();
      }
      if (hasTask) focusRow(state.cursor, { scroll: false });
      return;
    }
    if (lower === "x") {
      e.preventDefault();
      if (!e.repeat) toggleFullscreen();
      return;
    }
    if (key === "+" || key === "=") {
      e.preventDefault();
      zoomAt(1.25);
      return;
    }
    if (key === "-" || key === "_") {
      e.preventDefault();
      zoomAt(0.8);
      return;
    }
    if (key === "0" || e.code === "Digit0" || e.code === "Numpad0") {
      e.preventDefault();
      fitView();
      return;
    }
    if (!hasTask) return;

    const level = levelFromEvent(e);
    if (level) {
      e.preventDefault();
      choose(state.cursor, level);
      return;
    }
    switch (lower) {
      case "i":
        e.preventDefault();
        toggleGuide(state.cursor);
        return;
      case "n":
        e.preventDefault();
        choose(state.cursor, NA);
        return;
      case "s":
        e.preventDefault();
        if (!e.repeat) askSkip();
        return;
      case "f":
        e.preventDefault();
        if (!e.repeat) openFlag();
        return;
      case "ArrowDown":
        e.preventDefault();
        focusRow(state.cursor + 1);
        return;
      case "ArrowUp":
        e.preventDefault();
        focusRow(state.cursor - 1);
        return;
      case "Home":
        if (onControl) return;
        e.preventDefault();
        focusRow(0);
        return;
      case "End":
        if (onControl) return;
        e.preventDefault();
        focusRow(DIMS.length - 1);
        return;
      case "Backspace":
      case "Delete":
        e.preventDefault();
        clearAnswer(state.cursor);
        return;
      case "Tab": {
        if (onControl) return; // ordinary focus order among the page's buttons
        const i = (onRow ? rowIndexOf(e.target) : state.cursor) + (e.shiftKey ? -1 : 1);
        if (onRow && (i < 0 || i >= DIMS.length)) return; // leave the list: the native order
        e.preventDefault();
        focusRow(onRow ? i : state.cursor);
        return;
      }
      case "Enter":
        if (onControl) return; // the focused button's own action
        e.preventDefault();
        if (ROWS[state.cursor].classList.contains("is-guide-open")) openGuide(DIMS[state.cursor].key);
        else if (!e.repeat) submit();
        return;
      default:
    }
  });

  // A row that gets focus by any means (mouse, screen reader, Tab from outside) becomes current.
  ROWS.forEach((row, i) => {
    row.addEventListener("focus", () => {
      if (state.cursor !== i) {
        state.cursor = i;
        ROWS.forEach((r, j) => r.classList.toggle("is-current", j === i));
      }
    });
  });

  // Leaving with answers that could not be kept locally loses them: ask first.
  window.addEventListener("beforeunload", (e) => {
    if (state.task && Object.keys(state.task.answers).length && !state.busy && !state.stored) {
      e.preventDefault();
      e.returnValue = "";
    }
  });

  // Back (a page from the back-forward cache) or a tab shown again: fresh counters.
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) loadProject();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") loadProject();
  });

  start();
})();
