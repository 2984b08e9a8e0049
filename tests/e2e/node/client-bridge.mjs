#!/usr/bin/env node
// Bastion e2e client bridge: drives the OFFICIAL better-auth JS client
// (createAuthClient from "better-auth/client", the version pinned in
// package.json) from a test, one JSON line in -> one JSON line out.
//
// Usage:  BASE_URL=http://127.0.0.1:3000/api/auth MODE=cookie|bearer node client-bridge.mjs
//
// Modes (chosen at start):
//   cookie  Node's fetch has no cookie jar, so a minimal one lives in
//           fetchOptions.customFetchImpl: Set-Cookie values are stored
//           (Max-Age<=0 or a past Expires deletes, Path is respected, Domain is
//           ignored: one host) and sent back as `Cookie`, like a browser would.
//   bearer  no cookies at all; the token is taken from the `set-auth-token`
//           response header in fetchOptions.onSuccess and sent as
//           `Authorization: Bearer <token>` through fetchOptions.auth — the
//           setup the better-auth bearer docs show.
// In both modes requests carry `Origin: $ORIGIN` (default: BASE_URL's origin)
// where a browser's fetch() would: on every non-GET/HEAD request, and on GETs
// too when ORIGIN is not the server's origin (CORS). ORIGIN=none: never.
//
// Other env:
//   CALL_TIMEOUT_MS  per-HTTP-request timeout (default 20000)
//   CLIENT_PLUGINS   client plugins, comma separated: twoFactor (twoFactorClient, whose
//                    onTwoFactorRedirect calls are kept: {"redirects":true} command),
//                    or any other export of "better-auth/client/plugins" by name
//                    (magicLinkClient, emailOTPClient, usernameClient); organization:
//                    organizationClient({teams: {enabled: true}, dynamicAccessControl:
//                    {enabled: true}}) (its organization.checkRolePermission is local and
//                    synchronous: its boolean comes back as data)
//
// Protocol: stdout's first line is {"ready":true,"mode":...,"baseURL":...}.
// Then, per stdin line (a JSON object), exactly one stdout line:
//   {"id":n,"call":"signUp.email","args":{...},"fetchOptions":{...}}
//       -> client.signUp.email(args, fetchOptions) (any dotted path; args and
//          fetchOptions are optional)
//       <- {"id":n,"data":...,"error":...}   (the client's own {data, error};
//          Dates as ISO strings)  or  {"id":n,"exception":"..."} if it threw
//   {"id":n,"cookies":true}   <- {"id":n,"cookies":{name:value,...}}
//   {"id":n,"token":true}     <- {"id":n,"token":"<bearer token>"|null}
//   {"id":n,"redirects":true} <- {"id":n,"redirects":[{twoFactorMethods},...]}: the
//          twoFactorClient's onTwoFactorRedirect calls since the last such command
//   {"id":n,"requests":true}  <- {"id":n,"requests":[{method,url,headers,body,
//          status,setCookie,setAuthToken},...]}: the HTTP requests made since
//          the last such command (headers as handed to fetch; undici adds its
//          own, e.g. sec-fetch-mode, user-agent "node", accept-encoding)
// Commands run one at a time, in order. The process exits when stdin closes.
// Diagnostics go to stderr.

import process from "node:process";
import readline from "node:readline";
import { inspect } from "node:util";

for (const name of ["log", "info", "debug"]) console[name] = console.error;

const writeLine = (obj) =>
  new Promise((resolve, reject) =>
    process.stdout.write(JSON.stringify(obj) + "\n", (err) => (err ? reject(err) : resolve())),
  );

const MODE = process.env.MODE ?? "cookie";
const BASE_URL = process.env.BASE_URL;
const CALL_TIMEOUT_MS = Number(process.env.CALL_TIMEOUT_MS || 20000);
if (!BASE_URL || !["cookie", "bearer"].includes(MODE)) {
  console.error("usage: BASE_URL=<url> MODE=cookie|bearer node client-bridge.mjs");
  process.exit(2);
}
const ORIGIN =
  process.env.ORIGIN === undefined
    ? new URL(BASE_URL).origin
    : process.env.ORIGIN === "none"
      ? null
      : process.env.ORIGIN;

// ---- the cookie jar (cookie mode) -------------------------------------------
const jar = new Map(); // name -> {value, path}

function storeSetCookie(header) {
  const [pair, ...attrs] = header.split(";");
  const eq = pair.indexOf("=");
  if (eq <= 0) return;
  const name = pair.slice(0, eq).trim();
  const value = pair.slice(eq + 1).trim();
  let path = "/";
  let expired = false;
  for (const attr of attrs) {
    const i = attr.indexOf("=");
    const key = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? "" : attr.slice(i + 1).trim();
    if (key === "max-age") expired = Number(val) <= 0;
    else if (key === "expires" && !attrs.some((a) => /^\s*max-age\s*=/i.test(a))) {
      const when = Date.parse(val);
      expired = !Number.isNaN(when) && when <= Date.now();
    } else if (key === "path" && val.startsWith("/")) path = val;
  }
  if (expired) jar.delete(name);
  else jar.set(name, { value, path });
}

function cookieHeader(url) {
  const { pathname } = new URL(url);
  const pairs = [];
  for (const [name, { value, path }] of jar) {
    const matches =
      pathname === path ||
      (pathname.startsWith(path) && (path.endsWith("/") || pathname[path.length] === "/"));
    if (matches) pairs.push(`${name}=${value}`);
  }
  return pairs.join("; ");
}

// A browser's fetch() sends Origin on every request except a same-origin GET/HEAD.
const sendsOrigin = (method, url) =>
  (method !== "GET" && method !== "HEAD") || new URL(url).origin !== ORIGIN;

// ---- fetch wrapper: jar, Origin, timeout, request log -------------------------
let requestLog = [];

async function bridgeFetch(input, init = {}) {
  let url = input instanceof Request ? input.url : String(input);
  const timeout = AbortSignal.timeout(CALL_TIMEOUT_MS);
  const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
  let method = (init.method ?? "GET").toUpperCase();
  let body = init.body;
  // Redirects are followed here, like a browser (GET after 301/302/303, at most
  // 5 hops), so that the jar also sees Set-Cookie on the redirect responses.
  for (let hop = 0; ; hop++) {
    const headers = new Headers(init.headers);
    if (ORIGIN && !headers.has("origin") && sendsOrigin(method, url)) {
      headers.set("origin", ORIGIN);
    }
    if (MODE === "cookie") {
      const cookies = cookieHeader(url);
      if (cookies) headers.set("cookie", cookies);
      else headers.delete("cookie");
    }
    if (hop > 0 && body == null) headers.delete("content-type");
    const entry = {
      method,
      url,
      headers: Object.fromEntries(headers),
      body: typeof body === "string" ? body : body == null ? null : "<non-string>",
    };
    requestLog.push(entry);
    const response = await fetch(url, { ...init, method, body, headers, signal, redirect: "manual" });
    entry.status = response.status;
    entry.setCookie = response.headers.getSetCookie();
    entry.setAuthToken = response.headers.get("set-auth-token");
    if (MODE === "cookie") for (const header of entry.setCookie) storeSetCookie(header);
    const location = response.headers.get("location");
    if (![301, 302, 303, 307, 308].includes(response.status) || !location || hop >= 5) {
      return response;
    }
    entry.redirectedTo = new URL(location, url).href;
    url = entry.redirectedTo;
    if (response.status !== 307 && response.status !== 308) {
      method = "GET";
      body = undefined;
    }
  }
}

// ---- the official client -------------------------------------------------------
const { createAuthClient } = await import("better-auth/client");

let currentToken = null;
const fetchOptions = { customFetchImpl: bridgeFetch };
if (MODE === "bearer") {
  fetchOptions.auth = { type: "Bearer", token: () => currentToken };
  fetchOptions.onSuccess = (ctx) => {
    const token = ctx.response.headers.get("set-auth-token");
    if (token) currentToken = token;
  };
}
let redirects = [];
const CLIENT_PLUGINS = {
  twoFactor: async () =>
    (await import("better-auth/client/plugins")).twoFactorClient({
      onTwoFactorRedirect: (context) => {
        redirects.push(context);
      },
    }),
  organization: async () =>
    (await import("better-auth/client/plugins")).organizationClient({
      teams: { enabled: true },
      dynamicAccessControl: { enabled: true },
    }),
};
const plugins = [];
for (const name of (process.env.CLIENT_PLUGINS ?? "").split(",").filter(Boolean)) {
  if (CLIENT_PLUGINS[name]) {
    plugins.push(await CLIENT_PLUGINS[name]());
    continue;
  }
  const module = await import("better-auth/client/plugins");
  if (typeof module[name] !== "function") throw new Error(`no client plugin ${name}`);
  plugins.push(module[name]());
}
const client = createAuthClient({ baseURL: BASE_URL, fetchOptions, plugins });

function resolvePath(path) {
  let target = client;
  for (const part of path.split(".")) {
    if (!part) throw new Error(`bad call path ${JSON.stringify(path)}`);
    target = target[part];
    if (target === undefined || target === null) {
      throw new Error(`client has no ${JSON.stringify(path)}`);
    }
  }
  if (typeof target !== "function") throw new Error(`client.${path} is not a function`);
  return target;
}

async function handle(command) {
  const { id } = command;
  if (command.cookies) {
    return { id, cookies: Object.fromEntries([...jar].map(([k, v]) => [k, v.value])) };
  }
  if (command.token) return { id, token: currentToken };
  if (command.redirects) {
    const seen = redirects;
    redirects = [];
    return { id, redirects: seen };
  }
  if (command.requests) {
    const requests = requestLog;
    requestLog = [];
    return { id, requests };
  }
  if (typeof command.call !== "string") throw new Error("want call, cookies, token or requests");
  const fn = resolvePath(command.call);
  const args = [];
  if (command.args !== undefined || command.fetchOptions !== undefined) args.push(command.args);
  if (command.fetchOptions !== undefined) args.push(command.fetchOptions);
  const result = await fn(...args);
  if (result === null || typeof result !== "object" || !("data" in result)) {
    return { id, data: result ?? null, error: null };
  }
  return { id, data: result.data ?? null, error: result.error ?? null };
}

await writeLine({ ready: true, mode: MODE, baseURL: BASE_URL, origin: ORIGIN });

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let id = null;
  let reply;
  try {
    const command = JSON.parse(line);
    id = command.id ?? null;
    reply = await handle(command);
  } catch (err) {
    console.error(`client-bridge: command failed: ${inspect(err, { depth: 4 })}`);
    reply = { id, exception: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
  // JSON.stringify serialises Dates (revived by the client's parser) as ISO strings.
  await writeLine(reply);
}
process.exit(0);
