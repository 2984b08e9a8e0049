// The account and organization pages' steps beyond app.js's form helper (no inline script:
// CSP). Each hooks a form's "bastion:success" event, which app.js dispatches with the answer.
"use strict";
(() => {
  function fill(list, codes) {
    list.replaceChildren(...codes.map((code) => {
      const item = document.createElement("li");
      const text = document.createElement("code");
      text.textContent = code;
      item.append(text);
      return item;
    }));
  }

  function say(form, role, text) {
    const el = form.querySelector(`[role=${role}]`);
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  // Two-factor set-up: /two-factor/enable answered {totpURI, backupCodes}; the server draws
  // the QR code (segno, SVG) and the page shows it, the key, the codes and the verify step.
  async function totpSetup(form, answer) {
    let src = null;
    try {
      const response = await fetch("/account/two-factor/qr", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ totpURI: answer.totpURI }),
      });
      if (response.ok) src = (await response.json()).src;
    } catch { src = null; }
    const setup = document.getElementById("totp-setup");
    const img = document.getElementById("totp-qr");
    if (src) img.src = src;
    else img.hidden = true; // the key below still works
    let secret = "";
    try { secret = new URL(answer.totpURI).searchParams.get("secret") || ""; } catch { secret = ""; }
    document.getElementById("totp-secret").textContent = secret.replace(/(.{4})/g, "$1 ").trim();
    document.getElementById("totp-secret").dataset.secret = secret;
    document.getElementById("totp-uri").textContent = answer.totpURI;
    fill(document.getElementById("totp-backup-codes"), answer.backupCodes || []);
    form.hidden = true;
    setup.hidden = false;
    document.getElementById("totp-setup-h").focus();
  }

  document.addEventListener("bastion:success", (event) => {
    const form = event.target;
    const answer = event.detail || {};
    if ("totpSetup" in form.dataset && answer.totpURI) {
      event.preventDefault();
      form.querySelectorAll("input[type=password]").forEach((p) => { p.value = ""; });
      totpSetup(form, answer);
    } else if ("backupCodes" in form.dataset && Array.isArray(answer.backupCodes)) {
      event.preventDefault();
      form.querySelectorAll("input[type=password]").forEach((p) => { p.value = ""; });
      const box = document.getElementById("new-backup-codes");
      fill(box.querySelector("ul"), answer.backupCodes);
      box.hidden = false;
    } else if ("deleteAccount" in form.dataset) {
      event.preventDefault();
      form.querySelectorAll("input[type=password]").forEach((p) => { p.value = ""; });
      if (answer.message === "Verification email sent") {
        say(form, "status", "We emailed you a link: open it to delete your account.");
      } else {
        window.location.assign("/sign-in");
      }
    }
  });

  // Organization slugs: filled from the name until the person types one.
  const name = document.getElementById("org-name");
  const slug = document.getElementById("org-slug");
  if (name && slug) {
    slug.addEventListener("input", () => { slug.dataset.touched = "1"; });
    name.addEventListener("input", () => {
      if (slug.dataset.touched) return;
      slug.value = name.value.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
        .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48);
    });
  }
})();
