//! Public event-stream test vectors (see `fixtures/VECTORS.md`) run against the codec.
//!
//! Each test walks one vector family and reports every failing case by name before failing.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use sigv4_ws::proto::codec::{
    encode_headers_into, DecodeError, FrameDecoder, Header, HeaderValue, Message, DATE,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/eventstream")
}

fn read(path: &PathBuf) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn read_json(path: &PathBuf) -> Value {
    serde_json::from_slice(&read(path))
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Sorted file names in a fixture directory.
fn list(dir: &PathBuf) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Collects failures by case name; panics at the end listing all of them.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    passed: usize,
}

impl Report {
    fn case(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.passed += 1,
            Err(why) => self.failures.push(format!("{name}: {why}")),
        }
    }

    fn finish(self, family: &str, expected_cases: usize) {
        assert!(
            self.failures.is_empty(),
            "{family}: {} of {} cases failed:\n  {}",
            self.failures.len(),
            self.failures.len() + self.passed,
            self.failures.join("\n  ")
        );
        assert_eq!(
            self.passed, expected_cases,
            "{family}: unexpected number of cases"
        );
    }
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Minimal standard-alphabet base64 decoder (padding optional).
fn base64(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(format!("bad base64 character {c:#x}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s:.20}...: {e}"))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Checks decode, the stored lengths and CRCs, and the byte-exact round trip, both through
/// `Message::decode` and `FrameDecoder`. Returns the decoded message.
fn decode_and_round_trip(frame: &[u8]) -> Result<Message, String> {
    let msg = Message::decode(frame).map_err(|e| format!("decode failed: {e}"))?;
    let re = msg.encode().map_err(|e| format!("re-encode failed: {e}"))?;
    ensure(re.as_ref() == frame, || {
        format!(
            "re-encoded bytes differ:\n    want {}\n    got  {}",
            hex::encode(frame),
            hex::encode(&re)
        )
    })?;
    ensure(msg.encoded_len() == frame.len(), || {
        format!("encoded_len {} != {}", msg.encoded_len(), frame.len())
    })?;
    let mut buf = BytesMut::from(frame);
    let streamed = FrameDecoder::new()
        .decode(&mut buf)
        .map_err(|e| format!("FrameDecoder failed: {e}"))?;
    ensure(streamed.as_ref() == Some(&msg), || {
        format!("FrameDecoder gave {streamed:?}")
    })?;
    ensure(buf.is_empty(), || "FrameDecoder left bytes".into())?;
    Ok(msg)
}

/// Checks the prelude fields and CRCs a vector states against the raw frame.
fn check_framing(
    frame: &[u8],
    total: u64,
    headers: u64,
    prelude_crc: u32,
    message_crc: u32,
) -> Result<(), String> {
    let n = frame.len();
    ensure(n as u64 == total, || {
        format!("frame is {n} bytes, vector says {total}")
    })?;
    ensure(u64::from(be32(frame, 4)) == headers, || {
        format!("headers length {} != {headers}", be32(frame, 4))
    })?;
    ensure(be32(frame, 8) == prelude_crc, || {
        format!("prelude crc {:08x} != {prelude_crc:08x}", be32(frame, 8))
    })?;
    ensure(be32(frame, n - 4) == message_crc, || {
        format!(
            "message crc {:08x} != {message_crc:08x}",
            be32(frame, n - 4)
        )
    })
}

/// Name of a decode error's kind, for comparing with the vectors' expectations.
fn kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::PreludeChecksum { .. } => "PreludeChecksum",
        DecodeError::MessageChecksum { .. } => "MessageChecksum",
        DecodeError::TooShort { .. } => "TooShort",
        DecodeError::HeadersLenInvalid { .. } => "HeadersLenInvalid",
        DecodeError::PayloadTooLarge { .. } => "PayloadTooLarge",
        DecodeError::HeadersTooLarge { .. } => "HeadersTooLarge",
        DecodeError::HeaderNameEmpty => "HeaderNameEmpty",
        DecodeError::HeaderNameTruncated { .. } => "HeaderNameTruncated",
        DecodeError::HeaderNameNotUtf8 => "HeaderNameNotUtf8",
        DecodeError::HeaderTypeUnknown { .. } => "HeaderTypeUnknown",
        DecodeError::HeaderValueTruncated { .. } => "HeaderValueTruncated",
        DecodeError::HeaderStringNotUtf8 { .. } => "HeaderStringNotUtf8",
        DecodeError::HeadersTrailing { .. } => "HeadersTrailing",
        DecodeError::FrameLenMismatch { .. } => "FrameLenMismatch",
        DecodeError::PreludeTruncated { .. } => "PreludeTruncated",
        _ => "other",
    }
}

/// Decodes `frame` with both decoders and checks both reject it with the same error.
fn reject(frame: &[u8]) -> Result<DecodeError, String> {
    let one_shot = match Message::decode(frame) {
        Ok(m) => return Err(format!("accepted as {m:?}")),
        Err(e) => e,
    };
    let mut buf = BytesMut::from(frame);
    let streamed = FrameDecoder::new().decode(&mut buf);
    match (&streamed, kind(&one_shot)) {
        (Err(e), _) if *e == one_shot => {}
        // A slice shorter than it declares is merely incomplete to a streaming decoder, and
        // bytes after the declared length belong to the next frame; only the one-shot decoder
        // sees a length mismatch. The streaming decoder must still not produce a message.
        (Ok(None) | Err(_), "FrameLenMismatch") => {}
        _ => {
            return Err(format!(
                "Message::decode said {one_shot:?} but FrameDecoder said {streamed:?}"
            ))
        }
    }
    ensure(buf.len() == frame.len(), || {
        "FrameDecoder consumed bytes on error".into()
    })?;
    Ok(one_shot)
}

// ---------------------------------------------------------------------------------------------
// go-testdata
// ---------------------------------------------------------------------------------------------

fn go_header_value(h: &Value) -> Result<HeaderValue, String> {
    let t = h["type"].as_u64().ok_or("header without type")?;
    let v = &h["value"];
    let int = || {
        v.as_i64()
            .ok_or_else(|| format!("type {t}: value {v} is not an integer"))
    };
    let b64 = || {
        base64(
            v.as_str()
                .ok_or_else(|| format!("type {t}: value {v} is not a string"))?,
        )
    };
    Ok(match t {
        0 | 1 => HeaderValue::Bool(v.as_bool().ok_or("bool value")?),
        2 => HeaderValue::Byte(i8::try_from(int()?).map_err(|e| e.to_string())?),
        3 => HeaderValue::Int16(i16::try_from(int()?).map_err(|e| e.to_string())?),
        4 => HeaderValue::Int32(i32::try_from(int()?).map_err(|e| e.to_string())?),
        5 => HeaderValue::Int64(int()?),
        6 => HeaderValue::ByteArray(Bytes::from(b64()?)),
        7 => HeaderValue::String(String::from_utf8(b64()?).map_err(|e| e.to_string())?),
        8 => HeaderValue::Timestamp(int()?),
        9 => HeaderValue::Uuid(
            b64()?
                .try_into()
                .map_err(|v: Vec<u8>| format!("uuid of {} bytes", v.len()))?,
        ),
        _ => return Err(format!("unknown type {t}")),
    })
}

/// Signed 32-bit JSON CRC to its unsigned bit pattern.
fn signed_crc(v: &Value) -> Result<u32, String> {
    let n = v
        .as_i64()
        .ok_or_else(|| format!("crc {v} is not an integer"))?;
    Ok((n & 0xffff_ffff) as u32)
}

fn go_positive_case(name: &str) -> Result<(), String> {
    let dir = fixtures().join("go-testdata");
    let frame = read(&dir.join("encoded/positive").join(name));
    let want = read_json(&dir.join("decoded/positive").join(name));
    check_framing(
        &frame,
        want["total_length"].as_u64().ok_or("total_length")?,
        want["headers_length"].as_u64().ok_or("headers_length")?,
        signed_crc(&want["prelude_crc"])?,
        signed_crc(&want["message_crc"])?,
    )?;
    let mut expected = Message::new(base64(want["payload"].as_str().ok_or("payload")?)?);
    for h in want["headers"].as_array().ok_or("headers")? {
        let hname = h["name"].as_str().ok_or("header name")?;
        expected.push_header(Header::new(hname, go_header_value(h)?));
        // The type byte on the wire is the JSON's `type`.
        let t = h["type"].as_u64().ok_or("type")?;
        let built = expected.headers().last().map(|h| h.value().type_byte());
        ensure(built.map(u64::from) == Some(t), || {
            format!("{hname}: built type {built:?}, vector type {t}")
        })?;
    }
    let got = decode_and_round_trip(&frame)?;
    ensure(got == expected, || {
        format!("decoded\n    {got:?}\n  expected\n    {expected:?}")
    })
}

#[test]
fn go_testdata_positive() {
    let dir = fixtures().join("go-testdata");
    let names = list(&dir.join("encoded/positive"));
    assert_eq!(names, list(&dir.join("decoded/positive")));
    let mut report = Report::default();
    for name in &names {
        report.case(name, go_positive_case(name));
    }
    report.finish("go-testdata positive", 5);
}

#[test]
fn go_testdata_negative() {
    let dir = fixtures().join("go-testdata");
    let names = list(&dir.join("encoded/negative"));
    assert_eq!(names, list(&dir.join("decoded/negative")));
    let mut report = Report::default();
    for name in &names {
        let result = (|| {
            let frame = read(&dir.join("encoded/negative").join(name));
            let reason = String::from_utf8(read(&dir.join("decoded/negative").join(name)))
                .map_err(|e| e.to_string())?;
            let want = match reason.trim() {
                "Prelude checksum mismatch" => "PreludeChecksum",
                "Message checksum mismatch" => "MessageChecksum",
                other => return Err(format!("unknown expected failure {other:?}")),
            };
            let err = reject(&frame)?;
            ensure(kind(&err) == want && err.is_checksum(), || {
                format!("want {want}, got {err:?} ({err})")
            })
        })();
        report.case(name, result);
    }
    report.finish("go-testdata negative", 4);
}

// ---------------------------------------------------------------------------------------------
// smithy-rs test_data
// ---------------------------------------------------------------------------------------------

/// The message `valid_with_all_headers_and_payload` holds, per the JSON description.
fn smithy_all_headers_message() -> Message {
    Message::new(&b"some payload"[..])
        .with_header("true", HeaderValue::Bool(true))
        .with_header("false", HeaderValue::Bool(false))
        .with_header("byte", HeaderValue::Byte(50))
        .with_header("short", HeaderValue::Int16(20000))
        .with_header("int", HeaderValue::Int32(500_000))
        .with_header("long", HeaderValue::Int64(50_000_000_000))
        .with_header(
            "bytes",
            HeaderValue::ByteArray(Bytes::from_static(b"some bytes")),
        )
        .with_header("str", HeaderValue::String("some str".into()))
        .with_header("time", HeaderValue::Timestamp(5_000_000_000))
        .with_header(
            "uuid",
            HeaderValue::Uuid(
                unhex("b79bc914de214e13b8b2bc47e85b7f0b")
                    .try_into()
                    .unwrap(),
            ),
        )
}

/// Parses "Kind(expected 0xAAAA, found 0xBBBB)" into (AAAA, BBBB).
fn smithy_crc_pair(expect: &str) -> Result<(u32, u32), String> {
    let hexes: Vec<u32> = expect
        .split("0x")
        .skip(1)
        .map(|s| {
            let digits: String = s.chars().take_while(char::is_ascii_hexdigit).collect();
            u32::from_str_radix(&digits, 16).map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    match hexes[..] {
        [a, b] => Ok((a, b)),
        _ => Err(format!("cannot read two CRCs from {expect:?}")),
    }
}

fn smithy_case(entry: &Value) -> Result<(), String> {
    let file = entry["file"].as_str().ok_or("file")?;
    let expect = entry["expect"].as_str().ok_or("expect")?;
    let frame = read(&fixtures().join("smithy-rs-test_data").join(file));
    if expect == "ok" {
        let msg = decode_and_round_trip(&frame)?;
        let want = match file {
            "valid_with_all_headers_and_payload" => smithy_all_headers_message(),
            "valid_empty_payload" => {
                Message::new(Bytes::new()).with_header("some-header", HeaderValue::Int16(500))
            }
            "valid_no_headers" => Message::new(&b"another test payload"[..]),
            other => return Err(format!("no expected message written for {other}")),
        };
        ensure(msg == want, || {
            format!("decoded {msg:?}, expected {want:?}")
        })?;
        // The all-headers frame is also the exact expected encoder output.
        let built = want.encode().map_err(|e| e.to_string())?;
        return ensure(built.as_ref() == &frame[..], || {
            "encoding the described message does not give the file".into()
        });
    }
    let err = reject(&frame)?;
    if entry.get("order_sensitive").is_some() {
        // The reference decoder parses headers before the message CRC; ours checks the CRC
        // (and the declared lengths) first. Any rejection is right, but pin down ours so a
        // change of validation order is noticed.
        let ours = match file {
            // 123 bytes given, 93 declared.
            "invalid_header_name_length_too_long" => "FrameLenMismatch",
            // Stale or zeroed message CRC.
            _ => "MessageChecksum",
        };
        return ensure(kind(&err) == ours, || {
            format!("order-sensitive case: our order gives {ours}, got {err:?}")
        });
    }
    let kind_word = expect.split('(').next().unwrap_or(expect);
    match kind_word {
        "PreludeChecksumMismatch" | "MessageChecksumMismatch" => {
            // smithy-rs prints (expected = computed, found = carried in the frame); ours is
            // (expected = carried in the frame, actual = computed).
            let (computed, carried) = smithy_crc_pair(expect)?;
            let want = if kind_word.starts_with("Prelude") {
                DecodeError::PreludeChecksum {
                    expected: carried,
                    actual: computed,
                }
            } else {
                DecodeError::MessageChecksum {
                    expected: carried,
                    actual: computed,
                }
            };
            ensure(err == want, || format!("want {want:?}, got {err:?}"))
        }
        "InvalidHeadersLength" => ensure(kind(&err) == "HeadersLenInvalid", || {
            format!("want HeadersLenInvalid, got {err:?}")
        }),
        other => Err(format!(
            "no mapping for expected kind {other:?} (got {err:?})"
        )),
    }
}

#[test]
fn smithy_rs_test_data() {
    let index = read_json(&fixtures().join("smithy-rs-test_data.json"));
    let entries = index["files"].as_array().expect("files array");
    let mut listed: Vec<String> = entries
        .iter()
        .map(|e| e["file"].as_str().expect("file").to_owned())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        list(&fixtures().join("smithy-rs-test_data")),
        "every file is described"
    );
    let mut report = Report::default();
    for entry in entries {
        report.case(entry["file"].as_str().unwrap_or("?"), smithy_case(entry));
    }
    report.finish("smithy-rs test_data", 11);
}

// ---------------------------------------------------------------------------------------------
// extra_codec_vectors.json
// ---------------------------------------------------------------------------------------------

fn extra_header_value(h: &Value) -> Result<HeaderValue, String> {
    let t = h["type"].as_u64().ok_or("header without type")?;
    let v = &h["value"];
    let int = || {
        v.as_i64()
            .ok_or_else(|| format!("type {t}: value {v} is not an integer"))
    };
    let hex_field = || {
        v["hex"]
            .as_str()
            .map(unhex)
            .ok_or_else(|| format!("type {t}: value {v} has no hex"))
    };
    Ok(match t {
        0 | 1 => HeaderValue::Bool(v.as_bool().ok_or("bool value")?),
        2 => HeaderValue::Byte(i8::try_from(int()?).map_err(|e| e.to_string())?),
        3 => HeaderValue::Int16(i16::try_from(int()?).map_err(|e| e.to_string())?),
        4 => HeaderValue::Int32(i32::try_from(int()?).map_err(|e| e.to_string())?),
        5 => HeaderValue::Int64(int()?),
        6 => HeaderValue::ByteArray(Bytes::from(hex_field()?)),
        7 => HeaderValue::String(v.as_str().ok_or("string value")?.to_owned()),
        8 => HeaderValue::Timestamp(int()?),
        9 => HeaderValue::Uuid(
            hex_field()?
                .try_into()
                .map_err(|v: Vec<u8>| format!("uuid of {} bytes", v.len()))?,
        ),
        _ => return Err(format!("unknown type {t}")),
    })
}

fn hex_u32(v: &Value) -> Result<u32, String> {
    u32::from_str_radix(v.as_str().ok_or("crc is not a string")?, 16).map_err(|e| e.to_string())
}

fn extra_positive_case(case: &Value) -> Result<(), String> {
    let frame = unhex(case["encoded_hex"].as_str().ok_or("encoded_hex")?);
    check_framing(
        &frame,
        case["total_length"].as_u64().ok_or("total_length")?,
        case["headers_length"].as_u64().ok_or("headers_length")?,
        hex_u32(&case["prelude_crc"])?,
        hex_u32(&case["message_crc"])?,
    )?;
    let mut want = Message::new(unhex(case["payload_hex"].as_str().ok_or("payload_hex")?));
    for h in case["headers"].as_array().ok_or("headers")? {
        let name = h["name"].as_str().ok_or("header name")?;
        let value = extra_header_value(h)?;
        ensure(
            u64::from(value.type_byte()) == h["type"].as_u64().unwrap_or(99),
            || format!("{name}: type mismatch"),
        )?;
        want.push_header(Header::new(name, value));
    }
    let got = decode_and_round_trip(&frame)?;
    ensure(got == want, || {
        format!("decoded {got:?}, expected {want:?}")
    })
}

/// Our decoder's outcome for each negative case (it checks CRCs before lengths against the
/// buffer, so the lengths the Python SDK checks first show up as prelude CRC mismatches).
fn extra_negative_expectation(name: &str) -> Option<&'static str> {
    Some(match name {
        "tss_corrupted_header_length" => "PreludeChecksum",
        "tss_corrupted_headers" => "MessageChecksum",
        "tss_corrupted_length" => "PreludeChecksum",
        "tss_corrupted_payload" => "MessageChecksum",
        "tss_duplicate_header" => "accepted",
        "ces_illegal_header_length_relationship" => "HeadersLenInvalid",
        "ces_message_too_short" => "TooShort",
        _ => return None,
    })
}

fn extra_negative_case(case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().ok_or("name")?;
    let frame = unhex(case["encoded_hex"].as_str().ok_or("encoded_hex")?);
    let want = extra_negative_expectation(name).ok_or("no expectation written for this case")?;
    if want == "accepted" {
        // Duplicate names are policy in the Python SDK only; we keep both, like Go/Rust/C.
        let msg = decode_and_round_trip(&frame)?;
        let expected = Message::new(Bytes::new())
            .with_header("test", HeaderValue::Int32(0x6173_6466))
            .with_header("test", HeaderValue::Int32(0x6173_6466));
        ensure(msg == expected, || format!("decoded {msg:?}"))?;
        return ensure(
            msg.header("test") == Some(&HeaderValue::Int32(1_634_952_294)),
            || "header() should return the first duplicate".into(),
        );
    }
    let err = reject(&frame)?;
    ensure(kind(&err) == want, || {
        format!("want {want}, got {err:?} ({err})")
    })
}

/// Feeds `bytes` to a fresh decoder in chunks of `chunk` bytes, collecting every message.
fn stream_decode(bytes: &[u8], chunk: usize) -> Result<Vec<Message>, DecodeError> {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(m) = decoder.decode(&mut buf)? {
            out.push(m);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    Ok(out)
}

fn extra_stream_case(case: &Value, positives: &[Value]) -> Result<(), String> {
    let bytes = unhex(case["encoded_hex"].as_str().ok_or("encoded_hex")?);
    let frame_of = |name: &str| -> Result<Message, String> {
        let c = positives
            .iter()
            .find(|c| c["name"] == name)
            .ok_or_else(|| format!("no positive case {name}"))?;
        Message::decode(&unhex(c["encoded_hex"].as_str().ok_or("encoded_hex")?))
            .map_err(|e| e.to_string())
    };
    let want = vec![
        frame_of("ces_no_op_empty")?,
        frame_of("ces_one_string_header")?,
    ];
    for (label, chunk) in [("whole", bytes.len()), ("byte by byte", 1), ("7 bytes", 7)] {
        let got = stream_decode(&bytes, chunk).map_err(|e| format!("{label}: {e}"))?;
        ensure(got == want, || format!("{label}: got {got:?}"))?;
    }
    Ok(())
}

fn extra_derived_case(case: &Value) -> Result<(), String> {
    let ms = case["epoch_ms"].as_i64().ok_or("epoch_ms")?;
    let want = case["encoded_hex"].as_str().ok_or("encoded_hex")?;
    let mut dst = BytesMut::new();
    encode_headers_into(&[Header::new(DATE, HeaderValue::Timestamp(ms))], &mut dst)
        .map_err(|e| e.to_string())?;
    ensure(hex::encode(&dst) == want, || {
        format!("got {}, want {want}", hex::encode(&dst))
    })
}

#[test]
fn extra_codec_vectors() {
    let v = read_json(&fixtures().join("extra_codec_vectors.json"));
    let positives = v["positive"].as_array().expect("positive").clone();
    let mut report = Report::default();
    let mut count = 0;
    for case in &positives {
        count += 1;
        let name = format!("positive/{}", case["name"].as_str().unwrap_or("?"));
        report.case(&name, extra_positive_case(case));
    }
    for case in v["negative"].as_array().expect("negative") {
        count += 1;
        let name = format!("negative/{}", case["name"].as_str().unwrap_or("?"));
        report.case(&name, extra_negative_case(case));
    }
    for case in v["stream"].as_array().expect("stream") {
        count += 1;
        let name = format!("stream/{}", case["name"].as_str().unwrap_or("?"));
        report.case(&name, extra_stream_case(case, &positives));
    }
    for case in v["derived"].as_array().expect("derived") {
        count += 1;
        let mut name = String::from("derived/:date ");
        let _ = write!(name, "{}", case["epoch_ms"]);
        report.case(&name, extra_derived_case(case));
    }
    assert_eq!(count, 14 + 7 + 1 + 3, "the file's case counts changed");
    report.finish("extra_codec_vectors", count);
}

#[test]
fn base64_helper() {
    assert_eq!(base64("").unwrap(), b"");
    assert_eq!(base64("Zg==").unwrap(), b"f");
    assert_eq!(base64("Zm8=").unwrap(), b"fo");
    assert_eq!(base64("Zm9v").unwrap(), b"foo");
    assert_eq!(
        base64("SSdtIGEgbGl0dGxlIHRlYXBvdCE=").unwrap(),
        b"I'm a little teapot!"
    );
}
