// keyplane dashboard: dialogs and calls to the key-management API (cookie + X-CSRF-Token).
// Everything shown comes from the server as text (textContent), never as HTML.
"use strict";

(function () {
  const page = document.getElementById("keys-page");
  const flashKey = "keyplane-flash";

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash " + (kind || "success");
  }

  function flashAfterReload(message) {
    sessionStorage.setItem(flashKey, message);
    window.location.reload();
  }

  async function api(method, url, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      return { ok: false, status: 0, data: { error: "network", message: "The server could not be reached; check your connection and try again." } };
    }
    let data = {};
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = {}; }
    }
    if (response.status === 401 && (data.error === "missing_authorization")) {
      data.message = "Your session has expired. Sign in again in another tab, then retry: nothing you entered is lost.";
    }
    return { ok: response.ok, status: response.status, data: data };
  }

  function showError(element, message) {
    element.textContent = message;
    element.hidden = false;
  }

  // Dialogs: Cancel buttons close; focus returns to the button that opened the dialog.
  let opener = null;
  function openDialog(dialog, from) {
    opener = from || document.activeElement;
    dialog.showModal();
  }
  document.querySelectorAll("dialog").forEach(function (dialog) {
    dialog.querySelectorAll("[data-close]").forEach(function (button) {
      button.addEventListener("click", function () { dialog.close(); });
    });
    dialog.addEventListener("close", function () {
      if (opener && document.body.contains(opener)) opener.focus();
    });
  });

  // Forms that need a confirmation (removing a member) ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  const pending = sessionStorage.getItem(flashKey);
  if (pending) {
    sessionStorage.removeItem(flashKey);
    flash(pending, "success");
  }

  const playbook = document.getElementById("playbook");
  if (playbook) { setUpPlaybook(playbook); return; }

  // --- a key's "Compromised?" page: revoke, replace (rotate or copy), one-time secret -------
  function setUpPlaybook(root) {
    const base = root.dataset.api + "/" + encodeURIComponent(root.dataset.keyId);
    const secretDialog = document.getElementById("secret-dialog");
    const secretInput = document.getElementById("new-secret");
    let working = false; // one request at a time: a double click never issues two keys
    let created = false;

    function showNewSecret(secret, from) {
      created = true;
      secretInput.value = secret;
      document.getElementById("copy-status").textContent = "";
      openDialog(secretDialog, from);
      secretInput.focus();
      secretInput.select();
    }
    secretDialog.addEventListener("close", function () {
      secretInput.value = "";
      if (created) flashAfterReload("Replacement created. Deploy its secret to the systems listed under step 2.");
    });
    secretDialog.addEventListener("cancel", function (event) {
      if (!window.confirm("Close without copying? The secret will not be shown again.")) event.preventDefault();
    });
    document.getElementById("copy-new-secret").addEventListener("click", async function () {
      const ok = await copyText(secretInput.value);
      document.getElementById("copy-status").textContent = ok ? "Copied to the clipboard." : "Copy failed: select the secret and copy it by hand.";
    });

    async function issue(form, submit, errorBox, call) {
      if (working) return;
      working = true; submit.disabled = true; errorBox.hidden = true;
      const result = await call();
      working = false; submit.disabled = false;
      if (!result.ok) { showError(errorBox, result.data.message || "That failed; try again."); return; }
      showNewSecret(result.data.secret, submit);
    }

    const replaceForm = document.getElementById("replace-form");
    const graceSelect = document.getElementById("grace");
    if (graceSelect) graceSelect.addEventListener("change", function () {
      // With a grace period this is a planned rotation, not an emergency stop.
      document.getElementById("replace-submit").textContent = graceSelect.value === "0" ? "Revoke and replace" : "Rotate";
    });
    if (replaceForm) replaceForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const grace = Number(document.getElementById("grace").value);
      issue(replaceForm, document.getElementById("replace-submit"), document.getElementById("replace-error"), function () {
        return api("POST", base + "/rotate", { grace_seconds: grace });
      });
    });

    const copyForm = document.getElementById("copy-form");
    if (copyForm) copyForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const body = JSON.parse(root.dataset.copy);
      issue(copyForm, document.getElementById("copy-submit"), document.getElementById("copy-error"), function () {
        return api("POST", root.dataset.api, body);
      });
    });

    const revokeButton = document.getElementById("revoke-now");
    const revokeDialog = document.getElementById("revoke-dialog");
    if (revokeButton) revokeButton.addEventListener("click", function () {
      document.getElementById("revoke-error").hidden = true;
      openDialog(revokeDialog, revokeButton);
      document.getElementById("revoke-submit").focus();
    });
    document.getElementById("revoke-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      if (working) return;
      const submit = document.getElementById("revoke-submit");
      working = true; submit.disabled = true;
      const result = await api("DELETE", base);
      working = false; submit.disabled = false;
      if (!result.ok && result.status !== 404) {
        showError(document.getElementById("revoke-error"), result.data.message || "Could not revoke the key.");
        return;
      }
      revokeDialog.close();
      flashAfterReload("Revoked “" + root.dataset.name + "”. Requests with it now fail with 401.");
    });
  }

  if (!page) return;
  const apiBase = page.dataset.api;
  const kind = page.dataset.kind;
  const orgId = page.dataset.org;

  // --- permission picker: checking a permission checks and locks what it implies ----------
  const keyDialog = document.getElementById("key-dialog");
  const keyForm = document.getElementById("key-form");
  const keyError = document.getElementById("key-error");
  const boxes = Array.from(keyForm.querySelectorAll('input[name="permissions"]'));
  let editing = null; // the row being edited, or null when creating

  function implied(box) {
    return (box.dataset.implies || "").split(" ").filter(Boolean);
  }

  function syncLocks() {
    const required = new Set();
    boxes.forEach(function (box) {
      if (box.checked && !box.dataset.lockedBy) implied(box).forEach(function (p) { required.add(p); });
    });
    // Closure: something locked may itself imply more.
    let grew = true;
    while (grew) {
      grew = false;
      boxes.forEach(function (box) {
        if (required.has(box.value)) implied(box).forEach(function (p) {
          if (!required.has(p)) { required.add(p); grew = true; }
        });
      });
    }
    boxes.forEach(function (box) {
      const note = box.parentElement.querySelector(".locked-note");
      const notHeld = box.parentElement.hasAttribute("data-not-held");
      if (required.has(box.value)) {
        box.checked = true;
        box.disabled = true;
        box.dataset.lockedBy = "1";
        note.hidden = false;
      } else {
        delete box.dataset.lockedBy;
        box.disabled = notHeld;
        note.hidden = true;
      }
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", syncLocks); });

  function chosen() {
    return boxes.filter(function (box) { return box.checked; }).map(function (box) { return box.value; });
  }

  function resetPicker(selected) {
    const set = new Set(selected);
    boxes.forEach(function (box) {
      delete box.dataset.lockedBy;
      box.checked = set.has(box.value);
      const row = box.parentElement;
      const notHeld = row.hasAttribute("data-not-held");
      // A permission you do not hold is never offered; when editing a key that holds one,
      // it is shown checked and cannot be changed by you.
      row.hidden = notHeld && !set.has(box.value);
      box.disabled = notHeld;
    });
    keyForm.querySelectorAll(".perm-group").forEach(function (group) {
      const visible = Array.from(group.querySelectorAll(".perm")).some(function (r) { return !r.hidden; });
      group.hidden = !visible;
    });
    syncLocks();
  }

  function openKeyDialog(row, from) {
    editing = row;
    keyError.hidden = true;
    const title = document.getElementById("key-dialog-title");
    const submit = document.getElementById("key-submit");
    keyForm.querySelectorAll(".create-only").forEach(function (el) { el.hidden = !!row; });
    if (row) {
      title.textContent = "Edit API Key";
      submit.textContent = "Update Permissions";
      document.getElementById("key-name").value = row.dataset.name;
      resetPicker(row.dataset.permissions.split(" ").filter(Boolean));
    } else {
      title.textContent = "Create API Key";
      submit.textContent = "Create Key";
      keyForm.reset();
      resetPicker([]);
    }
    openDialog(keyDialog, from);
    document.getElementById("key-name").focus();
  }

  const createButton = document.getElementById("create-key");
  if (createButton) createButton.addEventListener("click", function () { openKeyDialog(null, createButton); });

  let busy = false; // one request at a time: a double click never creates two keys
  keyForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (busy) return;
    const name = document.getElementById("key-name").value.trim();
    if (!name) { showError(keyError, "Give the key a name that says what it is for."); return; }
    const permissions = chosen();
    if (!editing && permissions.length === 0) { showError(keyError, "Pick at least one permission."); return; }
    const submit = document.getElementById("key-submit");
    busy = true; submit.disabled = true;
    let result;
    if (editing) {
      result = await api("PATCH", apiBase + "/" + encodeURIComponent(editing.dataset.keyId), { name: name, permissions: permissions });
    } else {
      const body = { name: name, permissions: permissions, mode: document.getElementById("key-mode").value };
      const days = document.getElementById("key-expiry").value;
      if (days) body.expires_at = new Date(Date.now() + Number(days) * 86400000).toISOString();
      if (kind === "user" && orgId) body.org_id = Number(orgId);
      result = await api("POST", apiBase, body);
    }
    busy = false; submit.disabled = false;
    if (!result.ok) { showError(keyError, result.data.message || "The change failed; try again."); return; }
    if (editing) {
      keyDialog.close();
      flashAfterReload("Saved “" + result.data.name + "”. The change applies to the very next request.");
      return;
    }
    keyDialog.close();
    showSecret(result.data.secret);
  });

  // --- the one-time secret ----------------------------------------------------------------
  const secretDialog = document.getElementById("secret-dialog");
  const secretInput = document.getElementById("new-secret");
  function showSecret(secret) {
    secretInput.value = secret;
    document.getElementById("copy-status").textContent = "";
    openDialog(secretDialog, createButton);
    secretInput.focus();
    secretInput.select();
  }
  secretDialog.addEventListener("close", function () {
    // Nothing of the secret may stay in the page once the dialog is closed.
    secretInput.value = "";
    flashAfterReload("API key created. Its secret is no longer shown; use the eye icon to reveal it again.");
  });
  secretDialog.addEventListener("cancel", function (event) {
    // Escape closes it too, but the secret must not vanish unnoticed: ask first.
    if (!window.confirm("Close without copying? The secret will not be shown again.")) event.preventDefault();
  });

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* fall back */ }
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.value = "";
    area.remove();
    return ok;
  }

  document.getElementById("copy-new-secret").addEventListener("click", async function () {
    const ok = await copyText(secretInput.value);
    document.getElementById("copy-status").textContent = ok ? "Copied to the clipboard." : "Copy failed: select the secret and copy it by hand.";
  });

  // --- reveal and copy an existing secret (password within 5 minutes, audited) -----------
  const reauthDialog = document.getElementById("reauth-dialog");
  const reauthForm = document.getElementById("reauth-form");
  const reauthError = document.getElementById("reauth-error");
  let afterReauth = null;

  async function reveal(row, password) {
    const body = password === undefined ? undefined : { password: password };
    return api("POST", apiBase + "/" + encodeURIComponent(row.dataset.keyId) + "/reveal", body);
  }

  async function withSecret(row, from, use) {
    const result = await reveal(row);
    if (result.ok) { use(result.data.secret); return; }
    if (result.data.error === "reauthentication_required") {
      afterReauth = { row: row, use: use };
      reauthError.hidden = true;
      reauthForm.reset();
      openDialog(reauthDialog, from);
      document.getElementById("reauth-password").focus();
      return;
    }
    flash(result.data.message || "Could not reveal the secret.", "error");
  }

  reauthForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (!afterReauth || busy) return;
    busy = true;
    const password = document.getElementById("reauth-password").value;
    const result = await reveal(afterReauth.row, password);
    busy = false;
    if (!result.ok) {
      showError(reauthError, result.status === 401 && result.data.error === "invalid_credentials" ? "Wrong password; try again." : (result.data.message || "Could not confirm."));
      return;
    }
    const pendingUse = afterReauth.use;
    afterReauth = null;
    reauthForm.reset();
    reauthDialog.close();
    pendingUse(result.data.secret);
  });

  function hide(row) {
    const code = row.querySelector("code.secret");
    const button = row.querySelector("button.reveal");
    code.textContent = code.dataset.masked;
    code.classList.remove("shown");
    code.setAttribute("aria-label", "Secret hidden, ends in " + code.dataset.masked.slice(-4));
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", "Reveal secret of " + row.dataset.name);
  }

  page.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button) return;
    const row = button.closest("tr[data-key-id]");
    if (!row) return;
    if (button.classList.contains("reveal")) {
      if (button.getAttribute("aria-pressed") === "true") { hide(row); return; }
      withSecret(row, button, function (secret) {
        const code = row.querySelector("code.secret");
        code.textContent = secret;
        code.classList.add("shown");
        code.removeAttribute("aria-label");
        button.setAttribute("aria-pressed", "true");
        button.setAttribute("aria-label", "Hide secret of " + row.dataset.name);
      });
    } else if (button.classList.contains("copy")) {
      withSecret(row, button, async function (secret) {
        const ok = await copyText(secret);
        flash(ok ? "Secret of “" + row.dataset.name + "” copied to the clipboard." : "Copy failed; use the eye icon and copy by hand.", ok ? "success" : "error");
      });
    } else if (button.classList.contains("edit")) {
      openKeyDialog(row, button);
    } else if (button.classList.contains("delete")) {
      deleting = row;
      document.getElementById("delete-name").textContent = row.dataset.name;
      document.getElementById("delete-error").hidden = true;
      openDialog(deleteDialog, button);
      document.getElementById("delete-submit").focus();
    }
  });

  // --- delete with confirmation -----------------------------------------------------------
  const deleteDialog = document.getElementById("delete-dialog");
  let deleting = null;
  document.getElementById("delete-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    if (!deleting || busy) return;
    busy = true;
    const submit = document.getElementById("delete-submit");
    submit.disabled = true;
    const result = await api("DELETE", apiBase + "/" + encodeURIComponent(deleting.dataset.keyId));
    busy = false; submit.disabled = false;
    if (!result.ok && result.status !== 404) {
      showError(document.getElementById("delete-error"), result.data.message || "Could not delete the key.");
      return;
    }
    const name = deleting.dataset.name;
    deleting = null;
    deleteDialog.close();
    flashAfterReload("Deleted “" + name + "”. Requests with it now fail with 401.");
  });
})();
