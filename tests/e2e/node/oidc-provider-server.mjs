#!/usr/bin/env node
// Bastion test peer: a real, spec-compliant OpenID Provider (panva/oidc-provider, pinned in
// package.json) minting RFC 9068 JWT access tokens (typ "at+jwt") with client_credentials
// and RFC 8707 resource indicators. It prints "Unsupported runtime" on Node 20 but works.
//
// Usage:  PORT=0 AUDIENCE=https://api.example.test node oidc-provider-server.mjs
//
// Listens on 127.0.0.1 only. PORT=0 (the default) lets the OS pick a free port; the first
// stdout line is {"ready":true,"issuer":"http://127.0.0.1:<port>/","port":<port>}.
// With EXIT_ON_STDIN_CLOSE=1 the process exits when its stdin closes; SIGINT/SIGTERM too.
//
// Endpoints:
//   GET  /.well-known/openid-configuration
//   GET  /.well-known/jwks.json                 one RS256 key, kid "test-rs256-1", use "sig"
//   POST /oauth/token  grant_type=client_credentials&resource=<audience>[&scope=...]
//        clients: test-client/test-secret (client_secret_post), m2m-client/m2m-secret
//        (client_secret_basic). Auth0-style requests work too: a JSON body, and
//        `audience` instead of `resource` (a small shim maps it).
//   Tokens: header {alg:"RS256",typ:"at+jwt",kid}; claims iss, sub (= client id),
//   client_id, aud (= resource, else $AUDIENCE), iat, exp, jti, scope (when requested),
//   plus azp, gty and the namespaced "<CLAIM_NS>roles": ["admin"].
//
// Other env: AUDIENCE, CLAIM_NS (default https://example.test/), KEY_FILE (keeps the
// private JWK across runs).

import fs from "node:fs";
import { createServer } from "node:http";
import { generateKeyPairSync } from "node:crypto";
import process from "node:process";
import Provider from "oidc-provider";

for (const name of ["log", "info", "debug", "warn"]) console[name] = console.error;

const HOST = "127.0.0.1";
const PORT = Number(process.env.PORT ?? 0);
const AUDIENCE = process.env.AUDIENCE ?? "https://api.example.test";
const CLAIM_NS = process.env.CLAIM_NS ?? "https://example.test/";
const KEY_FILE = process.env.KEY_FILE;

function signingKey() {
  if (KEY_FILE && fs.existsSync(KEY_FILE)) return JSON.parse(fs.readFileSync(KEY_FILE, "utf8"));
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-rs256-1", alg: "RS256", use: "sig" };
  if (KEY_FILE) fs.writeFileSync(KEY_FILE, JSON.stringify(jwk));
  return jwk;
}

// The issuer URL holds the port, so listen first and build the provider afterwards.
const http = createServer();
await new Promise((resolve) => http.listen(PORT, HOST, resolve));
const port = http.address().port;
const ISSUER = `http://${HOST}:${port}/`;

const client = (id, secret, method, scope) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: method,
  scope,
});

const provider = new Provider(ISSUER, {
  clients: [
    client("test-client", "test-secret", "client_secret_post", "read:things write:things"),
    client("m2m-client", "m2m-secret", "client_secret_basic", "read:things"),
  ],
  jwks: { keys: [signingKey()] },
  scopes: ["read:things", "write:things"],
  ttl: { ClientCredentials: 3600 },
  routes: { token: "/oauth/token", jwks: "/.well-known/jwks.json" },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => ({
        audience: resource,
        scope: "read:things write:things",
        accessTokenTTL: 3600,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  extraTokenClaims: async (_ctx, token) => ({
    azp: token.clientId,
    gty: "client-credentials",
    [`${CLAIM_NS}roles`]: ["admin"],
  }),
});
provider.proxy = false;

// Auth0 compatibility for POST /oauth/token: a JSON body, and `audience` for `resource`.
provider.use(async (ctx, next) => {
  if (ctx.method === "POST" && ctx.path === "/oauth/token") {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString();
    const body = ctx.is("application/json")
      ? JSON.parse(raw || "{}")
      : Object.fromEntries(new URLSearchParams(raw));
    if (body.audience && !body.resource) body.resource = body.audience;
    delete body.audience;
    ctx.req.body = body; // oidc-provider reads req.body once the stream is consumed
    ctx.req.headers["content-type"] = "application/x-www-form-urlencoded";
  }
  await next();
});

http.on("request", provider.callback());

const stop = () => http.close(() => process.exit(0));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, stop);
if (process.env.EXIT_ON_STDIN_CLOSE === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("close", () => process.exit(0));
  process.stdin.resume();
}
process.stdout.write(JSON.stringify({ ready: true, issuer: ISSUER, port }) + "\n");
