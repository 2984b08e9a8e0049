// scratch: observe better-auth 1.7.25 two-factor (not committed)
import { betterAuth } from "better-auth";
import { twoFactor, bearer } from "better-auth/plugins";
import { getMigrations } from "better-auth/db/migration";
import { createOTP } from "@better-auth/utils/otp";
import { symmetricDecrypt } from "better-auth/crypto";
import Database from "better-sqlite3";

const SECRET = "a-very-long-secret-value-for-golden-tests-0123456789";
const O = "http://localhost:3000";
const B = O + "/api/auth";
const mails = [];
const extra = JSON.parse(process.env.TF || "{}");
const db = new Database(":memory:");
const options = {
  baseURL: O, secret: SECRET, database: db,
  emailAndPassword: { enabled: true },
  session: { cookieCache: { enabled: process.env.CC === "1", maxAge: 300 } },
  rateLimit: { enabled: process.env.RL === "1" },
  logger: { level: "error" },
  plugins: [twoFactor({ issuer: "TopIssuer", otpOptions: { sendOTP: async ({ user, otp }) => mails.push(otp) }, ...extra }), bearer()],
};
await (await getMigrations(options)).runMigrations();
const auth = betterAuth(options);
export async function call(method, path, { body, headers = {}, raw, quiet } = {}) {
  const h = new Headers(headers);
  if (!h.has("origin")) h.set("origin", O);
  let b; if (body !== undefined) { b = raw ? body : JSON.stringify(body); if (!h.has("content-type")) h.set("content-type", "application/json"); }
  const res = await auth.handler(new Request(B + path, { method, headers: h, body: b }));
  const text = await res.text();
  const out = { status: res.status };
  const hs = {}; res.headers.forEach((v, k) => { if (!["set-cookie", "content-type", "content-length"].includes(k)) hs[k] = v; });
  if (Object.keys(hs).length) out.headers = hs;
  out.setCookie = res.headers.getSetCookie().map(c => c.replace(/=([^;]{12})[^;]*/, "=$1…"));
  out.body = text.length > 600 ? text.slice(0, 600) + "..." : text;
  if (!quiet) console.log(`\n### ${method} ${path}` + (body !== undefined ? ` body=${raw ? body : JSON.stringify(body)}` : "") + "\n" + JSON.stringify(out));
  return { res, cookies: res.headers.getSetCookie(), json: (() => { try { return JSON.parse(text) } catch { return text } })() };
}
export function jar() { const j = {}; j.absorb = (sc) => { for (const c of sc) { const [nv] = c.split(";"); const i = nv.indexOf("="); const n = nv.slice(0, i), v = nv.slice(i + 1); if (v === "" || /Max-Age=0/.test(c)) delete j.c[n]; else j.c[n] = v; } }; j.c = {}; j.ck = () => Object.entries(j.c).map(([k, v]) => `${k}=${v}`).join("; "); return j; }
export const totp = async (secret, off = 0) => createOTP(secret).hotp(Math.floor(Date.now() / 30000) + off);
export const row = (email) => db.prepare('select t.* from "twoFactor" t join "user" u on u.id = t."userId" where u.email = ?').get(email);
export const user = (email) => db.prepare('select * from "user" where email = ?').get(email);
export const verifs = () => db.prepare('select identifier, value, "expiresAt" from verification').all();
export const secretOf = async (email) => symmetricDecrypt({ key: SECRET, data: row(email).secret });
export const codesOf = async (email) => JSON.parse(await symmetricDecrypt({ key: SECRET, data: row(email).backupCodes }));
export { auth, db, mails };
