#!/usr/bin/env node
// Bastion e2e test peer: drives the REAL TypeScript better-auth (an npm
// dependency, see package.json) against SQLite, PostgreSQL or MySQL/MariaDB so
// the Python tests can check that a database created/written by better-auth is
// compatible with Bastion's (and vice versa).
//
// Usage:  DB_KIND=sqlite|postgres|mysql DB_URL=... node ba-peer.mjs <command>
//
//   DB_URL  sqlite:   a file path (created if missing), e.g. /tmp/x.sqlite
//           postgres: postgres://postgres@127.0.0.1:5432/<db>
//           mysql:    mysql://root@127.0.0.1:3306/<db>
//
// Commands (each prints exactly ONE result on stdout; diagnostics go to stderr):
//   migrate  getMigrations(options) + runMigrations();
//            stdout: {"created":[tables],"added":[tables]}
//   seed     auth.api.signUpEmail({body:{email,name,password}}) (run `migrate`
//            first, or set SEED_MIGRATE=1 to migrate in the same process);
//            stdout: {"user":{...as returned...},"token":"<session token>"}
//   sql      the SQL the migrator would run (compileMigrations()), as text;
//            empty output when the schema is already up to date.
//   check    dry run, changes nothing: what `migrate` would do plus
//            better-auth's own schema findings;
//            stdout: {"created":[tables],"added":[tables],"indexes":[names],
//                     "unsafe":[messages],"problems":[messages]}
//            ("problems" = columns better-auth never writes that are NOT NULL
//            without a default: TS better-auth refuses such a schema at runtime)
//   serve    migrates, then runs a real better-auth HTTP server (node:http +
//            toNodeHandler) on 127.0.0.1:$PORT (PORT unset or 0: a free port)
//            until SIGTERM/SIGINT; stdout, once listening:
//              {"ready":true,"url":"http://127.0.0.1:<port>/api/auth"}
//            Options: emailAndPassword enabled (sendResetPassword set), the
//            bearer() plugin, emailVerification.sendVerificationEmail set.
//            Every email is appended to $MAIL_LOG as ONE JSON line
//              {"type":"reset-password"|"verify-email","to":email,"url":url,"token":token}
//            (no MAIL_LOG: the line goes to stderr). Only /api/auth/* is served.
//
// Env for `serve` only:
//   PORT                 listen port on 127.0.0.1 (default 0 = any free port)
//   MAIL_LOG             file that emails are appended to (JSON lines)
//   TRUSTED_ORIGINS      extra trusted origins, comma/space separated (the
//                        server's own origin is always trusted)
//   RATE_LIMIT=1         rateLimit.enabled (off otherwise)
//   COOKIE_CACHE=1       session.cookieCache.enabled (maxAge COOKIE_CACHE_MAX_AGE
//                        seconds, default 300)
//   PLUGINS              more plugins, comma separated: magic-link, email-otp (with
//                        changeEmail enabled), username, open-api (GET
//                        /open-api/generate-schema). Their mails go to $MAIL_LOG
//                        too: {"type":"magic-link","to","url","token"} and
//                        {"type":"otp-<otp type>","to","url":null,"token":"<otp>"}
//   BA_OPTIONS           JSON deep-merged into the betterAuth() options last,
//                        e.g. {"emailAndPassword":{"requireEmailVerification":true}}
//                        (also the way to set socialProviders, e.g.
//                        {"socialProviders":{"github":{"clientId":..,"clientSecret":..}}},
//                        or {"account":{"encryptOAuthTokens":true}})
//   GENERIC_OAUTH        JSON list of genericOAuth() provider configs (providerId,
//                        discoveryUrl, clientId, clientSecret, scopes, ...): adds the
//                        generic-oauth plugin beside bearer(). Unset: no such plugin.
//   PROVIDER_ORIGINS     JSON {"https://github.com": "http://127.0.0.1:PORT", ...}: the
//                        server's own outgoing fetches to a listed origin go to the
//                        stand-in origin instead (same path and query). For providers
//                        whose URLs better-auth hard-codes (GitHub's token endpoint,
//                        api.github.com): the real provider code runs, against a local
//                        stand-in. Authorization URLs it answers are not rewritten.
//                        Unset: fetch is left alone.
//   TWO_FACTOR           JSON options of the twoFactor() plugin, added after bearer()
//                        (its table migrated); its codes go to MAIL_LOG as
//                          {"type":"two-factor-otp","to":email,"url":null,"token":otp}
//   ORGANIZATION         JSON options of the organization() plugin, added after bearer()
//                        (its tables migrated), e.g. {"teams":{"enabled":true},
//                        "dynamicAccessControl":{"enabled":true}}. Two keys are data, not
//                        options: "statements" ({resource:[actions]}, added to better-auth's
//                        defaultStatements for createAccessControl -> `ac`; always passed,
//                        so dynamic roles work) and "roles" ({name:{resource:[actions]}} ->
//                        ac.newRole each; unset: better-auth's owner/admin/member). Its
//                        sendInvitationEmail mails to MAIL_LOG:
//                          {"type":"organization-invitation","to":email,
//                           "url":"<origin>/accept-invitation/<id>","token":"<invitation id>",
//                           "organization":name,"inviter":email,"role":role}
//   EXIT_ON_STDIN_CLOSE=1  also shut down when stdin reaches EOF (the Python
//                        wrapper sets it, so the server dies with its parent)
//
// Other env:
//   BETTER_AUTH_SECRET  default: a fixed test secret (>= 32 chars)
//   EMAIL / NAME / PASSWORD  for `seed` (defaults alice@example.com / Alice /
//                            correct-horse-battery)
//   MYSQL_TIMEZONE      mysql2 `timezone` option (default "Z", i.e. JS Dates
//                       are written/read as UTC regardless of the Node TZ);
//                       set to "local" for mysql2's own default behaviour.
//   BA_LOG_LEVEL        better-auth logger level (default "warn").
//   BA_VALIDATE_SCHEMA  "0" sets advanced.database.validateSchema=false (by
//                       default better-auth 1.7 checks the live schema before
//                       its first query and throws SchemaMismatchError).
//
// Exit code 0 on success; non-zero with the error on stderr otherwise. DB
// handles are always closed so the process exits promptly.

import process from "node:process";
import { inspect } from "node:util";

// Keep stdout clean for the single JSON result line: anything a library prints
// through console.log/info/debug goes to stderr instead.
const writeStdout = (text) =>
  new Promise((resolve, reject) =>
    process.stdout.write(text, (err) => (err ? reject(err) : resolve())),
  );
for (const name of ["log", "info", "debug"]) console[name] = console.error;

const DEFAULT_SECRET = "bastion-e2e-test-secret-0123456789abcdef0123456789";
const COMMANDS = new Set(["migrate", "seed", "sql", "check", "serve"]);

function usage(msg) {
  if (msg) console.error(`ba-peer: ${msg}`);
  console.error(
    "usage: DB_KIND=sqlite|postgres|mysql DB_URL=<path|url> node ba-peer.mjs migrate|seed|sql|check|serve",
  );
  process.exit(2);
}

/** Returns { database, close } for the configured DB kind. */
async function openDatabase(kind, url) {
  switch (kind) {
    case "sqlite": {
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(url);
      return { database: db, close: async () => db.close() };
    }
    case "postgres":
    case "postgresql":
    case "pg": {
      const { default: pg } = await import("pg");
      const pool = new pg.Pool({ connectionString: url, max: 4 });
      return { database: pool, close: () => pool.end() };
    }
    case "mysql":
    case "mariadb": {
      // better-auth detects a mysql2/promise pool by its getConnection() and
      // hands its callback-style `.pool` to kysely's MysqlDialect.
      const { createPool } = await import("mysql2/promise");
      const pool = createPool({
        uri: url,
        connectionLimit: 4,
        timezone: process.env.MYSQL_TIMEZONE ?? "Z",
      });
      return { database: pool, close: () => pool.end() };
    }
    default:
      usage(`unknown DB_KIND=${JSON.stringify(kind)} (want sqlite|postgres|mysql)`);
  }
}

/** The betterAuth() options every command shares. */
function baseOptions(database, baseURL) {
  return {
    baseURL,
    secret: process.env.BETTER_AUTH_SECRET || DEFAULT_SECRET,
    database,
    emailAndPassword: { enabled: true },
    telemetry: { enabled: false },
    ...(process.env.BA_VALIDATE_SCHEMA === "0"
      ? { advanced: { database: { validateSchema: false } } }
      : {}),
    logger: {
      level: process.env.BA_LOG_LEVEL ?? "warn",
      disableColors: true,
      log: (level, message, ...args) =>
        console.error(`[better-auth ${level}] ${message}`, ...args),
    },
  };
}

/** getMigrations(options) + runMigrations(); {created, added} table names. */
async function runMigrationsFor(options, kind) {
  const { getMigrations } = await import("better-auth/db/migration");
  const plan = await getMigrations(options);
  const result = {
    created: plan.toBeCreated.map((t) => t.table),
    added: plan.toBeAdded.map((t) => t.table),
  };
  console.error(
    `ba-peer: migrate ${kind}: ${JSON.stringify({
      ...result,
      indexes: plan.toBeAddedIndexes.map((i) => i.name),
      problems: plan.schemaProblems,
    })}`,
  );
  await plan.runMigrations();
  return result;
}

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** Merges `extra` into `target` (objects recursively; anything else replaces). */
function deepMerge(target, extra) {
  for (const [key, value] of Object.entries(extra)) {
    target[key] =
      isPlainObject(value) && isPlainObject(target[key])
        ? deepMerge({ ...target[key] }, value)
        : value;
  }
  return target;
}

/**
 * PROVIDER_ORIGINS: wraps globalThis.fetch (which better-fetch looks up at call time) so
 * that a request to one of `origins`' keys goes to its value instead.
 */
function redirectProviderFetches(origins) {
  const pairs = Object.entries(origins).map(([from, to]) => [
    new URL(from).origin,
    new URL(to).origin,
  ]);
  const original = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const href =
      typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = new URL(href);
    const pair = pairs.find(([from]) => url.origin === from);
    if (!pair) return original(input, init);
    const target = pair[1] + url.pathname + url.search;
    console.error(`ba-peer: fetch ${href} -> ${target}`);
    return original(input instanceof Request ? new Request(target, input) : target, init);
  };
}

/**
 * `serve`: a real better-auth server on 127.0.0.1:$PORT until SIGTERM/SIGINT
 * (or stdin EOF with EXIT_ON_STDIN_CLOSE=1). Resolves once it has shut down.
 */
async function serve(kind, url) {
  const http = await import("node:http");
  const fs = await import("node:fs");
  const { betterAuth } = await import("better-auth");
  const { toNodeHandler } = await import("better-auth/node");
  const { bearer, genericOAuth, twoFactor } = await import("better-auth/plugins");

  const { database, close } = await openDatabase(kind, url);
  let server;
  let stopping;
  const stop = (why) =>
    (stopping ??= (async () => {
      console.error(`ba-peer: serve: stopping (${why})`);
      // A stuck pool or socket must not keep the process alive.
      setTimeout(() => {
        console.error("ba-peer: serve: shutdown timed out, exiting");
        process.exit(1);
      }, 5000).unref();
      if (server?.listening) {
        const closed = new Promise((resolve) => server.close(resolve));
        server.closeAllConnections();
        await closed;
      }
      await close();
    })());

  try {
    // Listen first (port 0 = any free port), so the real port is known
    // before betterAuth() is built with it as baseURL.
    let handler = (req, res) => res.writeHead(503).end("starting\n");
    server = http.createServer((req, res) => {
      if (req.url.startsWith("/api/auth/") || req.url.startsWith("/api/auth?")) {
        return handler(req, res);
      }
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    });
    const port = Number(process.env.PORT || 0);
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const origin = `http://127.0.0.1:${server.address().port}`;

    const mailLog = process.env.MAIL_LOG;
    const sendMail = async (type, user, url, token, extra = {}) => {
      const line = JSON.stringify({ type, to: user.email, url, token, ...extra }) + "\n";
      // Synchronous append: the line is in the file before the response goes out.
      if (mailLog) fs.appendFileSync(mailLog, line);
      else console.error(`ba-peer: mail ${line.trim()}`);
    };
    const trusted = (process.env.TRUSTED_ORIGINS ?? "").split(/[\s,]+/).filter(Boolean);
    const options = deepMerge(baseOptions(database, origin), {
      emailAndPassword: {
        enabled: true,
        sendResetPassword: ({ user, url, token }) => sendMail("reset-password", user, url, token),
      },
      emailVerification: {
        sendVerificationEmail: ({ user, url, token }) =>
          sendMail("verify-email", user, url, token),
      },
      plugins: [
        bearer(),
        ...(await extraPlugins(sendMail)),
        ...(process.env.GENERIC_OAUTH
          ? [genericOAuth({ config: JSON.parse(process.env.GENERIC_OAUTH) })]
          : []),
        ...(process.env.TWO_FACTOR
          ? [
              (() => {
                const given = JSON.parse(process.env.TWO_FACTOR);
                return twoFactor({
                  ...given,
                  otpOptions: {
                    ...given.otpOptions,
                    sendOTP: ({ user, otp }) => sendMail("two-factor-otp", user, null, otp),
                  },
                });
              })(),
            ]
          : []),
        ...(process.env.ORGANIZATION
          ? [await organizationPlugin(JSON.parse(process.env.ORGANIZATION), origin, sendMail)]
          : []),
      ],
      trustedOrigins: trusted,
      rateLimit: { enabled: process.env.RATE_LIMIT === "1" },
      ...(process.env.COOKIE_CACHE === "1"
        ? {
            session: {
              cookieCache: {
                enabled: true,
                maxAge: Number(process.env.COOKIE_CACHE_MAX_AGE || 300),
              },
            },
          }
        : {}),
    });
    if (process.env.BA_OPTIONS) deepMerge(options, JSON.parse(process.env.BA_OPTIONS));
    if (process.env.PROVIDER_ORIGINS) {
      redirectProviderFetches(JSON.parse(process.env.PROVIDER_ORIGINS));
    }

    await runMigrationsFor(options, kind);
    handler = toNodeHandler(betterAuth(options));

    const done = new Promise((resolve) => {
      for (const sig of ["SIGTERM", "SIGINT"]) process.once(sig, () => resolve(sig));
      if (process.env.EXIT_ON_STDIN_CLOSE === "1") {
        process.stdin.on("end", () => resolve("stdin closed"));
        process.stdin.on("error", () => resolve("stdin error"));
        process.stdin.resume();
      }
    });
    await writeStdout(JSON.stringify({ ready: true, url: `${origin}/api/auth` }) + "\n");
    console.error(`ba-peer: serve ${kind}: listening on ${origin}/api/auth (pid ${process.pid})`);
    await stop(await done);
  } catch (err) {
    await stop("error").catch(() => {});
    throw err;
  }
}

/**
 * organization() from $ORGANIZATION's JSON: `statements` and `roles` become the plugin's `ac`
 * and `roles` (objects of code, not JSON); invitations are mailed with the link a page would
 * put in the mail (better-auth builds none itself).
 */
async function organizationPlugin(given, origin, sendMail) {
  const { organization } = await import("better-auth/plugins");
  const { createAccessControl } = await import("better-auth/plugins/access");
  const { defaultStatements, defaultRoles } = await import(
    "better-auth/plugins/organization/access"
  );
  const { statements = {}, roles, ...options } = given;
  const ac = createAccessControl({ ...defaultStatements, ...statements });
  const builtRoles = roles
    ? Object.fromEntries(Object.entries(roles).map(([name, grants]) => [name, ac.newRole(grants)]))
    : defaultRoles;
  return organization({
    ...options,
    ac,
    roles: builtRoles,
    sendInvitationEmail: ({ id, email, role, organization: org, inviter }) =>
      sendMail("organization-invitation", { email }, `${origin}/accept-invitation/${id}`, id, {
        organization: org.name,
        inviter: inviter.user.email,
        role,
      }),
  });
}

/** The plugins named in $PLUGINS, mailing through `sendMail`. */
async function extraPlugins(sendMail) {
  const names = (process.env.PLUGINS ?? "").split(",").filter(Boolean);
  const { magicLink, emailOTP, username, openAPI } = await import("better-auth/plugins");
  const make = {
    "magic-link": () =>
      magicLink({
        sendMagicLink: ({ email, url, token }) => sendMail("magic-link", { email }, url, token),
      }),
    "email-otp": () =>
      emailOTP({
        sendVerificationOTP: ({ email, otp, type }) =>
          sendMail(`otp-${type}`, { email }, null, otp),
        changeEmail: { enabled: true },
      }),
    username: () => username(),
    "open-api": () => openAPI(),
  };
  return names.map((name) => {
    if (!make[name]) throw new Error(`unknown plugin ${name}`);
    return make[name]();
  });
}

async function main() {
  const command = process.argv[2];
  if (!COMMANDS.has(command)) usage(command ? `unknown command ${command}` : "missing command");
  const kind = (process.env.DB_KIND ?? "").toLowerCase();
  const url = process.env.DB_URL;
  if (!kind) usage("DB_KIND is not set");
  if (!url) usage("DB_URL is not set");

  if (command === "serve") return serve(kind, url);

  const { database, close } = await openDatabase(kind, url);
  try {
    const { betterAuth } = await import("better-auth");
    const { getMigrations } = await import("better-auth/db/migration");

    const options = baseOptions(database, "http://127.0.0.1:3000");
    const migrate = () => runMigrationsFor(options, kind);

    let output;
    if (command === "migrate") {
      output = JSON.stringify(await migrate()) + "\n";
    } else if (command === "sql") {
      const { compileMigrations } = await getMigrations(options, { throwOnUnsafe: false });
      const text = await compileMigrations();
      // compileMigrations() yields just ";" when there is nothing to do.
      const trimmed = text.trim();
      output = trimmed === "" || trimmed === ";" ? "" : trimmed + "\n";
    } else if (command === "check") {
      const plan = await getMigrations(options, { throwOnUnsafe: false });
      output =
        JSON.stringify({
          created: plan.toBeCreated.map((t) => t.table),
          added: plan.toBeAdded.map((t) => t.table),
          indexes: plan.toBeAddedIndexes.map((i) => i.name),
          unsafe: plan.unsafeChanges,
          problems: plan.schemaProblems,
        }) + "\n";
    } else if (command === "seed") {
      if (process.env.SEED_MIGRATE === "1") await migrate();
      const auth = betterAuth(options);
      const res = await auth.api.signUpEmail({
        body: {
          email: process.env.EMAIL || "alice@example.com",
          name: process.env.NAME || "Alice",
          password: process.env.PASSWORD || "correct-horse-battery",
        },
      });
      output = JSON.stringify({ user: res.user, token: res.token }) + "\n";
    }
    await writeStdout(output);
  } finally {
    await close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    // inspect() shows message, stack and extra props (APIError's body,
    // SchemaMismatchError's findings, pg/mysql error codes, ...).
    console.error(`ba-peer: error: ${inspect(err, { depth: 6 })}`);
    process.exit(1);
  },
);
