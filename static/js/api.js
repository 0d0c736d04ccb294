/* HumanBeauty pages: what every page script shares. No library, no build step.
 *
 * templates/base.html loads this before the page's own scripts; it is exposed as `window.HB`.
 * `api()` speaks JSON to the REST API with the session cookie and the CSRF token, and turns
 * every failure (no connection, session ended, a refusal) into an ApiError whose message can
 * be shown as it is. The rest are small DOM helpers the pages had each written for themselves.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  // --- the REST API -------------------------------------------------------------------------

  /** Django's CSRF token: the cookie, else the page's <meta name="csrf-token"> (base.html). */
  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /** A failed call: `status` (0: no answer), `code` (the API's error code, or ""), `data` (the body). */
  class ApiError extends Error {
    constructor(status, detail, { code = "", data = null } = {}) {
      super(detail);
      this.status = status;
      this.code = code || "";
      this.data = data;
    }
  }

  /** One readable sentence from an error body: its `detail`, else the field errors. */
  function detailOf(data, resp) {
    if (data && typeof data === "object") {
      if (typeof data.detail === "string") return data.detail;
      const parts = [];
      for (const [field, msgs] of Object.entries(data)) {
        if (field === "code") continue;
        const text = Array.isArray(msgs) ? msgs.join(" ") : typeof msgs === "string" ? msgs : JSON.stringify(msgs);
        parts.push(field === "non_field_errors" ? text : `${field}: ${text}`);
      }
      if (parts.length) return parts.join(" · ");
    }
    return `The server answered ${resp.status} ${resp.statusText || ""}`.trim() + ".";
  }

  /**
   * `method` `path` with an optional JSON `body` (or a FormData, sent multipart); resolves to the parsed answer (null for an
   * empty one), rejects with an ApiError. `onResponse(resp)` sees every response that arrives,
   * refusals included, before it is read (the rater page reads the server clock from it).
   */
  async function api(method, path, body, { onResponse = null } = {}) {
    const opts = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      opts.headers["X-CSRFToken"] = csrfToken();
      if (body instanceof FormData) {
        opts.body = body; // multipart: the browser writes its Content-Type with the boundary
      } else if (body !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body);
      }
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (_) {
      throw new ApiError(0, "Cannot reach the server. Check the connection and try again.", { code: "network" });
    }
    if (onResponse) onResponse(resp);
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      if (resp.status === 401) {
        throw new ApiError(401, "Your session has ended. Log in again to continue.", { code: "not_authenticated", data });
      }
      throw new ApiError(resp.status, detailOf(data, resp), { code: data && data.code, data });
    }
    return data;
  }

  /** Every item of a paginated list, following `next` up to `cap` items. */
  async function listAll(path, cap = 1000) {
    const out = [];
    let next = path;
    while (next && out.length < cap) {
      const page = await api("GET", next);
      out.push(...page.results);
      next = page.next;
    }
    return out;
  }

  /** An API url from its pattern: "/api/x/{id}/" with the id filled in. */
  const url = (pattern, id) => pattern.replace("{id}", encodeURIComponent(id));

  // --- numbers --------------------------------------------------------------------------------

  const fmt = (n) => (typeof n === "number" ? n.toLocaleString() : "–");

  // --- the DOM ----------------------------------------------------------------------------------

  /**
   * An element: attrs `class`, `text` (its text), `dataset` (an object), `on<event>` (a
   * listener), others as attributes (null, undefined and false left out, true as ""); the
   * children are nodes, strings or numbers, in arrays or not (null, undefined, false left out).
   */
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

  /**
   * Shows `text` in the message box `el`; `kind` error, warn, info or ok. `base` is the box's
   * class: "notice" on the light pages, "message" on the dark rater and review pages. `link`
   * ({href, text}) follows the text.
   */
  function showMessage(el, text, kind = "error", { base = "notice", link = null } = {}) {
    if (!el) return;
    el.hidden = false;
    el.className = `${base} ${base}-${kind}`;
    el.textContent = text;
    if (link) el.append(" ", node("a", { href: link.href, text: link.text }));
  }

  function hideMessage(el) {
    if (!el) return;
    el.hidden = true;
    el.textContent = "";
  }

  // --- forms ------------------------------------------------------------------------------------

  /** Flat text of a field's messages (a list, a string, or messages by sub-field). */
  const messagesOf = (msgs) =>
    Array.isArray(msgs) ? msgs.map(messagesOf).join(" ") : msgs && typeof msgs === "object"
      ? Object.entries(msgs).map(([k, v]) => `${k}: ${messagesOf(v)}`).join(" ")
      : String(msgs);

  /** The API's 400 `errors` under their fields: each `[data-field=NAME]` of `form` gets its
   * messages and its inputs aria-invalid (the form's message box says them all as well). */
  function showFieldErrors(form, errors) {
    for (const el of form.querySelectorAll(".field-error")) el.remove();
    for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute("aria-invalid");
    if (!errors || typeof errors !== "object" || Array.isArray(errors)) return;
    for (const [field, msgs] of Object.entries(errors)) {
      const box = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (!box) continue;
      for (const input of box.querySelectorAll("input, select")) input.setAttribute("aria-invalid", "true");
      box.append(node("p", { class: "field-error", text: messagesOf(msgs) }));
    }
  }

  /** A form that posts JSON: disables its button while busy (its label then `data-busy`),
   * shows the server's refusal in `errorEl` and under the fields it names. */
  function jsonForm(form, { errorEl, submit, body, post, done }) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      hideMessage(errorEl);
      showFieldErrors(form, null);
      let payload;
      try {
        payload = body();
      } catch (err) {
        showMessage(errorEl, err.message, "error");
        return;
      }
      submit.disabled = true;
      const label = submit.textContent;
      submit.textContent = submit.dataset.busy || "Working…";
      try {
        const data = await post(payload);
        await done(data);
      } catch (err) {
        showMessage(errorEl, err.message || String(err), "error");
        showFieldErrors(form, err.data && err.data.errors);
      } finally {
        submit.disabled = false;
        submit.textContent = label;
      }
    });
  }

  /** The number in an <input>, or null when it is empty; a clear error when it is not one
   * (`integer`: a whole number). */
  function numberField(input, label, { integer = true } = {}) {
    const raw = input.value.trim();
    if (raw === "") return null;
    const v = Number(raw);
    if (integer ? !Number.isInteger(v) : !Number.isFinite(v)) {
      throw new Error(`${label} must be a ${integer ? "whole " : ""}number.`);
    }
    return v;
  }

  const toastTimers = new WeakMap();

  /** A short note in `el` that fades out by itself. */
  function toast(el, text) {
    el.textContent = text;
    el.hidden = false;
    el.classList.remove("is-leaving");
    clearTimeout(toastTimers.get(el));
    toastTimers.set(
      el,
      setTimeout(() => {
        el.classList.add("is-leaving");
        toastTimers.set(el, setTimeout(() => (el.hidden = true), 250));
      }, 1400),
    );
  }

  /**
   * The stage overlay of the rater and review pages (`el.overlay`, `el.overlayTitle`,
   * `el.overlayText`, `el.overlayActions`): a title, a text, and buttons or links
   * ({label, primary, href | onClick}).
   */
  function showOverlay(el, title, text, actions = []) {
    el.overlay.hidden = false;
    el.overlayTitle.textContent = title;
    el.overlayText.textContent = text;
    el.overlayActions.replaceChildren(
      ...actions.map((a) => {
        const n = node(a.href ? "a" : "button", { class: "btn " + (a.primary ? "btn-primary" : ""), text: a.label });
        if (a.href) n.href = a.href;
        else {
          n.type = "button";
          n.addEventListener("click", a.onClick);
        }
        return n;
      }),
    );
  }

  /** A click on the backdrop of the <dialog> (outside its card) closes it. */
  function closeOnBackdrop(dialog) {
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) dialog.close();
    });
  }

  /** Whether a keystroke on `t` is typing (so it is no shortcut). */
  const isTyping = (t) => t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));

  // --- the level buttons (templates/annotation/_level_buttons.html) -----------------------------

  const NA = "na"; // a dimension's answer "not applicable"

  /** The answer a level button stands for: its level number, or NA. */
  const levelValue = (b) => (b.dataset.level === NA ? NA : Number(b.dataset.level));

  /** Marks the level button of `value` pressed in a dimension's row, the others not. */
  function pressLevel(row, value) {
    for (const b of row.querySelectorAll(".lvl")) b.setAttribute("aria-pressed", String(levelValue(b) === value));
  }

  window.HB = {
    $,
    csrfToken,
    ApiError,
    detailOf,
    api,
    listAll,
    url,
    fmt,
    node,
    showMessage,
    hideMessage,
    showFieldErrors,
    jsonForm,
    numberField,
    toast,
    showOverlay,
    closeOnBackdrop,
    isTyping,
    NA,
    levelValue,
    pressLevel,
  };
})();
