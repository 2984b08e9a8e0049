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
const COMMANDS = new Set(["migrate", "seed", "sql", "check"]);

function usage(msg) {
  if (msg) console.error(`ba-peer: ${msg}`);
  console.error(
    "usage: DB_KIND=sqlite|postgres|mysql DB_URL=<path|url> node ba-peer.mjs migrate|seed|sql|check",
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

async function main() {
  const command = process.argv[2];
  if (!COMMANDS.has(command)) usage(command ? `unknown command ${command}` : "missing command");
  const kind = (process.env.DB_KIND ?? "").toLowerCase();
  const url = process.env.DB_URL;
  if (!kind) usage("DB_KIND is not set");
  if (!url) usage("DB_URL is not set");

  const { database, close } = await openDatabase(kind, url);
  try {
    const { betterAuth } = await import("better-auth");
    const { getMigrations } = await import("better-auth/db/migration");

    const options = {
      baseURL: "http://127.0.0.1:3000",
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

    const migrate = async () => {
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
      const { runMigrations } = plan;
      await runMigrations();
      return result;
    };

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
