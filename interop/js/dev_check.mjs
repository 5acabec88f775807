#!/usr/bin/env node
// DEBUGGING AID ONLY — not used by CI. Runs liveness_client.mjs against
// dev_server.mjs in several configurations and checks the wire facts recorded in
// README.md. Prints one line per check and a closing "N passed, N failed".
//
//   node dev_check.mjs            (or: npm run dev-check)

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const SECRET = "dev-check-secret-key";
const HOUR = 3600_000;

function startServer(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, "dev_server.mjs")], {
      env: { ...process.env, ...env, DEV_ONCE: "1", SECRET_ACCESS_KEY: SECRET },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const lines = [];
    const rl = createInterface({ input: child.stdout });
    rl.on("line", (l) => {
      const o = JSON.parse(l);
      lines.push(o);
      if (o.kind === "listening") resolve({ child, lines, port: o.port });
    });
    child.on("exit", (code) => reject(new Error(`dev_server exited early (${code})`)));
  });
}

function runClient(env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, "liveness_client.mjs")], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = [];
    let stderr = "";
    createInterface({ input: child.stdout }).on("line", (l) => lines.push(JSON.parse(l)));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, lines, stderr }));
  });
}

async function scenario(serverEnv, clientEnv) {
  const server = await startServer(serverEnv);
  const client = await runClient({
    ENDPOINT: `http://127.0.0.1:${server.port}`,
    ACCESS_KEY_ID: "AKIDDEVCHECK",
    SECRET_ACCESS_KEY: SECRET,
    SESSION_ID: "3f1c1a52-8a0e-4b7e-9c1f-2b8d7e0c5a11",
    ...clientEnv,
  });
  await new Promise((r) => setTimeout(r, 200));
  server.child.kill();
  return { client, server: server.lines };
}

let passed = 0;
let failed = 0;
function check(name, cond, detail) {
  if (cond) passed++;
  else failed++;
  console.log(`${cond ? "ok  " : "FAIL"} ${name}${!cond && detail !== undefined ? `  -- ${JSON.stringify(detail)}` : ""}`);
}

const amzToMs = (s) => Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(9, 11), +s.slice(11, 13), +s.slice(13, 15));
const near = (a, b, tol = 15_000) => Math.abs(a - b) <= tol;
const EXPECTED_QUERY = ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature", "X-Amz-SignedHeaders", "challenge-versions", "session-id", "video-height", "video-width", "x-amz-user-agent"];

async function basic(clientName) {
  const { client, server } = await scenario({}, { CLIENT: clientName });
  const c = client.lines;
  const tag = `[${clientName}]`;
  check(`${tag} exit code 0`, client.code === 0, client.code);
  check(`${tag} last line is done`, c.at(-1)?.kind === "done", c.at(-1));
  const url = c.find((l) => l.kind === "url");
  check(`${tag} connects with ws:// (rewritten from wss://)`, url?.url.startsWith("ws://127.0.0.1:") && url.rewritten_from_wss, url?.url);
  check(`${tag} query parameter names`, JSON.stringify(url?.query_names) === JSON.stringify(EXPECTED_QUERY), url?.query_names);
  check(`${tag} no 'user-agent' param, 'x-amz-user-agent' = aws-sdk-js/<v>`, url?.user_agent === null && /^aws-sdk-js\/3\.\d+\.\d+$/.test(url?.x_amz_user_agent ?? ""), url);
  check(`${tag} X-Amz-Expires=60`, url?.x_amz_expires === "60", url?.x_amz_expires);
  const pre = server.find((l) => l.kind === "presign");
  check(`${tag} presign verifies, signed host has no port`, pre?.ok === true && pre.signed_host === "127.0.0.1" && pre.host_header !== pre.signed_host, pre);
  const frames = server.filter((l) => l.kind === "frame");
  check(`${tag} every frame is a signed envelope [:date, :chunk-signature]`, frames.length > 0 && frames.every((f) => f.binary && f.crc_ok && JSON.stringify(f.envelope_headers) === '[":date:timestamp",":chunk-signature:bytes"]'), frames.map((f) => f.envelope_headers));
  check(`${tag} every chained signature verifies`, frames.every((f) => f.sig_ok === true), frames.map((f) => f.sig_ok));
  const types = frames.map((f) => (f.end_frame ? "END" : f.inner_event_type + (f.video_chunk_bytes === 0 ? "(empty)" : "")));
  check(`${tag} frame sequence`, JSON.stringify(types) === JSON.stringify(["VideoEvent", "VideoEvent", "VideoEvent", "ClientSessionInformationEvent", "VideoEvent(empty)", "END"]), types);
  check(`${tag} inner headers order :event-type, :message-type, :content-type`, frames.filter((f) => !f.end_frame).every((f) => f.inner_headers[0].startsWith(":event-type=") && f.inner_headers[1] === ":message-type=event" && f.inner_headers[2] === ":content-type=application/json"), frames[0]?.inner_headers);
  check(`${tag} end frame is 83 bytes with empty payload`, frames.at(-1)?.end_frame && frames.at(-1).bytes === 83, frames.at(-1));
  const ev = c.filter((l) => l.kind === "event").map((l) => l.type);
  check(`${tag} receives ServerSessionInformationEvent then DisconnectionEvent`, JSON.stringify(ev) === '["ServerSessionInformationEvent","DisconnectionEvent"]', ev);
  const closes = c.filter((l) => l.kind === "ws" && l.event === "client_close");
  check(`${tag} SDK closes with 1000 (no reason) after the end frame`, closes.length === 1 && closes[0].code === 1000 && closes[0].reason === null, closes);
  const srvClose = server.find((l) => l.kind === "close");
  check(`${tag} server sees close 1000`, srvClose?.code === 1000, srvClose);
}

async function offset(clientName, expectFramesShifted) {
  const { client, server } = await scenario({}, { CLIENT: clientName, CLOCK_OFFSET_MS: String(HOUR) });
  const tag = `[${clientName} CLOCK_OFFSET_MS=+1h]`;
  const now = Date.now();
  const url = client.lines.find((l) => l.kind === "url");
  const urlMs = amzToMs(url.x_amz_date);
  check(`${tag} exit 0 (dev server does not check time)`, client.code === 0, client.code);
  check(`${tag} URL X-Amz-Date shifted by +1h`, near(urlMs, now + HOUR), { x_amz_date: url.x_amz_date });
  const frames = server.filter((l) => l.kind === "frame");
  const shifted = frames.every((f) => near(f.date_ms, now + HOUR));
  const unshifted = frames.every((f) => near(f.date_ms, now));
  check(`${tag} frame :date ${expectFramesShifted ? "shifted by +1h" : "NOT shifted (raw clock)"}`, expectFramesShifted ? shifted : unshifted, frames.map((f) => f.date));
  check(`${tag} :date carries milliseconds`, frames.some((f) => f.date_has_ms), frames.map((f) => f.date_ms));
}

async function skewServer(clientName, expectCode) {
  const { client } = await scenario({ DEV_CHECK_SKEW: "1", DEV_SERVER_CLOCK_OFFSET_MS: String(HOUR) }, { CLIENT: clientName, CLOCK_OFFSET_MS: String(HOUR) });
  const tag = `[${clientName} vs server clock +1h, ±5 min window]`;
  check(`${tag} exit ${expectCode}`, client.code === expectCode, { code: client.code, last: client.lines.at(-1) });
  if (expectCode === 3) {
    const ex = client.lines.at(-1);
    check(`${tag} InvalidSignatureException "Signature expired"`, ex.kind === "exception" && ex.name === "InvalidSignatureException" && ex.message.startsWith("Signature expired:"), ex);
  }
}

async function exceptionMode(clientName) {
  const { client } = await scenario({ DEV_MODE: "exception" }, { CLIENT: clientName });
  const ex = client.lines.at(-1);
  check(`[${clientName} DEV_MODE=exception] exit 3 with exception line`, client.code === 3 && ex.kind === "exception" && ex.name === "InvalidSignatureException", ex);
}

async function hostSigned() {
  const { client, server } = await scenario({}, { CLIENT: "current", WS_HOST_HEADER: "signed" });
  const pre = server.find((l) => l.kind === "presign");
  check("[current WS_HOST_HEADER=signed] Host header equals signed host", client.code === 0 && pre.host_header === "127.0.0.1" && pre.signed_host === "127.0.0.1", pre);
}

async function sessionToken(clientName) {
  const { client, server } = await scenario({}, { CLIENT: clientName, SESSION_TOKEN: "tok/en+with=odd chars" });
  const url = client.lines.find((l) => l.kind === "url");
  const pre = server.find((l) => l.kind === "presign");
  const frames = server.filter((l) => l.kind === "frame");
  check(
    `[${clientName} SESSION_TOKEN] X-Amz-Security-Token is in the signed query; all signatures verify`,
    client.code === 0 && url.query_names.includes("X-Amz-Security-Token") && pre.ok && frames.every((f) => f.sig_ok),
    { code: client.code, pre },
  );
}

async function disconnectOnEnd(clientName) {
  const { client } = await scenario({ DEV_DISCONNECT_ON: "end" }, { CLIENT: clientName });
  const ev = client.lines.filter((l) => l.kind === "event").map((l) => l.type);
  check(`[${clientName} DisconnectionEvent sent in answer to the end frame] still delivered`, client.code === 0 && ev.includes("DisconnectionEvent"), { code: client.code, ev });
}

async function refused() {
  const r = await runClient({ ENDPOINT: "http://127.0.0.1:1", ACCESS_KEY_ID: "a", SECRET_ACCESS_KEY: "b" });
  check("[current, nothing listening] exit 4 with error line", r.code === 4 && r.lines.at(-1).kind === "error", r.lines.at(-1));
}

for (const name of ["current", "legacy"]) await basic(name);
await offset("current", true);
await offset("legacy", false);
await skewServer("current", 0);
await skewServer("legacy", 3);
await exceptionMode("current");
await exceptionMode("legacy");
await hostSigned();
await sessionToken("current");
await sessionToken("legacy");
await disconnectOnEnd("current");
await disconnectOnEnd("legacy");
await refused();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
