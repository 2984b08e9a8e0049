#!/usr/bin/env node
// Bastion test peer: a real OpenID Provider (panva/oidc-provider, pinned in package.json) for
// social sign-in tests — the authorization-code flow a user goes through in a browser, with a
// plain HTML login form. It stands in for Google, Okta, Keycloak and the like ("generic
// OIDC"). It prints "Unsupported runtime" on Node 20 but works.
//
// Usage:
//   PORT=0 CLIENTS='[{"client_id":"app","client_secret":"s3cret",
//                     "redirect_uris":["http://127.0.0.1:4000/api/auth/callback/oidc"]}]' \
//   USERS='{"alice":{"email":"alice@example.com","email_verified":true,"name":"Alice"}}' \
//   node oidc-login-provider.mjs
//
// Listens on 127.0.0.1 only. PORT=0 (the default) lets the OS pick a free port; the first
// stdout line is {"ready":true,"issuer":"http://127.0.0.1:<port>","port":<port>} (the issuer
// has no trailing slash, as Google's). With EXIT_ON_STDIN_CLOSE=1 the process exits when its
// stdin closes; SIGINT/SIGTERM too.
//
// Endpoints (all advertised by discovery):
//   GET  /.well-known/openid-configuration
//   GET  /jwks                      one RS256 signing key, kid "login-rs256-1"
//   GET  /authorize                 response_type=code; response_mode query (default),
//                                   fragment or form_post; PKCE S256; nonce; state; prompt
//   GET  /interaction/<uid>         the login form: <input name="login">, optional
//                                   <input name="password">, <button type="submit">; consent
//                                   is granted at once (no page)
//   POST /interaction/<uid>/login   login=<name>[&password=..]: an unknown name (or a wrong
//                                   password) shows the form again with an error
//   POST /interaction/<uid>/abort   "Cancel": back to the client with error=access_denied
//   POST /token                     authorization_code, refresh_token; client_secret_post or
//                                   client_secret_basic (per client), or none (public client)
//   GET|POST /userinfo              Bearer access token
//   POST /token/revocation, /token/introspection, GET /session/end (RP-initiated logout)
//
// Clients — CLIENTS, a JSON list of oidc-provider client metadata; the defaults are
//   grant_types ["authorization_code","refresh_token"], response_types ["code"],
//   token_endpoint_auth_method "client_secret_basic". http://127.0.0.1:<any port>/... redirect
//   URIs are allowed (web clients without the implicit grant may use http), and they must
//   match exactly. Clients can also be added while running: POST /__test/clients (below).
//
// Users — USERS, a JSON object: login name -> claims. `sub` defaults to the login name (and
//   is stable across runs); "password" (optional) must then be typed too, else any password
//   or none is accepted. Claims: email, email_verified, name, given_name, family_name,
//   picture, preferred_username, locale, ... and any other key (granted with scope
//   "profile"). Scopes: openid (sub), email (email, email_verified), profile (the rest).
//   conformIdTokenClaims is off: the ID token carries the scopes' claims too, as Google's do.
//   Default: {"alice":{"email":"alice@example.com","email_verified":true,"name":"Alice"}}.
//
// Refresh tokens: with scope offline_access, which OIDC honours only with prompt=consent (the
//   client must allow the refresh_token grant — the default). REFRESH_TOKENS=always issues one
//   for every code exchange instead (as Google with access_type=offline). Refresh tokens
//   rotate on use for public clients only (oidc-provider's default).
//
// PKCE: S256 only; required for public clients, checked whenever a challenge was sent.
//   PKCE_REQUIRED=1 requires it from every client.
//
// Faults, for timeout and error tests — FAULTS (JSON, at start) or at run time:
//   POST /__test/faults {"token": F, "userinfo": F, "jwks": F, "discovery": F,
//                        "authorize": F}    (a key set to null clears that fault; only the
//                                            keys given change)
//   GET  /__test/faults                     the faults in force
//   where F is one of  {"status": 400, "body": {"error": "invalid_grant", ...}}  (that answer,
//                       JSON; "body" defaults to {"error":"server_error"})
//                      {"hang": true}        never answer (until the client gives up)
//                      {"delay": 2.5}        wait that many seconds, then answer normally
//   POST /__test/clients [{client metadata}, ...]   add (or replace) clients
//
// Other env: TTL (JSON, seconds, over oidc-provider's ttl: AccessToken 3600, IdToken 3600,
//   AuthorizationCode 600, RefreshToken/Grant/Session 14 days, Interaction 3600),
//   KEY_FILE (keeps the private JWK across runs).

import fs from "node:fs";
import { createServer } from "node:http";
import { generateKeyPairSync } from "node:crypto";
import process from "node:process";
import Provider from "oidc-provider";

for (const name of ["log", "info", "debug", "warn"]) console[name] = console.error;

const HOST = "127.0.0.1";
const PORT = Number(process.env.PORT ?? 0);
const KEY_FILE = process.env.KEY_FILE;
const json = (name, fallback) => (process.env[name] ? JSON.parse(process.env[name]) : fallback);
const CLIENTS = json("CLIENTS", []);
const USERS = json("USERS", {
  alice: { email: "alice@example.com", email_verified: true, name: "Alice" },
});
const TTL = json("TTL", {});
const faults = json("FAULTS", {});
const REFRESH_TOKENS = process.env.REFRESH_TOKENS ?? "offline_access";
const PKCE_REQUIRED = process.env.PKCE_REQUIRED === "1";

function signingKey() {
  if (KEY_FILE && fs.existsSync(KEY_FILE)) return JSON.parse(fs.readFileSync(KEY_FILE, "utf8"));
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "login-rs256-1", alg: "RS256", use: "sig" };
  if (KEY_FILE) fs.writeFileSync(KEY_FILE, JSON.stringify(jwk));
  return jwk;
}

// -- users --------------------------------------------------------------------------------

const RESERVED = new Set(["sub", "password"]);
const EMAIL_CLAIMS = ["email", "email_verified"];
const PROFILE_CLAIMS = new Set([
  "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
  "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
]);
const users = new Map(); // sub -> {login, password, claims}
const subOfLogin = new Map();
for (const [login, entry] of Object.entries(USERS)) {
  const sub = String(entry.sub ?? login);
  const claims = Object.fromEntries(Object.entries(entry).filter(([k]) => !RESERVED.has(k)));
  for (const key of Object.keys(claims)) if (!EMAIL_CLAIMS.includes(key)) PROFILE_CLAIMS.add(key);
  users.set(sub, { login, password: entry.password, claims });
  subOfLogin.set(login, sub);
}

async function findAccount(_ctx, sub) {
  const user = users.get(sub);
  if (!user) return undefined;
  return { accountId: sub, claims: async () => ({ sub, ...user.claims }) };
}

// -- clients ------------------------------------------------------------------------------

const clientMetadata = (client) => ({
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "client_secret_basic",
  ...client,
});

// -- the provider -------------------------------------------------------------------------

// The issuer URL holds the port, so listen first and build the provider afterwards.
const http = createServer();
await new Promise((resolve) => http.listen(PORT, HOST, resolve));
const port = http.address().port;
const ISSUER = `http://${HOST}:${port}`;

const ROUTES = {
  authorization: "/authorize",
  token: "/token",
  userinfo: "/userinfo",
  jwks: "/jwks",
  revocation: "/token/revocation",
  introspection: "/token/introspection",
  end_session: "/session/end",
};
const FAULT_PATHS = {
  token: ROUTES.token,
  userinfo: ROUTES.userinfo,
  jwks: ROUTES.jwks,
  authorize: ROUTES.authorization,
  discovery: "/.well-known/openid-configuration",
};

const provider = new Provider(ISSUER, {
  clients: CLIENTS.map(clientMetadata),
  jwks: { keys: [signingKey()] },
  findAccount,
  claims: {
    openid: ["sub"],
    email: EMAIL_CLAIMS,
    profile: [...PROFILE_CLAIMS],
  },
  scopes: ["openid", "offline_access", "email", "profile"],
  conformIdTokenClaims: false,
  pkce: { required: (_ctx, client) => PKCE_REQUIRED || client.clientAuthMethod === "none" },
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed("refresh_token") &&
    (REFRESH_TOKENS === "always" || code.scopes.has("offline_access")),
  routes: ROUTES,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    ...TTL,
  },
  cookies: { keys: ["bastion-oidc-login-provider-cookie-key"] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  renderError: async (ctx, out) => {
    ctx.type = "html";
    ctx.body = page("Error", `<h1>${escape(out.error)}</h1><p id="error">${escape(out.error_description ?? "")}</p>`);
  },
});
provider.proxy = false;

// Faults: a koa middleware before the provider's routes.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
provider.use(async (ctx, next) => {
  for (const [name, path] of Object.entries(FAULT_PATHS)) {
    const fault = faults[name];
    if (!fault || ctx.path !== path) continue;
    if (fault.hang) {
      await new Promise((resolve) => ctx.res.once("close", resolve));
      return;
    }
    if (fault.delay) await sleep(Number(fault.delay) * 1000);
    if (fault.status) {
      ctx.status = Number(fault.status);
      ctx.type = "json";
      ctx.body = fault.body ?? { error: "server_error" };
      return;
    }
  }
  await next();
});

// -- the interaction pages (login form; consent granted at once) -------------------------

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>` +
    `<body>${body}</body></html>`;
}

function loginPage(uid, client, error, login = "") {
  const name = client?.clientName ?? client?.clientId ?? "";
  return page("Sign in", `
<h1>Sign in to continue to ${escape(name)}</h1>
${error ? `<p id="error" role="alert">${escape(error)}</p>` : ""}
<form id="login" method="post" action="/interaction/${escape(uid)}/login">
  <label>Login <input name="login" id="login-name" value="${escape(login)}" autofocus autocomplete="username"></label>
  <label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
  <button type="submit" id="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${escape(uid)}/abort">
  <button type="submit" id="cancel">Cancel</button>
</form>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
}

function send(res, status, type, body) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

async function grantConsent(req, res, details) {
  const { prompt, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scope] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scope.join(" "));
  }
  // A repeated prompt=consent asks again for what was granted: grant the request's scope.
  if (params.scope) grant.addOIDCScope(params.scope);
  const result = { consent: { grantId: await grant.save() } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, "text/plain", "interaction mismatch\n");
  const client = await provider.Client.find(details.params.client_id);
  if (action === "" && req.method === "GET") {
    if (details.prompt.name === "consent") return grantConsent(req, res, details);
    return send(res, 200, "text/html; charset=utf-8", loginPage(uid, client));
  }
  if (action === "/login" && req.method === "POST") {
    const form = await readForm(req);
    const login = (form.login ?? "").trim();
    const sub = subOfLogin.get(login);
    const user = sub === undefined ? undefined : users.get(sub);
    if (!user || (user.password !== undefined && form.password !== user.password)) {
      const error = user ? "Wrong password." : `No user "${login}".`;
      return send(res, 200, "text/html; charset=utf-8", loginPage(uid, client, error, login));
    }
    return provider.interactionFinished(req, res, { login: { accountId: sub } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (action === "/abort" && req.method === "POST") {
    const result = { error: "access_denied", error_description: "End-User aborted interaction" };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return send(res, 405, "text/plain", "method not allowed\n");
}

// -- test controls --------------------------------------------------------------------------

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString();
  return raw ? JSON.parse(raw) : {};
}

async function control(req, res, path) {
  if (path === "/__test/faults") {
    if (req.method === "POST") {
      for (const [name, fault] of Object.entries(await readJson(req))) {
        if (!(name in FAULT_PATHS)) return send(res, 400, "application/json", JSON.stringify({ error: `unknown endpoint ${name}` }));
        if (fault === null) delete faults[name];
        else faults[name] = fault;
      }
    }
    return send(res, 200, "application/json", JSON.stringify(faults));
  }
  if (path === "/__test/clients" && req.method === "POST") {
    const added = [];
    for (const client of await readJson(req)) {
      const metadata = clientMetadata(client);
      await provider.Client.validate(metadata); // throws on bad metadata
      await provider.Client.adapter.upsert(metadata.client_id, metadata);
      added.push(metadata.client_id);
    }
    return send(res, 200, "application/json", JSON.stringify({ added }));
  }
  return send(res, 404, "application/json", JSON.stringify({ error: "not_found" }));
}

// -- serving --------------------------------------------------------------------------------

const callback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/abort)?$/;
http.on("request", async (req, res) => {
  const path = new URL(req.url, ISSUER).pathname;
  try {
    if (path.startsWith("/__test/")) return await control(req, res, path);
    const match = INTERACTION.exec(path);
    if (match) return await interaction(req, res, match[1], match[2] ?? "");
  } catch (error) {
    console.error(error);
    if (!res.headersSent) {
      const message = `${error.name ?? "Error"}: ${error.error_description ?? error.message}`;
      return send(res, error.statusCode ?? 400, "text/html; charset=utf-8", page("Error", `<p id="error">${escape(message)}</p>`));
    }
    return res.end();
  }
  return callback(req, res);
});

const stop = () => {
  http.closeAllConnections(); // a hanging request must not keep the process alive
  http.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, stop);
if (process.env.EXIT_ON_STDIN_CLOSE === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}
process.stdout.write(JSON.stringify({ ready: true, issuer: ISSUER, port }) + "\n");
