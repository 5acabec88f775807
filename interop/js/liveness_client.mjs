#!/usr/bin/env node
// Interop driver: runs the REAL aws-sdk-js-v3 Rekognition streaming client
// (StartFaceLivenessSessionCommand) with the *browser* WebSocket wiring of
// @aws-sdk/middleware-websocket, in Node, using the `ws` package as the
// WebSocket implementation, against a local emulator on a loopback address.
//
// Configuration: environment variables (see README.md). Output: one JSON
// object per line on stdout. Exit codes: 0 = stream ended without exception,
// 3 = an exception arrived from the server, 4 = any other error (incl. timeout).

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import WebSocketBase from "ws";
import { decodeMessage, headerValue } from "./eventstream.mjs";

const T0 = Date.now();
const out = (obj) => {
  process.stdout.write(JSON.stringify({ ...obj, t: Date.now() - T0 }) + "\n");
};

let finished = false;
function finish(code, line) {
  if (finished) return;
  finished = true;
  if (line) out(line);
  // stdout writes to pipes/files are synchronous on Linux, so exiting right away is safe.
  process.exit(code);
}

process.on("uncaughtException", (err) => finish(4, { kind: "error", message: `uncaught: ${describe(err)}` }));
process.on("unhandledRejection", (err) => finish(4, { kind: "error", message: `unhandled rejection: ${describe(err)}` }));

function describe(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

// ---------------------------------------------------------------- configuration
function intEnv(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || !Number.isInteger(v)) finish(4, { kind: "error", message: `${name} must be an integer, got ${JSON.stringify(raw)}` });
  return v;
}

const ENDPOINT = process.env.ENDPOINT;
const REGION = process.env.AWS_REGION || "us-east-1";
const ACCESS_KEY_ID = process.env.ACCESS_KEY_ID;
const SECRET_ACCESS_KEY = process.env.SECRET_ACCESS_KEY;
const SESSION_TOKEN = process.env.SESSION_TOKEN || undefined;
const SESSION_ID = process.env.SESSION_ID || randomUUID();
const CLOCK_OFFSET_MS = intEnv("CLOCK_OFFSET_MS", 0);
const CLIENT = process.env.CLIENT || "current";
const VIDEO_FILE = process.env.VIDEO_FILE || undefined;
const CHUNKS = intEnv("CHUNKS", 3);
const TIMEOUT_MS = intEnv("TIMEOUT_MS", 15000);
const PACE_MS = intEnv("PACE_MS", 50);
const VIDEO_WIDTH = process.env.VIDEO_WIDTH || "640";
const VIDEO_HEIGHT = process.env.VIDEO_HEIGHT || "480";
const CHALLENGE_VERSIONS = process.env.CHALLENGE_VERSIONS || "FaceMovementAndLightChallenge_1.0.0";
// "port" (default): the Host header is what any WebSocket client sends, 127.0.0.1:PORT.
// "signed": send the Host value the SDK actually signed (hostname without port).
const WS_HOST_HEADER = process.env.WS_HOST_HEADER || "port";
// "1": send nothing before the ServerSessionInformationEvent arrived, as Amplify web does
// (its video recorder starts only once the session information is known).
const WAIT_FOR_SESSION_INFO = process.env.WAIT_FOR_SESSION_INFO === "1";

const hardTimer = setTimeout(
  () => finish(4, { kind: "error", message: `timeout: no completion within TIMEOUT_MS=${TIMEOUT_MS}` }),
  TIMEOUT_MS,
);

if (!ENDPOINT) finish(4, { kind: "error", message: "ENDPOINT is required (e.g. http://127.0.0.1:PORT)" });
if (!ACCESS_KEY_ID || !SECRET_ACCESS_KEY) finish(4, { kind: "error", message: "ACCESS_KEY_ID and SECRET_ACCESS_KEY are required" });
if (CLIENT !== "current" && CLIENT !== "legacy") finish(4, { kind: "error", message: `CLIENT must be current or legacy, got ${JSON.stringify(CLIENT)}` });
if (WS_HOST_HEADER !== "port" && WS_HOST_HEADER !== "signed") finish(4, { kind: "error", message: `WS_HOST_HEADER must be port or signed, got ${JSON.stringify(WS_HOST_HEADER)}` });
if (CHUNKS < 0) finish(4, { kind: "error", message: "CHUNKS must be >= 0" });

let endpointUrl;
try {
  endpointUrl = new URL(ENDPOINT);
} catch (e) {
  finish(4, { kind: "error", message: `ENDPOINT is not a URL: ${describe(e)}` });
}

function isLoopbackHost(hostname) {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
if (!isLoopbackHost(endpointUrl.hostname)) {
  finish(4, { kind: "error", message: `refusing non-loopback ENDPOINT host ${endpointUrl.hostname}` });
}

// ---------------------------------------------------------------- WebSocket shim
// The SDK's WebSocketFetchHandler does `new WebSocket(url)` on the *global*
// WebSocket, sets binaryType = "arraybuffer" and uses onopen/onmessage/onerror/
// onclose, exactly as in a browser. Node 20 has no global WebSocket, so we
// install a subclass of `ws` that:
//  * rewrites wss:// to ws:// for loopback hosts only (the SDK's
//    websocketEndpointMiddleware always forces "wss:");
//  * sets binaryType arraybuffer (the SDK does too; browsers deliver ArrayBuffer);
//  * dispatches each received message as its own task (allowSynchronousEvents:
//    false), as browsers do, instead of ws's default of firing several messages
//    from one TCP read synchronously;
//  * keeps an 'error' listener, because an EventEmitter 'error' without a
//    listener would crash Node, while a browser just fires an error event;
//  * logs what goes over the wire (url, frames sent/received, close codes).
const wire = { exceptionFrames: [], sockets: [], lastError: null };

function describeOutgoing(data) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
  const line = { kind: "sent", bytes: bytes.byteLength };
  if (typeof data === "string") return { ...line, text: true };
  try {
    const env = decodeMessage(bytes);
    line.crc_ok = env.preludeCrcOk && env.messageCrcOk;
    line.envelope_headers = env.headers.map((h) => h.name);
    const date = env.headers.find((h) => h.name === ":date");
    if (date) {
      line.date_ms = date.value;
      line.date = new Date(date.value).toISOString();
      line.date_type = date.typeName;
    }
    const sig = env.headers.find((h) => h.name === ":chunk-signature");
    if (sig) line.chunk_signature = sig.value;
    line.payload_bytes = env.payload.length;
    if (env.payload.length === 0) {
      line.end_frame = true;
    } else {
      try {
        const inner = decodeMessage(env.payload);
        line.inner_headers = inner.headers.map((h) => [h.name, h.value]);
        line.inner_event_type = headerValue(inner, ":event-type");
        const body = JSON.parse(inner.payload.toString("utf8"));
        if (body && typeof body === "object") {
          line.inner_keys = Object.keys(body);
          if (typeof body.VideoChunk === "string") line.video_chunk_bytes = Buffer.from(body.VideoChunk, "base64").length;
          if (body.TimestampMillis !== undefined) line.timestamp_millis = body.TimestampMillis;
        }
      } catch (e) {
        line.inner_error = describe(e);
      }
    }
  } catch (e) {
    line.decode_error = describe(e);
  }
  return line;
}

function describeIncoming(data) {
  const bytes = typeof data === "string" ? Buffer.from(data, "base64") : Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
  const line = { kind: "recv", bytes: bytes.length };
  if (typeof data === "string") line.text = true;
  try {
    const m = decodeMessage(bytes);
    line.message_type = headerValue(m, ":message-type");
    for (const k of [":event-type", ":exception-type", ":error-code", ":error-message"]) {
      const v = headerValue(m, k);
      if (v !== undefined) line[k.slice(1).replace("-", "_")] = v;
    }
    if (line.message_type === "exception" || line.message_type === "error") {
      wire.exceptionFrames.push({ name: line.exception_type ?? line.error_code, message_type: line.message_type });
    }
  } catch (e) {
    line.decode_error = describe(e);
  }
  return line;
}

class LoopbackWebSocket extends WebSocketBase {
  constructor(address, protocols, options) {
    let url = String(address);
    const parsed = new URL(url);
    let rewritten = false;
    if (parsed.protocol === "wss:" && isLoopbackHost(parsed.hostname)) {
      // Plain string rewrite: the query string stays byte-for-byte as the SDK signed it.
      url = "ws://" + url.slice("wss://".length);
      rewritten = true;
    }
    const opts = { allowSynchronousEvents: false, ...(options ?? {}) };
    if (WS_HOST_HEADER === "signed") {
      // The SDK signs `host:<hostname>` without the port (see README); optionally send exactly that.
      opts.headers = { ...(opts.headers ?? {}), Host: parsed.hostname };
    }
    super(url, protocols, opts);
    this.binaryType = "arraybuffer";
    wire.sockets.push(this);
    const q = new URL(url).searchParams;
    out({
      kind: "url",
      url,
      rewritten_from_wss: rewritten,
      path: parsed.pathname,
      query_names: [...q.keys()],
      x_amz_date: q.get("X-Amz-Date"),
      x_amz_expires: q.get("X-Amz-Expires"),
      user_agent: q.get("user-agent"),
      x_amz_user_agent: q.get("x-amz-user-agent"),
      host_header: WS_HOST_HEADER === "signed" ? parsed.hostname : parsed.host,
    });
    this.on("upgrade", (res) => out({ kind: "ws", event: "upgrade", status: res.statusCode, date: res.headers.date ?? null }));
    this.on("open", () => out({ kind: "ws", event: "open" }));
    this.on("message", (data) => out(describeIncoming(data)));
    this.on("error", (err) => {
      wire.lastError = describe(err);
      out({ kind: "ws", event: "error", message: wire.lastError });
    });
    this.on("close", (code, reason) => out({ kind: "ws", event: "close", code, reason: reason.toString("utf8") }));
  }

  send(data, ...rest) {
    out(describeOutgoing(data));
    return super.send(data, ...rest);
  }

  close(code, reason) {
    // ws itself calls close() to echo a close frame received from the server; only
    // calls made while no close frame has been received come from the SDK.
    const echo = Boolean(this._closeFrameReceived);
    out({
      kind: "ws",
      event: echo ? "close_echo" : "client_close",
      code: code ?? null,
      reason: reason === undefined ? null : Buffer.isBuffer(reason) ? reason.toString("utf8") : String(reason),
      ready_state: this.readyState,
    });
    return super.close(code, reason);
  }
}
globalThis.WebSocket = LoopbackWebSocket;

// ---------------------------------------------------------------- SDK wiring
const require = createRequire(import.meta.url);

function loadSdk() {
  if (CLIENT === "current") {
    const pkgMain = require.resolve("@aws-sdk/client-rekognitionstreaming");
    const fromClient = createRequire(pkgMain); // resolve the exact copies the client bundle uses
    return {
      sdk: require("@aws-sdk/client-rekognitionstreaming"),
      ws: fromClient("@aws-sdk/middleware-websocket"),
      // runtimeConfig.browser.js imports eventStreamSerdeProvider from "@smithy/core/event-streams",
      // which a bundler maps (package.json "browser" condition) to index.browser.js: the
      // ReadableStream-based marshaller. Node's condition would give the Node-stream one,
      // which the WebSocket payload handler rejects. Load the browser file by absolute path.
      serde: fromClient(
        fromClient.resolve("@smithy/core/event-streams").replace(/index\.js$/, "index.browser.js"),
      ).eventStreamSerdeProvider,
      versions: {
        client: fromClient("@aws-sdk/client-rekognitionstreaming/package.json").version,
        middleware_websocket: fromClient("@aws-sdk/middleware-websocket/package.json").version,
      },
    };
  }
  const pkgMain = require.resolve("rekognitionstreaming-legacy");
  const fromClient = createRequire(pkgMain);
  return {
    sdk: require("rekognitionstreaming-legacy"),
    ws: fromClient("@aws-sdk/middleware-websocket"),
    // the legacy browser runtime uses the browser (ReadableStream) serde
    serde: fromClient("@smithy/eventstream-serde-browser").eventStreamSerdeProvider,
    versions: {
      client: require("rekognitionstreaming-legacy/package.json").version,
      middleware_websocket: fromClient("@aws-sdk/middleware-websocket/package.json").version,
    },
  };
}

const { sdk, ws: mw, serde, versions } = loadSdk();
out({
  kind: "start",
  client: CLIENT,
  client_version: versions.client,
  middleware_websocket_version: versions.middleware_websocket,
  node: process.version,
  endpoint: ENDPOINT,
  region: REGION,
  session_id: SESSION_ID,
  clock_offset_ms: CLOCK_OFFSET_MS,
});

// Same pieces as the client's dist-es/runtimeConfig.browser.js: WebSocketFetchHandler
// as request handler and middleware-websocket's eventStreamPayloadHandlerProvider
// (the Node runtime would use HTTP/2 + @aws-sdk/eventstream-handler-node instead).
const clientConfig = {
  region: REGION,
  endpoint: ENDPOINT,
  credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY, ...(SESSION_TOKEN ? { sessionToken: SESSION_TOKEN } : {}) },
  systemClockOffset: CLOCK_OFFSET_MS,
  requestHandler: new mw.WebSocketFetchHandler({}),
  eventStreamPayloadHandlerProvider: mw.eventStreamPayloadHandlerProvider,
  ...(serde ? { eventStreamSerdeProvider: serde } : {}),
  maxAttempts: 1, // a retry would hide what the emulator did on the first attempt
  useFipsEndpoint: false,
  useDualstackEndpoint: false,
};
const client = new sdk.RekognitionStreamingClient(clientConfig);

// ---------------------------------------------------------------- request stream
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Date.now() + CLOCK_OFFSET_MS;

function videoChunks() {
  if (CHUNKS === 0) return [];
  if (VIDEO_FILE) {
    const data = readFileSync(VIDEO_FILE);
    const size = Math.ceil(data.length / CHUNKS) || 1;
    const chunks = [];
    for (let i = 0; i < data.length; i += size) chunks.push(new Uint8Array(data.subarray(i, i + size)));
    return chunks;
  }
  // Fake "video": deterministic bytes, starting with the EBML magic of a webm file.
  return Array.from({ length: CHUNKS }, (_, i) => {
    const b = new Uint8Array(1024 + i);
    b.set([0x1a, 0x45, 0xdf, 0xa3]);
    for (let j = 4; j < b.length; j++) b[j] = (i * 31 + j) & 0xff;
    return b;
  });
}

// The challenge the session runs: the first requested type the service knows (the member a
// ClientSessionInformationEvent must carry).
// The legacy model (3.398.0) knows only the light member, so that client always sends it.
const SESSION_CHALLENGE =
  CLIENT === "legacy" ? "FaceMovementAndLightChallenge" : CHALLENGE_VERSIONS.split(",")
    .map((entry) => entry.split("_")[0])
    .find((type) => type === "FaceMovementAndLightChallenge" || type === "FaceMovementChallenge") ??
  "FaceMovementAndLightChallenge";

function challengeEvent(videoStart, videoEnd) {
  const box = { Width: 0.5, Height: 0.6, Left: 0.25, Top: 0.2 };
  const record = {
    ChallengeId: randomUUID(),
    VideoStartTimestamp: videoStart,
    VideoEndTimestamp: videoEnd,
    InitialFace: { BoundingBox: box, InitialFaceDetectedTimestamp: videoStart },
    TargetFace: {
      BoundingBox: { Width: 0.6, Height: 0.7, Left: 0.2, Top: 0.15 },
      FaceDetectedInTargetPositionStartTimestamp: videoStart + 1,
      FaceDetectedInTargetPositionEndTimestamp: videoEnd,
    },
  };
  if (SESSION_CHALLENGE === "FaceMovementAndLightChallenge") {
    record.ColorDisplayed = {
      CurrentColor: { RGB: [255, 0, 0] },
      SequenceNumber: 1,
      CurrentColorStartTimestamp: videoEnd,
      PreviousColor: { RGB: [0, 0, 0] },
    };
  }
  return { ClientSessionInformationEvent: { Challenge: { [SESSION_CHALLENGE]: record } } };
}

let sessionInfoArrived;
const sessionInfo = new Promise((resolve) => {
  sessionInfoArrived = resolve;
});

async function* requestStream() {
  if (WAIT_FOR_SESSION_INFO) {
    await sessionInfo;
    out({ kind: "input_start", after: "ServerSessionInformationEvent" });
  }
  const chunks = videoChunks();
  const videoStart = nowMs();
  for (const chunk of chunks) {
    yield { VideoEvent: { VideoChunk: chunk, TimestampMillis: nowMs() } };
    await sleep(PACE_MS);
  }
  yield challengeEvent(videoStart, nowMs());
  await sleep(PACE_MS);
  yield { VideoEvent: { VideoChunk: new Uint8Array(0), TimestampMillis: nowMs() } };
  await sleep(PACE_MS);
  out({ kind: "input_end" });
  // returning ends the input; the SDK then sends the signed empty end frame and closes the socket
}

// ---------------------------------------------------------------- run
function toJsonSafe(v) {
  return JSON.parse(JSON.stringify(v, (_, x) => (x instanceof Uint8Array ? Buffer.from(x).toString("base64") : typeof x === "bigint" ? x.toString() : x)));
}

function exceptionLine(err) {
  // Rekognition exception frames carry {"Message": "..."}; unmodeled ones surface as Error(rawPayload).
  // The current SDK may append "\n  Deserialization error: ..." to the raw payload.
  let message = err?.message ?? describe(err);
  let raw;
  if (typeof message === "string" && message.startsWith("{")) {
    const jsonPart = message.split("\n  Deserialization error:")[0];
    try {
      const parsed = JSON.parse(jsonPart);
      raw = message;
      message = parsed.Message ?? parsed.message ?? jsonPart;
    } catch {
      /* keep as is */
    }
  }
  return { kind: "exception", name: err?.name ?? "Unknown", message, ...(raw ? { raw } : {}), ...(err?.Code ? { code: err.Code } : {}) };
}

async function waitForSocketsClosed(maxMs) {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline && wire.sockets.some((s) => s.readyState !== WebSocketBase.CLOSED)) await sleep(10);
}

async function main() {
  const command = new sdk.StartFaceLivenessSessionCommand({
    SessionId: SESSION_ID,
    VideoWidth: VIDEO_WIDTH,
    VideoHeight: VIDEO_HEIGHT,
    ChallengeVersions: CHALLENGE_VERSIONS,
    LivenessRequestStream: requestStream(),
  });
  let response;
  try {
    response = await client.send(command);
  } catch (err) {
    await waitForSocketsClosed(200);
    if (wire.exceptionFrames.length > 0) finish(3, exceptionLine(err));
    // A failed upgrade (refused, HTTP 403, ...) only surfaces after the SDK's connection
    // timeout (3000 ms current, 2000 ms legacy) as an Error with an empty message and
    // $metadata {httpStatusCode: 500, websocketSynthetic500Error: true}; add what ws saw.
    finish(4, {
      kind: "error",
      message: `send failed: ${describe(err)}${wire.lastError ? ` (websocket: ${wire.lastError})` : ""}`,
      phase: "connect",
      ...(err?.$metadata ? { metadata: err.$metadata } : {}),
    });
    return;
  }
  out({ kind: "response", session_id: response.SessionId ?? null, status: response.$metadata?.httpStatusCode ?? null });
  try {
    for await (const event of response.LivenessResponseStream) {
      const [type] = Object.keys(event);
      out({ kind: "event", type, body: toJsonSafe(event[type]) });
      if (type === "ServerSessionInformationEvent") sessionInfoArrived();
    }
  } catch (err) {
    await waitForSocketsClosed(500);
    const isServerException = wire.exceptionFrames.length > 0 || (err && typeof err === "object" && "$fault" in err);
    if (isServerException) finish(3, exceptionLine(err));
    finish(4, { kind: "error", message: describe(err), phase: "stream" });
    return;
  }
  await waitForSocketsClosed(1000);
  if (wire.exceptionFrames.length > 0) {
    // An exception frame arrived but the SDK did not throw (should not happen); still report it.
    finish(3, { kind: "exception", name: wire.exceptionFrames[0].name, message: "exception frame received but not surfaced by the SDK" });
  }
  clearTimeout(hardTimer);
  finish(0, { kind: "done" });
}

main().catch((err) => finish(4, { kind: "error", message: describe(err) }));
