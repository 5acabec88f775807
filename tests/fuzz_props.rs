//! The fuzz targets' properties (see `fuzz/`) as proptest properties, so that CI checks them
//! on stable with every run: the decoder on arbitrary and on mutated fixture frames, frames
//! with correct CRCs around arbitrary header bytes, the chain verifier on arbitrary frames and
//! on mutated signed chains, the skew parsers on arbitrary and mutated texts, and the upgrade
//! verifier on arbitrary and mutated request targets. None may panic; beyond that each
//! property states what the output must be.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use sigv4_ws::proto::codec::{
    DecodeError, EncodeError, FrameDecoder, Header, HeaderValue, Message, MAX_HEADER_VALUE_LEN,
};
use sigv4_ws::proto::sigv4::{format_amz_date, parse_amz_date};
use sigv4_ws::proto::skew::{
    observe_date_header, observe_skew_message, SkewEvidenceError, SkewMessage,
};

// ---------------------------------------------------------------------------------------------
// Fixture frames
// ---------------------------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex_frames_in(value: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let frame_key = k == "encoded_hex" || k.contains("envelope_hex");
                match (frame_key, v.as_str().and_then(unhex)) {
                    (true, Some(bytes)) => out.push(bytes),
                    _ => hex_frames_in(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| hex_frames_in(v, out)),
        _ => {}
    }
}

/// Every frame of the fixtures: the binary files under `fixtures/eventstream/` (not the Go
/// suite's JSON descriptions) and the hex frames in the JSON files.
fn fixture_frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let mut paths = Vec::new();
        files_under(&fixtures_dir().join("eventstream"), &mut paths);
        let mut frames = Vec::new();
        for p in &paths {
            let described = p.components().any(|c| c.as_os_str() == "decoded");
            if p.extension().is_some_and(|e| e == "json") || described {
                continue;
            }
            frames.push(std::fs::read(p).expect("fixture frame"));
        }
        let mut json = Vec::new();
        files_under(&fixtures_dir(), &mut json);
        for p in json
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(p).expect("fixture JSON");
            let value: serde_json::Value = serde_json::from_str(&text).expect("fixture JSON");
            hex_frames_in(&value, &mut frames);
        }
        assert!(
            frames.len() >= 40,
            "found only {} fixture frames",
            frames.len()
        );
        frames
    })
}

// ---------------------------------------------------------------------------------------------
// Decoder invariants
// ---------------------------------------------------------------------------------------------

fn frame_with_crcs(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 16 + headers.len() + payload.len();
    let mut v = Vec::with_capacity(total);
    v.extend_from_slice(&u32::try_from(total).unwrap().to_be_bytes());
    v.extend_from_slice(&u32::try_from(headers.len()).unwrap().to_be_bytes());
    let prelude_crc = crc32fast::hash(&v);
    v.extend_from_slice(&prelude_crc.to_be_bytes());
    v.extend_from_slice(headers);
    v.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&v);
    v.extend_from_slice(&message_crc.to_be_bytes());
    v
}

/// Sets the total length to the buffer's length and recomputes both CRCs.
fn fix_lengths_and_crcs(frame: &mut [u8]) {
    if frame.len() < 16 {
        return;
    }
    let total = u32::try_from(frame.len()).unwrap();
    frame[..4].copy_from_slice(&total.to_be_bytes());
    let crc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&crc.to_be_bytes());
    let end = frame.len() - 4;
    let crc = crc32fast::hash(&frame[..end]);
    frame[end..].copy_from_slice(&crc.to_be_bytes());
}

/// A decoded message re-encodes to the bytes it came from, or (values of 32768 to 65535 bytes,
/// which the decoder takes and the encoder refuses) is refused with `HeaderValueTooLong`.
fn assert_reencodes(m: &Message, wire: &[u8]) {
    assert_eq!(m.encoded_len(), wire.len());
    match m.encode() {
        Ok(bytes) => assert_eq!(&bytes[..], wire, "re-encodes differently"),
        Err(EncodeError::HeaderValueTooLong { len, .. }) => {
            assert!(len > MAX_HEADER_VALUE_LEN && len <= usize::from(u16::MAX))
        }
        Err(e) => panic!("a decoded message does not re-encode: {e}"),
    }
}

/// Messages and final error of a `FrameDecoder` fed `data` in chunks of the given sizes
/// (cycled); checks that `Ok(None)` and errors leave the buffer alone.
fn decode_stream(data: &[u8], chunks: &[usize]) -> (Vec<Message>, Option<DecodeError>) {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let (mut fed, mut consumed) = (0, 0);
    let mut messages = Vec::new();
    for size in chunks.iter().copied().cycle() {
        let n = size.min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => {
                    let len = m.encoded_len();
                    assert_reencodes(&m, &data[consumed..consumed + len]);
                    consumed += len;
                    messages.push(m);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(&buf[..], &data[consumed..fed], "an error consumed bytes");
                    return (messages, Some(e));
                }
            }
        }
        assert_eq!(&buf[..], &data[consumed..fed], "Ok(None) consumed bytes");
        if fed == data.len() {
            break;
        }
    }
    (messages, None)
}

/// No panic; one-shot and streaming decoders agree, whole or chunked; decoded messages
/// re-encode to their bytes.
fn check_decode(data: &[u8], chunks: &[usize]) -> Result<Message, DecodeError> {
    let one = Message::decode(data);
    if let Ok(m) = &one {
        assert_reencodes(m, data);
    }
    let whole = decode_stream(data, &[usize::MAX]);
    let chunked = decode_stream(data, chunks);
    assert_eq!(whole, chunked, "chunking changed the outcome");
    match &one {
        Ok(m) => assert_eq!(whole, (vec![m.clone()], None)),
        Err(DecodeError::PreludeTruncated { .. } | DecodeError::FrameLenMismatch { .. }) => {}
        Err(e) => assert_eq!(whole, (Vec::new(), Some(e.clone()))),
    }
    one
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(
        prop_oneof![3 => 0usize..4, 2 => 1usize..40, 1 => 1usize..1024],
        1..8,
    )
    .prop_filter("some chunk must be non-empty", |c| c.iter().any(|&n| n > 0))
}

/// One byte-level change to a frame.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip { at: usize, bit: u8 },
    Set { at: usize, value: u8 },
    Truncate { len: usize },
    Extend(Vec<u8>),
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| ByteEdit::Flip { at, bit }),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(at, value)| ByteEdit::Set { at, value }),
        1 => any::<usize>().prop_map(|len| ByteEdit::Truncate { len }),
        1 => vec(any::<u8>(), 1..24).prop_map(ByteEdit::Extend),
        1 => (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| ByteEdit::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..8).prop_map(|(at, len)| ByteEdit::Remove { at, len }),
    ]
}

fn apply_edit(frame: &mut Vec<u8>, edit: &ByteEdit) {
    let len = frame.len();
    match edit {
        ByteEdit::Flip { at, bit } if len > 0 => frame[at % len] ^= 1 << bit,
        ByteEdit::Set { at, value } if len > 0 => frame[at % len] = *value,
        ByteEdit::Truncate { len: n } => frame.truncate(n % (len + 1)),
        ByteEdit::Extend(bytes) => frame.extend_from_slice(bytes),
        ByteEdit::Insert { at, bytes } => {
            let at = at % (len + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
        ByteEdit::Remove { at, len: n } if len > 0 => {
            let at = at % len;
            frame.drain(at..(at + n).min(len));
        }
        _ => {}
    }
}

/// An independent parser of a header block; `None` when the format does not allow it.
fn reference_headers(block: &[u8]) -> Option<Vec<Header>> {
    let mut out = Vec::new();
    let mut rest = block;
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head)
    }
    while !rest.is_empty() {
        let name_len = usize::from(take(&mut rest, 1)?[0]);
        if name_len == 0 {
            return None;
        }
        let name = std::str::from_utf8(take(&mut rest, name_len)?)
            .ok()?
            .to_owned();
        let fixed = |rest: &mut &[u8], n: usize| -> Option<[u8; 8]> {
            let mut buf = [0u8; 8];
            buf[8 - n..].copy_from_slice(take(rest, n)?);
            Some(buf)
        };
        let value = match take(&mut rest, 1)?[0] {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(take(&mut rest, 1)?[0] as i8),
            3 => HeaderValue::Int16(i64::from_be_bytes(fixed(&mut rest, 2)?) as i16),
            4 => HeaderValue::Int32(i64::from_be_bytes(fixed(&mut rest, 4)?) as i32),
            5 => HeaderValue::Int64(i64::from_be_bytes(fixed(&mut rest, 8)?)),
            t @ (6 | 7) => {
                let len = usize::from(u16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?));
                let bytes = take(&mut rest, len)?;
                if t == 6 {
                    HeaderValue::ByteArray(Bytes::copy_from_slice(bytes))
                } else {
                    HeaderValue::String(std::str::from_utf8(bytes).ok()?.to_owned())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(&mut rest, 8)?)),
            9 => HeaderValue::Uuid(take(&mut rest, 16)?.try_into().ok()?),
            _ => return None,
        };
        out.push(Header::new(name, value));
    }
    Some(out)
}

/// Header-block bytes that often parse: a run of plausible headers (short names, any type
/// byte including unknown ones, values of roughly the right length), or plain random bytes.
fn header_block() -> impl Strategy<Value = Vec<u8>> {
    let header = (
        0u8..12,
        "[a-z:-]{0,10}",
        0u8..12,
        vec(any::<u8>(), 0..20),
        any::<bool>(),
    )
        .prop_map(|(name_len, name, type_byte, value, exact)| {
            let mut h = vec![if exact { name.len() as u8 } else { name_len }];
            h.extend_from_slice(name.as_bytes());
            h.push(type_byte);
            let fixed = match type_byte {
                2 => Some(1),
                3 => Some(2),
                4 => Some(4),
                5 | 8 => Some(8),
                9 => Some(16),
                _ => None,
            };
            match (type_byte, fixed) {
                (0 | 1, _) => {}
                (_, Some(n)) if exact => {
                    h.extend((0..n).map(|i| value.get(i).copied().unwrap_or(0)))
                }
                (6 | 7, _) if exact => {
                    h.extend_from_slice(&(value.len() as u16).to_be_bytes());
                    h.extend_from_slice(&value);
                }
                _ => h.extend_from_slice(&value),
            }
            h
        });
    prop_oneof![
        3 => vec(header, 0..5).prop_map(|hs| hs.concat()),
        1 => vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        data in prop_oneof![vec(any::<u8>(), 0..64), vec(any::<u8>(), 0..600)],
        chunks in chunk_sizes(),
    ) {
        let _ = check_decode(&data, &chunks);
    }

    #[test]
    fn decoder_never_panics_on_mutated_fixture_frames(
        index in any::<prop::sample::Index>(),
        edits in vec(byte_edit(), 1..5),
        fix in any::<bool>(),
        chunks in chunk_sizes(),
    ) {
        let frames = fixture_frames();
        let mut frame = index.get(frames).clone();
        for e in &edits {
            apply_edit(&mut frame, e);
        }
        if fix {
            fix_lengths_and_crcs(&mut frame);
        }
        let _ = check_decode(&frame, &chunks);
    }

    #[test]
    fn crc_corrected_frames_reach_the_header_parser(
        headers in header_block(),
        payload in vec(any::<u8>(), 0..32),
        chunks in chunk_sizes(),
    ) {
        let frame = frame_with_crcs(&headers, &payload);
        let decoded = check_decode(&frame, &chunks);
        match (decoded, reference_headers(&headers)) {
            (Ok(m), Some(expected)) => {
                prop_assert_eq!(m.headers(), &expected[..]);
                prop_assert_eq!(m.payload().as_ref(), &payload[..]);
            }
            (Err(e), None) => prop_assert!(
                !matches!(
                    e,
                    DecodeError::PreludeChecksum { .. }
                        | DecodeError::MessageChecksum { .. }
                        | DecodeError::TooShort { .. }
                        | DecodeError::HeadersLenInvalid { .. }
                        | DecodeError::FrameLenMismatch { .. }
                ),
                "correct CRCs, yet {}", e
            ),
            (got, want) => prop_assert!(false, "decoder {:?}, reference {:?}", got, want),
        }
    }
}

/// The decoder takes byte-array and string values up to what their 16-bit length says (65535
/// bytes); the encoder refuses more than 32767. Such a frame must never re-encode to different
/// bytes: either the same frame or `HeaderValueTooLong`.
#[test]
fn long_header_values_never_re_encode_differently() {
    for (type_byte, len) in [(6u8, 32_767usize), (6, 32_768), (7, 40_000), (6, 65_535)] {
        let mut block = vec![1, b'v', type_byte];
        block.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        block.extend(std::iter::repeat_n(b'a', len));
        let frame = frame_with_crcs(&block, b"p");
        let m = check_decode(&frame, &[4096]).expect("the decoder takes any 16-bit length");
        assert_reencodes(&m, &frame);
    }
}

// ---------------------------------------------------------------------------------------------
// Skew parsers
// ---------------------------------------------------------------------------------------------

/// Real skew texts: AWS's two messages (also inside JSON), ISO times, `Date` headers.
const REAL_TEXTS: &[&str] = &[
    "Signature expired: 20240820T225000Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)",
    "Signature not yet current: 20240821T000143Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)",
    r#"{"__type":"InvalidSignatureException","message":"Signature expired: 20240820T230143Z is now earlier than 20240821T005643Z (20240821T010143Z - 5 min.)"}"#,
    "Signature not yet current: 2024-08-21T00:01:43.000Z is still later than 2024-08-20T23:06:43Z (2024-08-20T23:01:43Z + 5 min.)",
    "Thu, 01 Jan 2026 00:05:01 GMT",
    "Thursday, 01-Jan-26 00:00:01 GMT",
    "20240820T230143Z",
];

fn at_secs(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
    .unwrap_or(UNIX_EPOCH)
}

/// No panic; `observe_skew_message` agrees with `SkewMessage::parse`; an accepted `Date`
/// header came with a round trip of at most 15 minutes; `parse_amz_date` round-trips.
fn check_skew(text: &str, sent: SystemTime, round_trip_ms: i64) {
    let received = if round_trip_ms >= 0 {
        sent.checked_add(Duration::from_millis(round_trip_ms as u64))
    } else {
        sent.checked_sub(Duration::from_millis(round_trip_ms.unsigned_abs()))
    }
    .unwrap_or(sent);

    let parsed = SkewMessage::parse(text);
    if let Some(m) = &parsed {
        assert!(text.contains("Signature expired:") || text.contains("Signature not yet current:"));
        let _ = (m.skew_millis(), m.observation(received));
    }
    assert_eq!(
        observe_skew_message(text, received),
        parsed
            .map(|m| m.observation(received))
            .ok_or(SkewEvidenceError::NoServerTime)
    );

    if let Ok(obs) = observe_date_header(text, sent, received) {
        let rtt = received
            .duration_since(sent)
            .expect("received before sent, yet accepted");
        assert!(rtt <= Duration::from_secs(15 * 60));
        assert_eq!(
            obs.uncertainty_millis(),
            1000 + (rtt / 2).as_millis() as u64
        );
    }

    for token in std::iter::once(text).chain(text.split_whitespace()) {
        if let Some(t) = parse_amz_date(token) {
            assert_eq!(token.len(), 16);
            if &token[13..15] != "60" {
                assert_eq!(format_amz_date(t).as_deref(), Some(token), "round trip");
            }
        }
    }
}

/// A character-level change to a text.
fn text_edit() -> impl Strategy<Value = (usize, usize, String)> {
    (
        any::<usize>(),
        0usize..4,
        prop_oneof!["[0-9TZ:. ()-]{0,3}", ".{0,3}"],
    )
}

fn apply_text_edits(text: &str, edits: &[(usize, usize, String)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, remove, insert) in edits {
        let at = at % (chars.len() + 1);
        let end = (at + remove).min(chars.len());
        chars.splice(at..end, insert.chars());
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn skew_parsers_never_panic_on_arbitrary_strings(
        text in prop_oneof![any::<String>(), ".{0,80}", "[0-9TZ:. ()-]{0,40}"],
        sent in prop_oneof![Just(1_767_225_600i64), any::<i64>(), -100_000_000_000i64..300_000_000_000],
        round_trip_ms in prop_oneof![-5_000i64..1_000_000, any::<i64>()],
    ) {
        check_skew(&text, at_secs(sent), round_trip_ms);
    }

    #[test]
    fn skew_parsers_never_panic_on_mutated_real_messages(
        index in any::<prop::sample::Index>(),
        edits in vec(text_edit(), 0..5),
        sent in prop_oneof![Just(1_767_225_600i64), any::<i64>()],
        round_trip_ms in -5_000i64..1_000_000,
    ) {
        let text = apply_text_edits(REAL_TEXTS[index.index(REAL_TEXTS.len())], &edits);
        check_skew(&text, at_secs(sent), round_trip_ms);
    }

    #[test]
    fn amz_dates_parse_only_in_their_one_format(text in "[0-9]{8}T[0-9]{6}Z|[0-9T Z]{14,18}") {
        check_skew(&text, UNIX_EPOCH, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "verify")]
mod verifier {
    use super::*;

    use aws_credential_types::Credentials;
    use sigv4_ws::proto::codec::{CHUNK_SIGNATURE, DATE};
    use sigv4_ws::proto::sigv4::canonical_path;
    use sigv4_ws::verify::{RejectionKind, VerifiedUpgrade, Verifier};
    use sigv4_ws::{Clock, EventSigner, ManualTime, Presigner};

    const AKID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 2024-08-20T23:01:43Z
    const T0_MS: u64 = 1_724_194_903_000;
    const URL: &str = "wss://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=9ab8a3a4-0c7e-4f2e-9d1c-2b0a1f0c7e11&video-width=640&video-height=480";

    /// A verified upgrade and a chain signed for it (three events and the end frame).
    struct Fixture {
        time: ManualTime,
        verifier: Verifier,
        upgrade: VerifiedUpgrade,
        target: String,
        host: String,
        seed: String,
        frames: Vec<Vec<u8>>,
        messages: Vec<Message>,
    }

    // A `ManualTime` per test thread: proptest runs properties on several threads.
    thread_local! {
        static FIXTURE: Fixture = build();
    }

    fn build() -> Fixture {
        let t0 = UNIX_EPOCH + Duration::from_millis(T0_MS);
        let time = ManualTime::new(t0);
        let clock = Clock::new(time.clone());
        let creds = Credentials::new(AKID, SECRET, None, None, "props");
        let presigned = Presigner::new(creds.clone(), "us-east-1", "rekognition")
            .presign_at(&url::Url::parse(URL).unwrap(), t0)
            .unwrap();
        let target = presigned.url()[url::Position::BeforePath..].to_owned();
        let host = presigned.host_header();
        let verifier = Verifier::new(clock.clone()).with_credentials(creds.clone());
        let upgrade = verifier.verify_upgrade(&target, &host).unwrap();
        let seed = presigned.signature().to_owned();
        let mut signer = EventSigner::new(creds, "us-east-1", "rekognition", &seed, clock);
        let bodies: [&[u8]; 4] = [b"", b"{}", b"0123456789abcdef0123456789abcdef", b""];
        let mut frames = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let inner = if i + 1 == bodies.len() {
                Vec::new()
            } else {
                Message::new(Bytes::copy_from_slice(body))
                    .with_header(":message-type", HeaderValue::from("event"))
                    .with_header(":event-type", HeaderValue::from("VideoEvent"))
                    .encode()
                    .unwrap()
                    .to_vec()
            };
            let mut dst = BytesMut::new();
            let when = t0 + Duration::from_millis(250 * i as u64);
            signer.sign_at(&inner, when, &mut dst).unwrap();
            frames.push(dst.to_vec());
        }
        let messages = frames.iter().map(|f| Message::decode(f).unwrap()).collect();
        Fixture {
            time,
            verifier,
            upgrade,
            target,
            host,
            seed,
            frames,
            messages,
        }
    }

    /// What an envelope's signature covers, plus the signature.
    fn envelope_parts(m: &Message) -> Option<(i64, Vec<u8>, Bytes)> {
        if m.headers().len() != 2 {
            return None;
        }
        let date = m.header(DATE)?.as_timestamp_millis()?;
        let sig = m.header(CHUNK_SIGNATURE)?.as_bytes()?.to_vec();
        Some((date, sig, m.payload().clone()))
    }

    fn set_clock(fx: &Fixture, shift_ms: i64) {
        let ms = (T0_MS as i64 + shift_ms).max(0) as u64;
        fx.time.set(UNIX_EPOCH + Duration::from_millis(ms));
    }

    /// Feeds frames to a fresh chain: a frame is accepted only if it carries the original
    /// `(:date, signature, payload)` at its position within 5 minutes of the clock, never after
    /// the end frame; a refusal does not advance the chain; no secret shows in any text.
    fn run_chain(fx: &Fixture, frames: &[Message], shift_ms: i64) -> u64 {
        set_clock(fx, shift_ms);
        let mut chain = fx.verifier.chain_verifier(&fx.upgrade).unwrap();
        for frame in frames {
            let position = chain.frames_verified();
            let was_ended = chain.is_ended();
            match chain.verify_frame(frame) {
                Ok(event) => {
                    assert!(!was_ended, "accepted after the end frame");
                    let original = &fx.messages[position as usize];
                    assert_eq!(
                        envelope_parts(frame),
                        envelope_parts(original),
                        "accepted a changed frame at #{position}"
                    );
                    assert_eq!(event.index(), position);
                    let skew = event.date_millis() - (T0_MS as i64 + shift_ms);
                    assert!(skew.abs() <= 300_000, "accepted outside the window");
                }
                Err(r) => {
                    assert_eq!(chain.frames_verified(), position);
                    if was_ended {
                        assert_eq!(r.kind(), RejectionKind::ChainEnded);
                    }
                    for text in [
                        r.to_string(),
                        r.diagnosis().to_string(),
                        r.http_error_body(),
                    ] {
                        assert!(!text.contains(SECRET) && !text.contains(&fx.seed), "{text}");
                    }
                }
            }
        }
        chain.frames_verified()
    }

    #[test]
    fn the_unmutated_chain_verifies() {
        FIXTURE.with(|fx| assert_eq!(run_chain(fx, &fx.messages, 0), 4));
    }

    /// A change to the list of signed frames.
    #[derive(Clone, Debug)]
    enum ChainEdit {
        Bytes {
            frame: usize,
            edit: ByteEdit,
            fix: bool,
        },
        ShiftDate {
            frame: usize,
            delta_ms: i64,
        },
        SetDate {
            frame: usize,
            value: HeaderValue,
        },
        SignatureByte {
            frame: usize,
            at: usize,
            value: u8,
        },
        SetSignature {
            frame: usize,
            value: HeaderValue,
        },
        PayloadByte {
            frame: usize,
            at: usize,
            value: u8,
        },
        ReverseHeaders {
            frame: usize,
        },
        AddHeader {
            frame: usize,
            name: String,
            value: HeaderValue,
        },
        RemoveHeader {
            frame: usize,
            index: usize,
        },
        Swap {
            a: usize,
            b: usize,
        },
        Duplicate {
            frame: usize,
        },
        Drop {
            frame: usize,
        },
    }

    fn value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            any::<i64>().prop_map(HeaderValue::Timestamp),
            any::<i64>().prop_map(HeaderValue::Int64),
            vec(any::<u8>(), 0..40).prop_map(|v| HeaderValue::ByteArray(Bytes::from(v))),
            vec(any::<u8>(), 32..=32).prop_map(|v| HeaderValue::ByteArray(Bytes::from(v))),
            ".{0,8}".prop_map(HeaderValue::String),
            any::<bool>().prop_map(HeaderValue::Bool),
        ]
    }

    fn chain_edit() -> impl Strategy<Value = ChainEdit> {
        let f = || 0usize..8;
        prop_oneof![
            4 => (f(), byte_edit(), any::<bool>()).prop_map(|(frame, edit, fix)| ChainEdit::Bytes { frame, edit, fix }),
            2 => (f(), prop_oneof![-400_000i64..400_000, any::<i64>()]).prop_map(|(frame, delta_ms)| ChainEdit::ShiftDate { frame, delta_ms }),
            1 => (f(), value()).prop_map(|(frame, value)| ChainEdit::SetDate { frame, value }),
            2 => (f(), any::<usize>(), any::<u8>()).prop_map(|(frame, at, value)| ChainEdit::SignatureByte { frame, at, value }),
            1 => (f(), value()).prop_map(|(frame, value)| ChainEdit::SetSignature { frame, value }),
            2 => (f(), any::<usize>(), any::<u8>()).prop_map(|(frame, at, value)| ChainEdit::PayloadByte { frame, at, value }),
            1 => f().prop_map(|frame| ChainEdit::ReverseHeaders { frame }),
            1 => (f(), prop_oneof![Just(":date".to_owned()), Just(":chunk-signature".to_owned()), "[a-z:-]{1,12}"], value())
                .prop_map(|(frame, name, value)| ChainEdit::AddHeader { frame, name, value }),
            1 => (f(), 0usize..3).prop_map(|(frame, index)| ChainEdit::RemoveHeader { frame, index }),
            1 => (f(), f()).prop_map(|(a, b)| ChainEdit::Swap { a, b }),
            1 => f().prop_map(|frame| ChainEdit::Duplicate { frame }),
            1 => f().prop_map(|frame| ChainEdit::Drop { frame }),
        ]
    }

    /// Decodes, edits and re-encodes a frame (left alone if it does not decode or re-encode).
    fn edit_message(frame: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<Header>, &mut Bytes)) {
        if let Ok(m) = Message::decode(frame) {
            let (mut headers, mut payload) = m.into_parts();
            edit(&mut headers, &mut payload);
            if let Ok(bytes) = Message::from_parts(headers, payload).encode() {
                *frame = bytes.to_vec();
            }
        }
    }

    fn map_header(headers: &mut [Header], name: &str, f: impl FnOnce(HeaderValue) -> HeaderValue) {
        if let Some(h) = headers.iter_mut().find(|h| h.name() == name) {
            let (n, v) = h.clone().into_parts();
            *h = Header::new(n, f(v));
        }
    }

    fn change_byte(bytes: &Bytes, at: usize, value: u8) -> Bytes {
        let mut v = bytes.to_vec();
        if !v.is_empty() {
            let i = at % v.len();
            v[i] = value;
        }
        Bytes::from(v)
    }

    fn apply_chain_edit(frames: &mut Vec<Vec<u8>>, edit: &ChainEdit) {
        let n = frames.len();
        if n == 0 {
            return;
        }
        let edit = edit.clone();
        match edit {
            ChainEdit::Bytes { frame, edit, fix } => {
                apply_edit(&mut frames[frame % n], &edit);
                if fix {
                    fix_lengths_and_crcs(&mut frames[frame % n]);
                }
            }
            ChainEdit::ShiftDate { frame, delta_ms } => {
                edit_message(&mut frames[frame % n], |h, _| {
                    map_header(h, DATE, |v| match v {
                        HeaderValue::Timestamp(ms) => {
                            HeaderValue::Timestamp(ms.wrapping_add(delta_ms))
                        }
                        other => other,
                    })
                })
            }
            ChainEdit::SetDate { frame, value } => edit_message(&mut frames[frame % n], |h, _| {
                map_header(h, DATE, |_| value)
            }),
            ChainEdit::SignatureByte { frame, at, value } => {
                edit_message(&mut frames[frame % n], |h, _| {
                    map_header(h, CHUNK_SIGNATURE, |v| match v {
                        HeaderValue::ByteArray(b) => {
                            HeaderValue::ByteArray(change_byte(&b, at, value))
                        }
                        other => other,
                    })
                })
            }
            ChainEdit::SetSignature { frame, value } => {
                edit_message(&mut frames[frame % n], |h, _| {
                    map_header(h, CHUNK_SIGNATURE, |_| value)
                })
            }
            ChainEdit::PayloadByte { frame, at, value } => {
                edit_message(&mut frames[frame % n], |_, p| {
                    *p = change_byte(p, at, value)
                })
            }
            ChainEdit::ReverseHeaders { frame } => {
                edit_message(&mut frames[frame % n], |h, _| h.reverse())
            }
            ChainEdit::AddHeader { frame, name, value } => {
                edit_message(&mut frames[frame % n], |h, _| {
                    h.push(Header::new(name, value))
                })
            }
            ChainEdit::RemoveHeader { frame, index } => {
                edit_message(&mut frames[frame % n], |h, _| {
                    if !h.is_empty() {
                        let i = index % h.len();
                        h.remove(i);
                    }
                })
            }
            ChainEdit::Swap { a, b } => frames.swap(a % n, b % n),
            ChainEdit::Duplicate { frame } => {
                let copy = frames[frame % n].clone();
                frames.insert(frame % n, copy);
            }
            ChainEdit::Drop { frame } => {
                frames.remove(frame % n);
            }
        }
    }

    /// Path-and-query edits of the valid upgrade.
    fn target_edit() -> impl Strategy<Value = (usize, usize, String)> {
        (
            any::<usize>(),
            0usize..6,
            prop_oneof!["[A-Za-z0-9%&=/?._~-]{0,4}", ".{0,3}"],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn chain_verifier_never_panics_on_arbitrary_frames(
            data in vec(any::<u8>(), 0..300),
            headers in vec((prop_oneof![Just(DATE.to_owned()), Just(CHUNK_SIGNATURE.to_owned()), "[a-z:-]{1,10}"], value()), 0..4),
            payload in vec(any::<u8>(), 0..64),
            shift_ms in -400_000i64..400_000,
        ) {
            FIXTURE.with(|fx| {
                // Bytes, as a stream of frames.
                let mut buf = BytesMut::from(&data[..]);
                let mut decoder = FrameDecoder::new();
                let mut frames = Vec::new();
                while let Ok(Some(m)) = decoder.decode(&mut buf) {
                    frames.push(m);
                }
                run_chain(fx, &frames, shift_ms);
                // A built envelope-like message.
                let mut m = Message::new(payload.clone());
                for (name, value) in &headers {
                    m.push_header(Header::new(name.clone(), value.clone()));
                }
                run_chain(fx, &[m], shift_ms);
            });
        }

        #[test]
        fn mutated_chains_are_never_accepted_unless_unchanged(
            edits in vec(chain_edit(), 1..5),
            shift_ms in prop_oneof![3 => -1_000i64..1_000, 1 => -400_000i64..400_000],
        ) {
            FIXTURE.with(|fx| {
                let mut frames = fx.frames.clone();
                for e in &edits {
                    apply_chain_edit(&mut frames, e);
                }
                let decoded: Vec<Message> =
                    frames.iter().filter_map(|f| Message::decode(f).ok()).collect();
                run_chain(fx, &decoded, shift_ms);
            });
        }

        #[test]
        fn verify_upgrade_never_panics_on_arbitrary_strings(
            target in prop_oneof![any::<String>(), "/[ -~]{0,200}", "/?([A-Za-z-]{1,20}=[ -~]{0,30}&){0,8}"],
            host in prop_oneof![any::<String>(), "[a-z0-9.:\\[\\]-]{0,40}"],
            shift_ms in -400_000i64..400_000,
        ) {
            FIXTURE.with(|fx| {
                set_clock(fx, shift_ms);
                if let Err(r) = fx.verifier.verify_upgrade(&target, &host) {
                    let _ = (r.to_string(), r.diagnosis().to_string(), r.http_error_body());
                } else {
                    panic!("accepted a made-up upgrade: {target} {host}");
                }
            });
        }

        #[test]
        fn edited_upgrades_keep_key_scope_and_signature(
            edits in vec(target_edit(), 0..4),
            host_suffix in prop_oneof![Just(String::new()), Just(":443".to_owned()), ".{0,4}"],
            shift_ms in prop_oneof![Just(0i64), -400_000i64..400_000],
        ) {
            FIXTURE.with(|fx| {
                set_clock(fx, shift_ms);
                let target = apply_text_edits(&fx.target, &edits);
                let host = format!("{}{host_suffix}", fx.host);
                match fx.verifier.verify_upgrade(&target, &host) {
                    Ok(up) => {
                        assert_eq!((up.access_key_id(), up.region(), up.service()), (AKID, "us-east-1", "rekognition"));
                        assert!(up.seed_signature().eq_ignore_ascii_case(&fx.seed), "{target}");
                        // The accepted path is the signed one after SigV4 normalisation. Not
                        // checked for targets that do not start with `/`: a known verifier bug
                        // accepts them (tests/fuzz_regressions.rs, ignored test).
                        if up.path().starts_with('/') {
                            let signed_path = fx.target.split('?').next().unwrap_or_default();
                            assert_eq!(canonical_path(up.path()), canonical_path(signed_path), "{target}");
                        }
                    }
                    Err(r) => {
                        for text in [r.to_string(), r.diagnosis().to_string(), r.http_error_body()] {
                            assert!(!text.contains(SECRET), "{text}");
                        }
                    }
                }
            });
        }
    }
}
