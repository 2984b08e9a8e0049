#!/usr/bin/env node
// Bastion e2e bridge for Mastra's own HTTP client: drives `MastraClient` from
// @mastra/client-js (the version pinned in package.json) from a Python test,
// one JSON line in -> one JSON line out (tests/e2e/mastra_client.py).
//
// Usage:  BASE_URL=http://127.0.0.1:4111 TOKEN=<bearer> [HEADERS='{"k":"v"}'] \
//           node mastra-bridge.mjs
//
// The client is built as Mastra's docs show, the credential through its
// `headers` option: new MastraClient({baseUrl, headers: {Authorization:
// `Bearer ${TOKEN}`, ...HEADERS}, retries: 0}). No TOKEN: no Authorization
// header. HEADERS (JSON) adds headers to every request, e.g.
// {"X-Bastion-Stream-Format":"mastra"}.
// `retries: 0` because the client retries 5xx answers three times with
// back-off: the test wants to see the first answer, a 500 included.
//
// Protocol: stdout's first line is {"ready":true}. Then, per stdin line, one
// stdout line:
//   {"id":n,"chain":[["getAgent",["assistant"]],["generate",["hi",{...}]]]}
//       -> client.getAgent("assistant").generate("hi", {...}): each step calls
//          a method of what the previous step returned (awaited).
//       <- {"id":n,"result":<JSON>}
//          or {"id":n,"error":{"name","message","status","body"}} when it threw
//          (MastraClientError carries the HTTP status and the parsed body).
//   A result that is a streamed Response (agent.stream) is read to its end
//   with the client's own `processDataStream({onChunk})`:
//       <- {"id":n,"result":{"status":200,"contentType":"...","chunks":[...]}}
//   {"id":n,"chain":[...],"raw":true}: a streamed Response is read as text
//       instead: {"status","contentType","text"} (what the wire carried).
// Commands run one at a time, in order. The process exits when stdin closes.
// Diagnostics go to stderr.

import process from "node:process";
import readline from "node:readline";
import { MastraClient } from "@mastra/client-js";

for (const name of ["log", "info", "debug"]) console[name] = console.error;

const writeLine = (obj) =>
  new Promise((resolve, reject) =>
    process.stdout.write(JSON.stringify(obj) + "\n", (err) => (err ? reject(err) : resolve())),
  );

const token = process.env.TOKEN;
const client = new MastraClient({
  baseUrl: process.env.BASE_URL,
  headers: {
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
    ...JSON.parse(process.env.HEADERS ?? "{}"),
  },
  retries: 0,
});

async function readStream(response, raw) {
  const head = {
    status: response.status,
    contentType: response.headers.get("content-type"),
  };
  if (raw) return { ...head, text: await response.text() };
  const chunks = [];
  await response.processDataStream({ onChunk: async (chunk) => void chunks.push(chunk) });
  return { ...head, chunks };
}

async function run(command) {
  let target = client;
  for (const [method, args = []] of command.chain) {
    if (typeof target?.[method] !== "function") throw new Error(`no method ${method}`);
    target = await target[method](...args);
  }
  if (target instanceof Response) return readStream(target, command.raw === true);
  return target;
}

const lines = readline.createInterface({ input: process.stdin });
await writeLine({ ready: true });
for await (const line of lines) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  try {
    const result = await run(command);
    await writeLine({ id: command.id, result: result ?? null });
  } catch (error) {
    await writeLine({
      id: command.id,
      error: {
        name: error?.name ?? "Error",
        message: String(error?.message ?? error),
        status: error?.status ?? null,
        body: error?.body ?? null,
      },
    });
  }
}
