// Bastion's pages: the one form helper every page uses (no inline script anywhere: CSP).
//
// <form data-api="/api/auth/sign-in/email" data-next="/playground" method="post">
//   posts the form's named fields as JSON (checkboxes as booleans; data-optional fields
//   left out when empty; names starting with "_" never sent), same-origin credentials.
//   On an error: the server's `message` in the form's [role=alert], the typed values kept,
//   passwords cleared. On success: `bastion:success` is dispatched (cancelable), then a
//   two-factor challenge, the answer's `url` (when it says `redirect`), data-next, or
//   data-done (a message shown in the form's [role=status]), or data-reload.
// A submit button may name its own data-api, data-fields ("email,type": only those),
// data-next and data-done: one form, several steps (send a code, then verify it).
// data-method="DELETE"/"GET"...: GET sends the fields as the query.
"use strict";
(() => {
  const GENERIC = {
    0: "The server could not be reached. Check your connection and try again.",
    429: "Too many attempts. Wait a moment and try again.",
    500: "Something went wrong on the server. Try again in a moment.",
  };

  function messageOf(status, body) {
    if (body && typeof body.message === "string" && body.message.trim()) return body.message;
    if (GENERIC[status]) return GENERIC[status];
    if (status >= 500) return GENERIC[500];
    return "That did not work. Check what you entered and try again.";
  }

  function valuesOf(form, only) {
    const out = {};
    for (const el of form.elements) {
      const name = el.name;
      if (!name || name.startsWith("_") || el.disabled) continue;
      if (only && !only.includes(name)) continue;
      if (el.type === "submit" || el.type === "button" || el.type === "reset") continue;
      if (el.type === "checkbox") out[name] = el.checked;
      else if (el.type === "radio") { if (el.checked) out[name] = el.value; }
      else if (el.value === "" && "optional" in el.dataset) continue;
      else if (el.dataset.type === "number") out[name] = Number(el.value);
      else out[name] = el.value;
    }
    return out;
  }

  function show(el, text) {
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  function mismatch(form) {
    for (const el of form.querySelectorAll("[data-same-as]")) {
      const other = form.elements[el.dataset.sameAs];
      if (other && other.value !== el.value) return el.dataset.mismatch || "The two entries do not match.";
    }
    return "";
  }

  // The submit button's data-<name> when it has one (even empty), else the form's.
  function attr(submitter, form, name) {
    if (submitter && name in submitter.dataset) return submitter.dataset[name];
    return form.dataset[name] || "";
  }

  async function send(form, submitter) {
    const alert = form.querySelector("[role=alert]");
    const status = form.querySelector("[role=status]");
    show(alert, "");
    show(status, "");
    const problem = mismatch(form);
    if (problem) {
      show(alert, problem);
      return;
    }
    const limited = (submitter && "fields" in submitter.dataset) || "fields" in form.dataset;
    const only = limited ? attr(submitter, form, "fields").split(",").map((s) => s.trim()).filter(Boolean) : null;
    const body = valuesOf(form, only);
    const method = (form.dataset.method || "POST").toUpperCase();
    let url = attr(submitter, form, "api");
    const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
    if (method === "GET") url += (url.includes("?") ? "&" : "?") + new URLSearchParams(body);
    else {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    form.setAttribute("aria-busy", "true");
    let response = null;
    let data = null;
    try {
      response = await fetch(url, init);
      const text = await response.text();
      try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    } catch {
      response = null;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      form.removeAttribute("aria-busy");
    }
    if (!response || !response.ok) {
      // Keep what was typed, except passwords.
      form.querySelectorAll("input[type=password]").forEach((p) => { p.value = ""; });
      show(alert, messageOf(response ? response.status : 0, data));
      form.dispatchEvent(new CustomEvent("bastion:error", { detail: data, bubbles: true }));
      return;
    }
    const event = new CustomEvent("bastion:success", { detail: data, bubbles: true, cancelable: true });
    if (!form.dispatchEvent(event)) return;
    const next = attr(submitter, form, "next");
    if (data && data.twoFactorRedirect) {
      const query = new URLSearchParams({ next: next || "/" });
      if (Array.isArray(data.twoFactorMethods)) query.set("methods", data.twoFactorMethods.join(","));
      window.location.assign("/two-factor?" + query);
      return;
    }
    if (data && data.redirect && typeof data.url === "string") {
      window.location.assign(data.url);
      return;
    }
    const done = attr(submitter, form, "done");
    if (done) {
      show(status, done);
      const reveal = attr(submitter, form, "reveal");
      if (reveal) document.querySelectorAll(reveal).forEach((el) => { el.hidden = false; });
      return;
    }
    if (next) window.location.assign(next);
    else if ("reload" in form.dataset) window.location.reload();
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.api) return;
    event.preventDefault();
    send(form, event.submitter);
  });

  // Our forms need this script; the page says so until it runs.
  document.documentElement.classList.add("js");
})();
