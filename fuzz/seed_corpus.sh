#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the project's fixtures (the corpus dirs are untracked:
# /fuzz/corpus/ is in .gitignore). Safe to run again: files are named by content hash, so
# seeds are never duplicated and inputs the fuzzer added are kept.
#
#   decode_frame     every binary frame under fixtures/eventstream/ and every hex frame in the
#                    JSON fixtures (codec vectors, signed envelopes), as is
#   crc_corrected    the same frames as <u16 BE header-block length><header block><payload>
#   round_trip       (structured input; a few fixed seeds)
#   verify_envelope  mode 0 + each frame; mode 1 (chain mutations) and 2 (upgrade edits) with
#                    fixed seeds; mode 3 + "host\nrequest-target" of every presigned request of
#                    the AWS signing test suite and of the presign vectors
#   skew_parsers     mode 0 + each Date header of the clock-skew cases, AWS's skew messages
#                    and SigV4/ISO dates
#
# Needs python3 (on every machine of this project's kind).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="${1:-$here/corpus}"

python3 - "$root" "$out" <<'PY'
import hashlib, json, os, re, struct, sys, pathlib

root = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2])
fixtures = root / "fixtures"
counts = {}

def put(target, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    p = d / name
    if not p.exists():
        p.write_bytes(data)
        counts[target] = counts.get(target, 0) + 1

def json_strings(obj, key_pred):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str) and key_pred(k):
                yield v
            yield from json_strings(v, key_pred)
    elif isinstance(obj, list):
        for x in obj:
            yield from json_strings(x, key_pred)

# ---- frames --------------------------------------------------------------------------------
frames = []
es = fixtures / "eventstream"
for p in sorted(es.rglob("*")):
    if not p.is_file() or p.suffix == ".json":
        continue
    if "decoded" in p.parts:  # go-testdata/decoded/* are JSON descriptions, not frames
        continue
    frames.append(p.read_bytes())
frame_keys = lambda k: k in ("encoded_hex", "signed_envelope_hex_aws_sigv4_header_order") \
    or k.endswith("envelope_hex") or k.endswith("frame_hex")
for j in sorted(fixtures.rglob("*.json")):
    for s in json_strings(json.loads(j.read_text()), frame_keys):
        s = s.strip()
        if s and re.fullmatch(r"([0-9a-fA-F]{2})+", s):
            frames.append(bytes.fromhex(s))

for f in frames:
    put("decode_frame", f)
    put("verify_envelope", b"\x00" + f)
    if len(f) >= 16:
        total, hlen = struct.unpack(">II", f[:8])
        hlen = min(hlen, len(f) - 16)
        body = f[12:-4]
        put("crc_corrected", struct.pack(">H", hlen) + body)
# Two frames back to back, and a frame split from its successor, for the stream decoder.
for a, b in zip(frames, frames[1:]):
    if len(a) <= 256 and len(b) <= 256:
        put("decode_frame", a + b)

# ---- structured targets: fixed seeds -------------------------------------------------------
for seed in (b"", b"\x00" * 16, b"\xff" * 16, bytes(range(64))):
    put("round_trip", seed)
    put("verify_envelope", b"\x01" + seed)
    put("verify_envelope", b"\x02" + seed)
    put("skew_parsers", b"\x01" + seed)

# ---- upgrade requests ----------------------------------------------------------------------
for p in sorted((fixtures / "presign" / "aws-signing-test-suite").rglob("query-signed-request.txt")):
    lines = p.read_text().splitlines()
    m = re.match(r"GET (\S+) HTTP/1\.1", lines[0]) if lines else None
    host = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("host:")), "")
    if m:
        put("verify_envelope", b"\x03" + f"{host}\n{m.group(1)}".encode())
pv = json.loads((fixtures / "presign" / "presign_vectors.json").read_text())
for case in pv.get("smithy_typescript_presign", []):
    inputs, expected = case.get("inputs", {}), case.get("expected", {})
    if not isinstance(expected, dict) or "X-Amz-Signature" not in expected:
        continue
    from urllib.parse import quote
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in expected.items())
    target = f"{inputs.get('path', '/')}?{query}"
    put("verify_envelope", b"\x03" + f"{inputs.get('host_header', '')}\n{target}".encode())

# ---- skew evidence -------------------------------------------------------------------------
texts = set()
cs = json.loads((fixtures / "clock-skew" / "clock-skew-test-cases.json").read_text())
texts.update(json_strings(cs, lambda k: k.lower() == "date"))
texts.update(s for s in json_strings(cs, lambda k: True) if "Signature" in s)
texts.update([
    "Signature expired: 20240820T225000Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)",
    "Signature not yet current: 20240821T000143Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)",
    '{"Message":"Signature expired: 20240820T230143Z is now earlier than 20240821T005643Z (20240821T010143Z - 5 min.)"}',
    '{"__type":"InvalidSignatureException","message":"Signature expired: 20240820T230143Z is now earlier than 20240821T005643Z (20240821T010143Z - 5 min.)"}',
    "Signature not yet current: 2024-08-21T00:01:43.000Z is still later than 2024-08-20T23:06:43Z (2024-08-20T23:01:43Z + 5 min.)",
    "Signature expired: 20240820T225943Z is now earlier than 20240820T230043Z (20240820T230143Z - 60 sec.)",
    "20240820T230143Z", "19700101T000000Z", "99991231T235959Z", "20240229T235960Z",
    "Thu, 01 Jan 2026 00:00:01 GMT", "Thursday, 01-Jan-26 00:00:01 GMT", "Thu Jan  1 00:00:01 2026",
])
for t in sorted(texts):
    put("skew_parsers", b"\x00" + t.encode())

for target in ("decode_frame", "crc_corrected", "round_trip", "verify_envelope", "skew_parsers"):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    print(f"{target}: {len(list(d.iterdir()))} files ({counts.get(target, 0)} new)")
PY
