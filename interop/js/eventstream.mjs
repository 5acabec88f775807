// Minimal AWS event-stream codec used only for *observing* traffic (client-side
// frame logging in liveness_client.mjs) and by the debugging server
// dev_server.mjs. The SDK under test never uses this file.
//
// Layout (protocol.md section 1): total_len u32 | headers_len u32 | prelude_crc u32 |
// headers | payload | message_crc u32, all big-endian, CRC-32 (IEEE).

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const TYPE_NAMES = ["bool_true", "bool_false", "byte", "short", "integer", "long", "bytes", "string", "timestamp", "uuid"];

/** Decode one complete event-stream message. Throws on malformed input. */
export function decodeMessage(input) {
  const buf = Buffer.from(input.buffer ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : input);
  if (buf.length < 16) throw new Error(`message too short: ${buf.length} bytes`);
  const totalLength = buf.readUInt32BE(0);
  const headersLength = buf.readUInt32BE(4);
  const preludeCrc = buf.readUInt32BE(8);
  if (totalLength !== buf.length) throw new Error(`declared length ${totalLength} != actual ${buf.length}`);
  if (headersLength > totalLength - 16) throw new Error(`headers length ${headersLength} too large`);
  const preludeCrcOk = crc32(buf.subarray(0, 8)) === preludeCrc;
  const messageCrcOk = crc32(buf.subarray(0, totalLength - 4)) === buf.readUInt32BE(totalLength - 4);
  const headers = [];
  let p = 12;
  const end = 12 + headersLength;
  while (p < end) {
    const nameLen = buf[p];
    p += 1;
    const name = buf.toString("utf8", p, p + nameLen);
    p += nameLen;
    const type = buf[p];
    p += 1;
    let value;
    let raw;
    switch (type) {
      case 0: value = true; break;
      case 1: value = false; break;
      case 2: value = buf.readInt8(p); p += 1; break;
      case 3: value = buf.readInt16BE(p); p += 2; break;
      case 4: value = buf.readInt32BE(p); p += 4; break;
      case 5: value = buf.readBigInt64BE(p).toString(); p += 8; break;
      case 6: { const l = buf.readUInt16BE(p); p += 2; raw = buf.subarray(p, p + l); value = raw.toString("hex"); p += l; break; }
      case 7: { const l = buf.readUInt16BE(p); p += 2; value = buf.toString("utf8", p, p + l); p += l; break; }
      case 8: value = Number(buf.readBigInt64BE(p)); raw = buf.subarray(p, p + 8); p += 8; break;
      case 9: value = buf.subarray(p, p + 16).toString("hex"); p += 16; break;
      default: throw new Error(`unknown header type ${type} for ${name}`);
    }
    headers.push({ name, type, typeName: TYPE_NAMES[type], value });
  }
  if (p !== end) throw new Error("header block overran its declared length");
  const payload = buf.subarray(end, totalLength - 4);
  return { totalLength, headersLength, preludeCrcOk, messageCrcOk, headers, payload, headerBytes: buf.subarray(12, end) };
}

export function headerValue(decoded, name) {
  const h = decoded.headers.find((x) => x.name === name);
  return h ? h.value : undefined;
}

/** Encode one header (name, type, value) per protocol.md 1.1. Supports string(7), bytes(6), timestamp(8). */
export function encodeHeader(name, type, value) {
  const n = Buffer.from(name, "utf8");
  let v;
  if (type === 7) {
    const s = Buffer.from(String(value), "utf8");
    v = Buffer.alloc(2 + s.length);
    v.writeUInt16BE(s.length, 0);
    s.copy(v, 2);
  } else if (type === 6) {
    const b = Buffer.from(value);
    v = Buffer.alloc(2 + b.length);
    v.writeUInt16BE(b.length, 0);
    b.copy(v, 2);
  } else if (type === 8) {
    v = Buffer.alloc(8);
    v.writeBigInt64BE(BigInt(value), 0);
  } else {
    throw new Error(`encodeHeader: unsupported type ${type}`);
  }
  return Buffer.concat([Buffer.from([n.length]), n, Buffer.from([type]), v]);
}

/** Encode a message from [[name, type, value], ...] headers and a payload. */
export function encodeMessage(headerList, payload) {
  const hdr = Buffer.concat(headerList.map(([n, t, v]) => encodeHeader(n, t, v)));
  const body = Buffer.from(payload ?? []);
  const total = 16 + hdr.length + body.length;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(hdr.length, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  hdr.copy(out, 12);
  body.copy(out, 12 + hdr.length);
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

/** A plain (unsigned) server event message: :message-type, :event-type, :content-type. */
export function serverEvent(eventType, jsonBody) {
  return encodeMessage(
    [
      [":message-type", 7, "event"],
      [":event-type", 7, eventType],
      [":content-type", 7, "application/json"],
    ],
    Buffer.from(JSON.stringify(jsonBody), "utf8"),
  );
}

/** A server exception message: :message-type=exception, :exception-type, :content-type. */
export function serverException(exceptionType, jsonBody) {
  return encodeMessage(
    [
      [":message-type", 7, "exception"],
      [":exception-type", 7, exceptionType],
      [":content-type", 7, "application/json"],
    ],
    Buffer.from(JSON.stringify(jsonBody), "utf8"),
  );
}
