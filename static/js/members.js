/* The members page (templates/annotation/members.html) and the invitation page
 * (templates/annotation/invitation.html), both through the REST API only
 * (annotation/members_api.py; certification through the quality API's rater status).
 */
(() => {
  "use strict";

  const { $, api, node, showMessage, hideMessage } = window.HB;

  const configOf = (id) => {
    const el = $(id);
    return el ? JSON.parse(el.textContent) : null;
  };

  /** Disables `button` while `work` runs; its refusal goes to the message box. The works below
   * reload the list before they say what happened, so that a tap after the message lands on
   * the rows that stay. */
  async function busy(button, message, work) {
    hideMessage(message);
    if (button) button.disabled = true;
    try {
      return await work();
    } catch (err) {
      showMessage(message, err.message || String(err), "error");
      return undefined;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // --- the members page ----------------------------------------------------------------------

  function membersPage(cfg) {
    const message = $("message");
    const fill = (pattern, username) => pattern.replace("{username}", encodeURIComponent(username));
    const ratingRoles = new Set(cfg.rating_roles);
    const grantable = (role) => !role.platform || cfg.may_grant_platform_roles;

    function roleOptions(select, current) {
      select.replaceChildren(
        ...cfg.roles.map((r) =>
          node(
            "option",
            { value: r.value, selected: r.value === current, disabled: !grantable(r) && r.value !== current },
            r.platform && !cfg.may_grant_platform_roles ? `${r.value} (platform admins only)` : r.value,
          ),
        ),
      );
    }
    for (const sel of document.querySelectorAll(".role-select")) roleOptions(sel, "annotator");

    function memberRow(m) {
      const mine = m.username === cfg.me;
      const platformHeld = cfg.roles.some((r) => r.value === m.role && r.platform);
      const locked = mine || (platformHeld && !cfg.may_grant_platform_roles);
      const role = node("select", { class: "select-sm", "aria-label": `Role of ${m.username}`, disabled: locked });
      roleOptions(role, m.role);
      role.addEventListener("change", async () => {
        const done = await busy(role, message, async () => {
          await api("PATCH", fill(cfg.urls.member, m.username), { role: role.value });
          await load();
          showMessage(message, `${m.username} is now ${role.value}.`, "ok");
          return true;
        });
        if (!done) role.value = m.role; // refused: show what still holds
      });

      let status = node("span", { class: "muted", text: "does not rate" });
      if (ratingRoles.has(m.role)) {
        status = node("select", { class: "select-sm", "aria-label": `Certification of ${m.username}`, disabled: mine });
        status.append(...cfg.statuses.map((s) => node("option", { value: s, selected: s === m.status }, s)));
        status.addEventListener("change", async () => {
          const done = await busy(status, message, async () => {
            await api("POST", fill(cfg.urls.rater_status, m.username), { status: status.value, reason: "" });
            await load();
            showMessage(message, `${m.username} is now ${status.value}.`, "ok");
            return true;
          });
          if (!done) status.value = m.status;
        });
      }

      const remove = node("button", { type: "button", class: "btn btn-sm btn-danger-quiet", disabled: locked }, "Remove");
      remove.addEventListener("click", () => {
        if (remove.dataset.armed !== "1") {
          // A second tap confirms: no dialog to dismiss on a phone.
          remove.dataset.armed = "1";
          remove.textContent = `Remove ${m.username}?`;
          return;
        }
        busy(remove, message, async () => {
          const done = await api("DELETE", fill(cfg.urls.member, m.username));
          const leases = done.leases_released ? ` (${done.leases_released} open lease(s) ended)` : "";
          await load();
          showMessage(message, `${m.username} was removed${leases}.`, "ok");
        });
      });

      return node(
        "li",
        { class: "member", dataset: { username: m.username } },
        node(
          "div",
          { class: "member-who" },
          node("strong", { class: "member-name", text: m.username }),
          mine ? node("span", { class: "badge", text: "you" }) : null,
          m.excluded ? node("span", { class: "badge badge-warn", title: m.exclusion_reason, text: "excluded from consensus" }) : null,
          m.live_leases ? node("span", { class: "muted member-leases", text: `${m.live_leases} open lease(s)` }) : null,
        ),
        node("label", { class: "member-field" }, node("span", { class: "member-label", text: "Role" }), role),
        node("label", { class: "member-field" }, node("span", { class: "member-label", text: "Certification" }), status),
        node("div", { class: "member-actions" }, remove),
      );
    }

    function pendingRow(inv) {
      const revoke = node("button", { type: "button", class: "btn btn-xs btn-quiet" }, "Revoke");
      revoke.addEventListener("click", () =>
        busy(revoke, message, async () => {
          await api("DELETE", cfg.urls.invitation.replace("{id}", inv.id));
          await loadPending();
          showMessage(message, "The link was revoked.", "ok");
        }),
      );
      const until = new Date(inv.expires_at).toLocaleDateString();
      return node("li", {}, node("span", { text: `${inv.role}, by ${inv.created_by || "?"}, until ${until}` }), revoke);
    }

    async function load() {
      const rows = await api("GET", cfg.urls.members);
      $("members-count").textContent = `(${rows.length})`;
      $("members").replaceChildren(...(rows.length ? rows.map(memberRow) : [node("li", { class: "muted", text: "Nobody yet." })]));
    }

    async function loadPending() {
      const rows = await api("GET", cfg.urls.invitations);
      $("pending").replaceChildren(...(rows.length ? rows.map(pendingRow) : [node("li", { class: "muted", text: "None." })]));
    }

    $("add-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const username = $("add-username").value.trim();
      if (!username) {
        showMessage(message, "Type the username of the person to add.", "error");
        return;
      }
      busy($("add-submit"), message, async () => {
        const m = await api("POST", cfg.urls.members, { username, role: $("add-role").value });
        $("add-username").value = "";
        await load();
        showMessage(message, `${m.username} was added as ${m.role}.`, "ok");
      });
    });

    $("invite-form").addEventListener("submit", (e) => {
      e.preventDefault();
      busy($("invite-submit"), message, async () => {
        const inv = await api("POST", cfg.urls.invitations, {
          role: $("invite-role").value,
          days: Number($("invite-days").value) || 7,
        });
        $("invite-url").value = inv.url;
        $("invite-link").hidden = false;
        $("invite-url").select();
        await loadPending();
      });
    });

    $("invite-copy").addEventListener("click", async () => {
      $("invite-url").select();
      try {
        await navigator.clipboard.writeText($("invite-url").value);
        showMessage(message, "The link is copied.", "ok");
      } catch (_) {
        showMessage(message, "Copy the selected link by hand.", "info");
      }
    });

    Promise.all([load(), loadPending()]).catch((err) => showMessage(message, err.message, "error"));
  }

  // --- the invitation page --------------------------------------------------------------------

  function invitationPage(cfg) {
    const message = $("message");
    const form = $("join-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = cfg.logged_in ? {} : { username: $("join-username").value.trim(), password: $("join-password").value };
      busy($("join-submit"), message, async () => {
        const joined = await api("POST", cfg.urls.accept, body);
        showMessage(message, `Welcome, ${joined.username}: you are in as ${joined.role}.`, "ok");
        window.location.assign(joined.next);
      });
    });
  }

  const members = configOf("members-config");
  if (members) membersPage(members);
  const invitation = configOf("invitation-config");
  if (invitation) invitationPage(invitation);
})();
