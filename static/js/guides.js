/* HumanBeauty guides page: a project's managers edit each dimension's definition and level
 * lines and pin example images (the project's gold and training items) to a level.
 *
 * Everything comes from and goes to the guides API (annotation/guides_api.py); the page's
 * JSON config gives its addresses and the levels.
 */
(() => {
  "use strict";

  const HB = window.HB;
  const { $, node, url } = HB;
  const cfg = JSON.parse($("guides-config").textContent);

  const el = {
    root: $("guides"),
    message: $("message"),
    pinDialog: $("pin-dialog"),
    pinWhere: $("pin-where"),
    pinError: $("pin-error"),
    candidates: $("candidates"),
  };
  let candidates = null; // the gold and training images, fetched when first needed
  let pinning = null; // {key, level} the pin dialog is for

  const say = (text, kind = "ok") => HB.showMessage(el.message, text, kind);

  function loginLink() {
    return { href: `${cfg.urls.login}?next=${encodeURIComponent(location.pathname)}`, text: "Log in" };
  }

  function fail(err) {
    HB.showMessage(el.message, err.message, "error", { link: err.status === 401 ? loginLink() : null });
  }

  function levelRow(d, l) {
    const id = `g-${d.key}-${l.level}`;
    const examples = l.examples.map((e) =>
      node("span", { class: "example-thumb" },
        node("img", { src: e.url, alt: `Example of ${l.level} ${d.name}`, loading: "lazy" }),
        node("button", {
          type: "button",
          class: "btn btn-xs",
          "aria-label": `Unpin this example of ${l.level} ${d.name}`,
          text: "Unpin",
          onclick: () => unpin(e.id),
        })),
    );
    return node("div", { class: "level-row" },
      node("label", { for: id, text: `${l.number} ${l.level}` }),
      node("textarea", { id, name: l.level, rows: 2, maxlength: 300, dataset: { level: l.level } }),
      node("div", { class: "level-examples" },
        examples,
        node("button", {
          type: "button",
          class: "btn btn-sm",
          text: "Pin an example…",
          "aria-label": `Pin an example of ${l.level} ${d.name}`,
          onclick: () => openPin(d, l.level),
        })),
    );
  }

  function card(d) {
    const def = `g-${d.key}-definition`;
    const form = node("form", { class: "card guide-card", id: `guide-${d.key}`, novalidate: true },
      node("h2", {}, d.name, d.custom.length ? node("span", { class: "is-custom", text: " · edited for this project" }) : null),
      node("label", { for: def, text: "Definition" }),
      node("textarea", { id: def, name: "definition", rows: 2, maxlength: 600 }),
      d.levels.map((l) => levelRow(d, l)),
      node("div", { class: "dialog-actions" },
        node("button", { type: "submit", class: "btn btn-primary", text: `Save ${d.name}` })),
    );
    form.elements.definition.value = d.definition;
    for (const l of d.levels) form.querySelector(`textarea[data-level="${l.level}"]`).value = l.description;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      save(d, form);
    });
    return form;
  }

  function render(data) {
    el.root.replaceChildren(...data.dimensions.map(card));
    el.root.removeAttribute("aria-busy");
    document.body.dataset.ready = "true";
  }

  async function load() {
    try {
      render(await HB.api("GET", cfg.urls.guides));
    } catch (err) {
      el.root.replaceChildren();
      fail(err);
    }
  }

  async function save(d, form) {
    const levels = {};
    for (const t of form.querySelectorAll("textarea[data-level]")) levels[t.dataset.level] = t.value;
    const body = { dimensions: { [d.key]: { definition: form.elements.definition.value, levels } } };
    try {
      render(await HB.api("PATCH", cfg.urls.guides, body));
      say(`Saved the guide to ${d.name}.`);
      $(`guide-${d.key}`).scrollIntoView({ block: "nearest" });
    } catch (err) {
      fail(err);
    }
  }

  async function openPin(d, level) {
    pinning = { key: d.key, level };
    el.pinWhere.textContent = `${d.name}: ${level}. Choose a gold or training image of this project.`;
    el.pinError.hidden = true;
    el.pinDialog.showModal();
    if (!candidates) {
      try {
        candidates = await HB.api("GET", cfg.urls.examples);
      } catch (err) {
        el.pinError.hidden = false;
        el.pinError.textContent = err.message;
        return;
      }
    }
    el.candidates.replaceChildren(
      ...(candidates.length
        ? candidates.map((c) =>
            node("button", {
              type: "button",
              title: `Image #${c.image} (${c.kind})`,
              "aria-label": `Image #${c.image} (${c.kind})`,
              dataset: { image: c.image },
              onclick: () => pin(c.image),
            }, node("img", { src: c.url, alt: "", loading: "lazy" }), node("small", { text: `#${c.image} ${c.kind}` })),
          )
        : [node("p", { class: "muted", text: "This project has no gold or training items yet: add references first." })]),
    );
  }

  async function pin(image) {
    try {
      await HB.api("POST", cfg.urls.examples, { dimension: pinning.key, level: pinning.level, image });
      el.pinDialog.close();
      say("Example pinned.");
      load();
    } catch (err) {
      el.pinError.hidden = false;
      el.pinError.textContent = err.message;
    }
  }

  async function unpin(id) {
    try {
      await HB.api("DELETE", url(cfg.urls.example, id));
      say("Example unpinned.");
      load();
    } catch (err) {
      fail(err);
    }
  }

  $("pin-cancel").addEventListener("click", () => el.pinDialog.close());
  HB.closeOnBackdrop(el.pinDialog);
  load();
})();
