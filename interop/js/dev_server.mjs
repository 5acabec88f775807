#!/usr/bin/env node
// DEBUGGING AID ONLY — not the emulator and not used by CI.
//
// A tiny `ws` server on 127.0.0.1 that stands in for the Rust emulator so that
// liveness_client.mjs can be exercised on its own. It logs (as JSON lines on
// stdout) the upgrade URL's query parameter names and, for every binary message,
// the decoded signature envelope (:date, :chunk-signature) and the inner event's
// headers; it answers with a ServerSessionInformationEvent right after the
// upgrade and a DisconnectionEvent once the client's empty VideoChunk arrives.
//
// If SECRET_ACCESS_KEY is set it also checks the presigned URL and the chained
// per-event signatures (protocol.md sections 2 and 3) and, with
// DEV_CHECK_SKEW=1, the ±5 minute window against its own clock
// (Date.now() + DEV_SERVER_CLOCK_OFFSET_MS). A failed check is answered with an
// InvalidSignatureException exception frame followed by a close.
//
// Environment:
//   PORT                        listen port (default 0 = ephemeral; printed in the first line)
//   SECRET_ACCESS_KEY           enables signature checks
//   DEV_CHECK_SKEW=1            enables the ±5 min time-window check (needs nothing else)
//   DEV_SERVER_CLOCK_OFFSET_MS  offset of the server's notion of "now" (default 0)
//   DEV_MODE                    normal | exception (send InvalidSignatureException on connect)
//                               | burst (send ChallengeEvent + ServerSessionInformationEvent back to back)
//   DEV_CLOSE_CODE              close code used after an exception frame (default 1008; arbitrary, not AWS's)
//   DEV_SESSION_INFO_COUNT      how many ServerSessionInformationEvents to send back to back (default 1)
//   DEV_DISCONNECT_ON           empty-chunk (default: answer the empty VideoChunk) | end (answer the end frame)
//   DEV_CLOSE_AFTER_DISCONNECT=1  the server closes (1000) right after sending DisconnectionEvent
//   DEV_ONCE=1                  exit after the first connection has closed
//
// Usage: node dev_server.mjs   →  {"kind":"listening","endpoint":"http://127.0.0.1:PORT",...}
//        ENDPOINT=http://127.0.0.1:PORT ... node liveness_client.mjs

import { createHash, createHmac } from "node:crypto";
import { WebSocketServer } from "ws";
import { decodeMessage, encodeHeader, headerValue, serverEvent, serverException } from "./eventstream.mjs";

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const SECRET = process.env.SECRET_ACCESS_KEY || "";
const CHECK_SKEW = process.env.DEV_CHECK_SKEW === "1";
const SERVER_OFFSET = Number(process.env.DEV_SERVER_CLOCK_OFFSET_MS || 0);
const MODE = process.env.DEV_MODE || "normal";
const CLOSE_CODE = Number(process.env.DEV_CLOSE_CODE || 1008);
const ONCE = process.env.DEV_ONCE === "1";
const REPEAT = Number(process.env.DEV_SESSION_INFO_COUNT || 1);
const CLOSE_AFTER_DISCONNECT = process.env.DEV_CLOSE_AFTER_DISCONNECT === "1";
const DISCONNECT_ON = process.env.DEV_DISCONNECT_ON || "empty-chunk";
const WINDOW_MS = 5 * 60 * 1000;
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const sha256hex = (b) => createHash("sha256").update(b).digest("hex");
const hmac = (k, s) => createHmac("sha256", k).update(s).digest();
const serverNow = () => Date.now() + SERVER_OFFSET;

function amzDate(ms) {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}
function parseAmzDate(s) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || "");
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}
function signingKey(day, region, service) {
  return hmac(hmac(hmac(hmac("AWS4" + SECRET, day), region), service), "aws4_request");
}
// RFC 3986 strict encoding as SigV4 wants it (only A-Z a-z 0-9 - _ . ~ left bare)
const uriEscape = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

function windowError(signedMs, now) {
  // message formats from protocol.md 5.1
  const fmt = (ms) => amzDate(ms);
  if (signedMs < now - WINDOW_MS) return `Signature expired: ${fmt(signedMs)} is now earlier than ${fmt(now - WINDOW_MS)} (${fmt(now)} - 5 min.)`;
  if (signedMs > now + WINDOW_MS) return `Signature not yet current: ${fmt(signedMs)} is still later than ${fmt(now + WINDOW_MS)} (${fmt(now)} + 5 min.)`;
  return null;
}

/** Verify the presigned upgrade URL. Returns {ok, error?, seed, region, service}. */
function checkPresign(rawUrl, host) {
  const qIndex = rawUrl.indexOf("?");
  const path = qIndex < 0 ? rawUrl : rawUrl.slice(0, qIndex);
  const rawQuery = qIndex < 0 ? "" : rawUrl.slice(qIndex + 1);
  const pairs = rawQuery
    .split("&")
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf("=");
      const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      const v = decodeURIComponent(i < 0 ? "" : kv.slice(i + 1));
      return [k, v];
    });
  const q = Object.fromEntries(pairs);
  const cred = (q["X-Amz-Credential"] || "").split("/");
  const [, day, region, service] = cred;
  const result = { seed: q["X-Amz-Signature"] || "", region, service, ok: true };
  if (!SECRET) return { ...result, checked: false };
  const canonicalQuery = pairs
    .filter(([k]) => k !== "X-Amz-Signature")
    .map(([k, v]) => [uriEscape(k), uriEscape(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const scope = `${day}/${region}/${service}/aws4_request`;
  // The JS SDK signs `host` WITHOUT the port when the endpoint has a non-default port
  // (its websocketEndpointMiddleware sets the host header from request.hostname before
  // hostHeaderMiddleware runs), while the WebSocket client sends `Host: 127.0.0.1:PORT`.
  // So try the Host header as received first, then the same without its port.
  const candidates = [host, host.replace(/:\d+$/, "")].filter((h, i, a) => a.indexOf(h) === i);
  let signedHost = null;
  for (const h of candidates) {
    const canonicalRequest = ["GET", path, canonicalQuery, `host:${h}`, "", "host", EMPTY_SHA256].join("\n");
    const sts = ["AWS4-HMAC-SHA256", q["X-Amz-Date"], scope, sha256hex(canonicalRequest)].join("\n");
    const expected = createHmac("sha256", signingKey(day, region, service)).update(sts).digest("hex");
    if (expected === result.seed) {
      signedHost = h;
      break;
    }
  }
  result.signed_host = signedHost;
  if (signedHost === null) return { ...result, checked: true, ok: false, error: "The request signature we calculated does not match the signature you provided." };
  if (CHECK_SKEW) {
    const err = windowError(parseAmzDate(q["X-Amz-Date"]), serverNow());
    if (err) return { ...result, checked: true, ok: false, error: err };
  }
  return { ...result, checked: true };
}

const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(process.env.PORT || 0) });
wss.on("listening", () => {
  const { port } = wss.address();
  out({ kind: "listening", port, endpoint: `http://127.0.0.1:${port}`, verify: !!SECRET, check_skew: CHECK_SKEW, server_clock_offset_ms: SERVER_OFFSET, mode: MODE });
});

let connectionCounter = 0;
wss.on("connection", (ws, req) => {
  const conn = ++connectionCounter;
  const u = new URL(req.url, "http://placeholder");
  out({
    kind: "upgrade",
    conn,
    path: u.pathname,
    query_names: [...u.searchParams.keys()],
    query: Object.fromEntries([...u.searchParams.entries()].filter(([k]) => k !== "X-Amz-Signature" && k !== "X-Amz-Security-Token")),
    host: req.headers.host,
    request_headers: Object.keys(req.headers),
  });
  const pre = checkPresign(req.url, req.headers.host);
  out({ kind: "presign", conn, checked: pre.checked, ok: pre.ok, signed_host: pre.signed_host ?? null, host_header: req.headers.host, error: pre.error ?? null });
  let prior = pre.seed;
  let frameNo = 0;
  let failed = false;

  const fail = (message) => {
    failed = true;
    out({ kind: "send_exception", conn, name: "InvalidSignatureException", message });
    ws.send(serverException("InvalidSignatureException", { Message: message }));
    ws.close(CLOSE_CODE, "InvalidSignatureException");
  };

  const sessionInfo = {
    SessionInformation: {
      Challenge: {
        FaceMovementAndLightChallenge: {
          OvalParameters: { Width: 0.5, Height: 0.6, CenterX: 0.5, CenterY: 0.45 },
          LightChallengeType: "SEQUENTIAL",
          ChallengeConfig: { BlazeFaceDetectionThreshold: 0.75, FaceDistanceThresholdMin: 0.4, FaceDistanceThreshold: 0.32, FaceDistanceThresholdMax: 0.1, OvalIouThreshold: 0.7, OvalHeightWidthRatio: 1.618, OvalIouWidthThreshold: 0.25, OvalIouHeightThreshold: 0.25, FaceIouWidthThreshold: 0.15, FaceIouHeightThreshold: 0.15, OvalFitTimeout: 7000 },
          ColorSequences: [{ FreshnessColor: { RGB: [255, 0, 0] }, DownscrollDuration: 300, FlatDisplayDuration: 100 }],
        },
      },
    },
  };

  if (!pre.ok) {
    fail(pre.error);
  } else if (MODE === "exception") {
    fail("Signature not yet current: (dev_server DEV_MODE=exception)");
  } else {
    if (MODE === "burst") ws.send(serverEvent("ChallengeEvent", { Type: "FaceMovementAndLightChallenge", Version: "1.0.0" }));
    for (let i = 0; i < REPEAT; i++) ws.send(serverEvent("ServerSessionInformationEvent", sessionInfo));
    out({ kind: "send_event", conn, type: "ServerSessionInformationEvent", burst: MODE === "burst", count: REPEAT });
  }

  ws.on("message", (data, isBinary) => {
    frameNo += 1;
    const line = { kind: "frame", conn, n: frameNo, binary: isBinary, bytes: data.length };
    if (!isBinary) {
      out({ ...line, text: data.toString("utf8").slice(0, 200) });
      return;
    }
    let env;
    try {
      env = decodeMessage(data);
    } catch (e) {
      out({ ...line, decode_error: String(e.message) });
      return;
    }
    const dateH = env.headers.find((h) => h.name === ":date");
    const sigH = env.headers.find((h) => h.name === ":chunk-signature");
    Object.assign(line, {
      crc_ok: env.preludeCrcOk && env.messageCrcOk,
      envelope_headers: env.headers.map((h) => `${h.name}:${h.typeName}`),
      date_ms: dateH?.value ?? null,
      date: dateH ? new Date(dateH.value).toISOString() : null,
      date_has_ms: dateH ? dateH.value % 1000 !== 0 : null,
      chunk_signature: sigH?.value ?? null,
      payload_bytes: env.payload.length,
      end_frame: env.payload.length === 0,
    });
    let isEmptyVideo = false;
    if (env.payload.length > 0) {
      try {
        const inner = decodeMessage(env.payload);
        line.inner_headers = inner.headers.map((h) => `${h.name}=${h.value}`);
        line.inner_event_type = headerValue(inner, ":event-type");
        const body = JSON.parse(inner.payload.toString("utf8"));
        line.inner_keys = Object.keys(body);
        if (typeof body.VideoChunk === "string") {
          line.video_chunk_bytes = Buffer.from(body.VideoChunk, "base64").length;
          isEmptyVideo = line.video_chunk_bytes === 0;
        }
        if (body.TimestampMillis !== undefined) line.timestamp_millis = body.TimestampMillis;
      } catch (e) {
        line.inner_error = String(e.message);
      }
    }
    // chained signature check (protocol.md 3.2)
    if (SECRET && dateH && sigH && !failed) {
      const day = amzDate(dateH.value).slice(0, 8);
      const dateHeaderBytes = encodeHeader(":date", 8, dateH.value);
      const sts = [
        "AWS4-HMAC-SHA256-PAYLOAD",
        amzDate(dateH.value),
        `${day}/${pre.region}/${pre.service}/aws4_request`,
        prior,
        sha256hex(dateHeaderBytes),
        sha256hex(env.payload),
      ].join("\n");
      const expected = createHmac("sha256", signingKey(day, pre.region, pre.service)).update(sts).digest("hex");
      line.sig_ok = expected === sigH.value;
      prior = sigH.value;
    }
    out(line);
    if (failed) return;
    if (line.sig_ok === false) return fail("The request signature we calculated does not match the signature you provided.");
    if (CHECK_SKEW && dateH) {
      const err = windowError(dateH.value, serverNow());
      if (err) return fail(err);
    }
    if (DISCONNECT_ON === "end" ? line.end_frame : isEmptyVideo) {
      ws.send(serverEvent("DisconnectionEvent", { TimestampMillis: serverNow() }));
      out({ kind: "send_event", conn, type: "DisconnectionEvent" });
      if (CLOSE_AFTER_DISCONNECT) ws.close(1000);
    }
  });

  ws.on("close", (code, reason) => {
    out({ kind: "close", conn, code, reason: reason.toString("utf8"), frames: frameNo });
    if (ONCE) {
      wss.close();
      process.exit(0);
    }
  });
  ws.on("error", (err) => out({ kind: "ws_error", conn, message: String(err.message) }));
});
