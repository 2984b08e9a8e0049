#!/usr/bin/env node
// Bastion test peer: an Auth0 look-alike token issuer built on oauth2-mock-server
// (pinned in package.json; 8.x runs on Node 20, 9.x wants Node >= 22.12).
//
// Usage:  PORT=0 AUDIENCE=https://api.example.test node mock-auth0.mjs
//
// Listens on 127.0.0.1 only. PORT=0 (the default) lets the OS pick a free port; the first
// stdout line is {"ready":true,"issuer":"http://127.0.0.1:<port>/","port":<port>}.
// With EXIT_ON_STDIN_CLOSE=1 the process exits when its stdin closes (so it never
// outlives the test that started it); SIGINT/SIGTERM also stop it.
//
// Endpoints (Auth0 paths):
//   GET  /.well-known/openid-configuration
//   GET  /.well-known/jwks.json                 {"keys":[{kty:"RSA",kid,alg:"RS256",n,e}]}
//   POST /oauth/token   form or JSON body; client auth in the body or HTTP Basic
//        grant_type=client_credentials&client_id=..&client_secret=..&audience=..[&scope=..]
//          -> access token as Auth0 mints it: header {typ:"JWT",kid,alg:"RS256"};
//             iss "http://127.0.0.1:<port>/" (trailing slash), aud = audience (else
//             $AUDIENCE), sub "<client_id>@clients", azp, gty "client-credentials",
//             scope, and the namespaced custom claim "<CLAIM_NS>roles": ["admin"]
//        grant_type=password&username=..&client_id=..  -> also an ID token
//             (aud = the client id), as an OIDC login would return
//   Unknown client or wrong secret (client_credentials): 401 {"error":"access_denied",...}
//   Test knob (not Auth0): x_expires_in=<seconds, may be negative> sets exp = iat + value.
//
// Other env: AUDIENCE (default https://api.example.test), CLAIM_NS (default
// https://example.test/), KEY_FILE (a JSON file keeping the private JWK across runs).

import fs from "node:fs";
import process from "node:process";
import { OAuth2Server } from "oauth2-mock-server";

for (const name of ["log", "info", "debug"]) console[name] = console.error;

const HOST = "127.0.0.1";
const PORT = Number(process.env.PORT ?? 0);
const AUDIENCE = process.env.AUDIENCE ?? "https://api.example.test";
const CLAIM_NS = process.env.CLAIM_NS ?? "https://example.test/";
const KEY_FILE = process.env.KEY_FILE;
// The bare mock accepts any client; a fixed registry makes wrong secrets fail as on Auth0.
const CLIENTS = new Map([
  ["test-client", "test-secret"],
  ["m2m-client", "m2m-secret"],
]);

const server = new OAuth2Server(undefined, undefined, {
  endpoints: { token: "/oauth/token", jwks: "/.well-known/jwks.json" },
  shouldIssuerUrlBeSuffixedWithATralingSlash: true,
});

if (KEY_FILE && fs.existsSync(KEY_FILE)) {
  await server.issuer.keys.add(JSON.parse(fs.readFileSync(KEY_FILE, "utf8")));
} else {
  await server.issuer.keys.generate("RS256");
  if (KEY_FILE) fs.writeFileSync(KEY_FILE, JSON.stringify(server.issuer.keys.toJSON(true)[0]));
}

// The client of a token request: HTTP Basic first, else the body.
function clientOf(req) {
  const header = req.headers.authorization ?? "";
  if (header.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6), "base64").toString();
    const colon = decoded.indexOf(":");
    return {
      id: decodeURIComponent(decoded.slice(0, colon)),
      secret: decodeURIComponent(decoded.slice(colon + 1)),
    };
  }
  return { id: req.body?.client_id, secret: req.body?.client_secret };
}

server.service.on("beforeTokenSigning", (token, req) => {
  const body = req.body ?? {};
  if (body.grant_type === "client_credentials") {
    const { id } = clientOf(req);
    Object.assign(token.payload, {
      sub: `${id}@clients`,
      aud: body.audience ?? body.aud ?? AUDIENCE,
      azp: id,
      gty: "client-credentials",
      scope: body.scope ?? "read:things",
      [`${CLAIM_NS}roles`]: ["admin"],
    });
  }
  if (body.x_expires_in !== undefined) {
    token.payload.exp = token.payload.iat + Number(body.x_expires_in);
  }
});

server.service.on("beforeResponse", (response, req) => {
  const body = req.body ?? {};
  if (body.grant_type !== "client_credentials") return;
  const { id, secret } = clientOf(req);
  if (!CLIENTS.has(id) || CLIENTS.get(id) !== secret) {
    response.statusCode = 401;
    response.body = { error: "access_denied", error_description: "Unauthorized" };
  } else if (response.body && typeof response.body === "object") {
    response.body.scope = body.scope ?? "read:things";
  }
});

await server.start(PORT, HOST);
const port = server.address().port;
// Set after start (the port is only known now); the mock would say "localhost" otherwise.
server.issuer.url = `http://${HOST}:${port}/`;

const stop = async () => {
  await server.stop().catch(() => {});
  process.exit(0);
};
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, stop);
if (process.env.EXIT_ON_STDIN_CLOSE === "1") {
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}
process.stdout.write(JSON.stringify({ ready: true, issuer: server.issuer.url, port }) + "\n");
