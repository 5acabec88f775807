//! The verifier targets: a signed chain made with `EventSigner` for a verified upgrade,
//! mutations of frames and of the upgrade request, and the oracle that judges the verdicts.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use aws_credential_types::Credentials;
use bytes::{Bytes, BytesMut};
use sigv4_ws::proto::codec::{Header, HeaderValue, Message, CHUNK_SIGNATURE, DATE};
use sigv4_ws::proto::sigv4::canonical_path;
use sigv4_ws::verify::{ChainVerifier, Rejection, RejectionKind, VerifiedUpgrade, Verifier};
use sigv4_ws::{Clock, EventSigner, ManualTime, Presigner};

use crate::codec::{fix_crcs, fix_lengths_and_crcs};

/// Access key id the verifier accepts.
pub const AKID: &str = "AKIDEXAMPLE";
/// Its secret; must never appear in any text the verifier produces.
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2024-08-20T23:01:43Z, the verifier's time and the signing time of the chain.
pub const T0: u64 = 1_724_194_903;
/// The upgrade URL the chain belongs to.
pub const URL: &str = "wss://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=9ab8a3a4-0c7e-4f2e-9d1c-2b0a1f0c7e11&video-width=640&video-height=480";
/// Region of the chain.
pub const REGION: &str = "us-east-1";
/// Signing name of the chain.
pub const SERVICE: &str = "rekognition";

/// A verified upgrade and a valid signed chain for it (three events and the end frame).
pub struct ChainFixture {
    /// The verifier's time source; each input sets it.
    pub time: ManualTime,
    /// A verifier judging by `time`, accepting `AKID`.
    pub verifier: Verifier,
    /// The upgrade the chain is seeded from.
    pub upgrade: VerifiedUpgrade,
    /// The presigned request target (path and query) of the upgrade.
    pub path_and_query: String,
    /// The `Host` header of the upgrade.
    pub host: String,
    /// The seed signature (the URL's `X-Amz-Signature`).
    pub seed: String,
    /// The signed frames, in order, the end frame last.
    pub frames: Vec<Bytes>,
    /// The same frames, decoded.
    pub messages: Vec<Message>,
}

fn at_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn inner_event(payload: &[u8]) -> Vec<u8> {
    Message::new(Bytes::copy_from_slice(payload))
        .with_header(":message-type", HeaderValue::from("event"))
        .with_header(":event-type", HeaderValue::from("VideoEvent"))
        .with_header(":content-type", HeaderValue::from("application/json"))
        .encode()
        .expect("inner event encodes")
        .to_vec()
}

fn build_fixture() -> ChainFixture {
    let time = ManualTime::new(at_millis(T0 * 1000));
    let clock = Clock::new(time.clone());
    let creds = Credentials::new(AKID, SECRET, None, None, "fuzz");
    let url = url::Url::parse(URL).expect("fixture URL parses");
    let presigned = Presigner::new(creds.clone(), REGION, SERVICE)
        .presign_at(&url, at_millis(T0 * 1000))
        .expect("fixture URL presigns");
    let path_and_query = presigned.url()[url::Position::BeforePath..].to_owned();
    let host = presigned.host_header();
    let verifier = Verifier::new(clock.clone()).with_credentials(creds.clone());
    let upgrade = verifier
        .verify_upgrade(&path_and_query, &host)
        .expect("fixture upgrade verifies");
    let seed = presigned.signature().to_owned();

    let mut signer = EventSigner::new(creds, REGION, SERVICE, &seed, clock);
    let payloads: [&[u8]; 4] = [b"", b"{}", b"0123456789abcdef0123456789abcdef", b""];
    let mut frames = Vec::new();
    for (i, p) in payloads.iter().enumerate() {
        let mut dst = BytesMut::new();
        let when = at_millis(T0 * 1000 + 250 * i as u64);
        // The last frame is the empty end frame; the others wrap an encoded inner event.
        let body = if i + 1 == payloads.len() {
            Vec::new()
        } else {
            inner_event(p)
        };
        signer
            .sign_at(&body, when, &mut dst)
            .expect("fixture frame signs");
        frames.push(dst.freeze());
    }
    let messages = frames
        .iter()
        .map(|f| Message::decode(f).expect("fixture frame decodes"))
        .collect();
    ChainFixture {
        time,
        verifier,
        upgrade,
        path_and_query,
        host,
        seed,
        frames,
        messages,
    }
}

/// The fixture, built once per process.
pub fn fixture() -> &'static ChainFixture {
    static FIXTURE: OnceLock<ChainFixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

/// What the signature of an envelope covers, plus the signature itself: `(:date, signature,
/// payload)`, if the frame is an envelope with exactly these two headers.
pub fn envelope_parts(m: &Message) -> Option<(i64, Vec<u8>, Bytes)> {
    if m.headers().len() != 2 {
        return None;
    }
    let date = m.header(DATE)?.as_timestamp_millis()?;
    let sig = m.header(CHUNK_SIGNATURE)?.as_bytes()?.to_vec();
    Some((date, sig, m.payload().clone()))
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Of `secrets`, those that do not occur in what the client sent (`sent`): a verifier may
/// echo the request back (the received path, a malformed parameter), so a secret the client
/// put in it itself is no leak.
pub fn secrets_not_in<'a>(secrets: &[&'a str], sent: &[&[u8]]) -> Vec<&'a str> {
    secrets
        .iter()
        .copied()
        .filter(|s| !sent.iter().any(|part| contains(part, s.as_bytes())))
        .collect()
}

/// Exercises every text a rejection carries and checks that none of `secrets` appears in it.
pub fn check_rejection_texts(r: &Rejection, secrets: &[&str]) {
    let texts = [
        r.to_string(),
        r.message().to_owned(),
        r.exception_payload(),
        r.http_error_body(),
        r.diagnosis().to_string(),
        format!("{r:?}"),
        r.exception_type().to_owned(),
    ];
    let _ = (
        r.http_status(),
        r.kind().check(),
        r.kind().is_time(),
        r.service(),
    );
    let d = r.diagnosis();
    let _ = (d.check(), d.detail(), d.skew_millis(), d.advice());
    let _ = (
        d.received_host(),
        d.received_path(),
        d.expected_canonical_request(),
    );
    for text in &texts {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "a secret leaked into a rejection: {text}"
            );
        }
    }
}

/// Sets the verifier's clock to `T0 + shift_ms` (saturating at the epoch).
pub fn set_clock(shift_ms: i64) {
    let base = T0 as i64 * 1000;
    let ms = base.saturating_add(shift_ms).max(0) as u64;
    fixture().time.set(at_millis(ms));
}

/// Feeds `frames` to a fresh chain verifier and checks every verdict: a frame is accepted only
/// if it carries exactly the `(:date, signature, payload)` of the original frame at the chain's
/// position, its `:date` is within 5 minutes of the clock, and the chain has not ended.
/// Refused frames do not advance the chain.
pub fn run_chain(frames: &[Message]) {
    let fx = fixture();
    let mut chain: ChainVerifier = fx
        .verifier
        .chain_verifier(&fx.upgrade)
        .expect("the fixture key is registered");
    let now_ms = fx
        .verifier
        .clock()
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    for frame in frames {
        let position = chain.frames_verified();
        let was_ended = chain.is_ended();
        match chain.verify_frame(frame) {
            Ok(event) => {
                assert!(!was_ended, "a frame was accepted after the end frame");
                let original = fx
                    .messages
                    .get(position as usize)
                    .expect("accepted more frames than the chain has");
                let got = envelope_parts(frame).expect("accepted a frame that is no envelope");
                assert_eq!(
                    Some(got),
                    envelope_parts(original),
                    "accepted a frame that differs from the chain's frame #{position}"
                );
                assert_eq!(event.index(), position);
                assert_eq!(event.payload(), frame.payload());
                assert_eq!(event.is_end(), frame.payload().is_empty());
                assert_eq!(chain.is_ended(), event.is_end());
                assert_eq!(chain.frames_verified(), position + 1);
                assert!(
                    (event.date_millis() - now_ms).abs() <= 300_000,
                    "accepted a frame outside the 5-minute window"
                );
                let _ = (event.date(), event.inner_message());
            }
            Err(r) => {
                assert_eq!(
                    chain.frames_verified(),
                    position,
                    "a refusal advanced the chain"
                );
                if was_ended {
                    assert_eq!(r.kind(), RejectionKind::ChainEnded);
                }
                let sent = frame.encode().map(|b| b.to_vec()).unwrap_or_default();
                let names: Vec<&[u8]> = frame
                    .headers()
                    .iter()
                    .map(|h| h.name().as_bytes())
                    .collect();
                let mut parts = vec![&sent[..], frame.payload().as_ref()];
                parts.extend(names);
                check_rejection_texts(&r, &secrets_not_in(&[SECRET, &fx.seed], &parts));
            }
        }
    }
    let debug = format!("{chain:?}");
    assert!(!debug.contains(SECRET) && !debug.contains(&fx.seed));
}

/// A header value the fuzzer picks.
#[derive(Arbitrary, Debug, Clone)]
pub enum ArbValue {
    /// `Bool`
    Bool(bool),
    /// `Byte`
    Byte(i8),
    /// `Int16`
    Int16(i16),
    /// `Int32`
    Int32(i32),
    /// `Int64`
    Int64(i64),
    /// `ByteArray`
    Bytes(Vec<u8>),
    /// `String`
    Str(String),
    /// `Timestamp`
    Timestamp(i64),
    /// `Uuid`
    Uuid([u8; 16]),
}

impl ArbValue {
    /// The codec's value.
    pub fn to_value(&self) -> HeaderValue {
        match self {
            ArbValue::Bool(v) => HeaderValue::Bool(*v),
            ArbValue::Byte(v) => HeaderValue::Byte(*v),
            ArbValue::Int16(v) => HeaderValue::Int16(*v),
            ArbValue::Int32(v) => HeaderValue::Int32(*v),
            ArbValue::Int64(v) => HeaderValue::Int64(*v),
            ArbValue::Bytes(v) => HeaderValue::ByteArray(Bytes::copy_from_slice(v)),
            ArbValue::Str(v) => HeaderValue::String(v.clone()),
            ArbValue::Timestamp(v) => HeaderValue::Timestamp(*v),
            ArbValue::Uuid(v) => HeaderValue::Uuid(*v),
        }
    }
}

/// One mutation of the list of signed frames (indices wrap around the list).
#[derive(Arbitrary, Debug, Clone)]
pub enum FrameOp {
    /// Flip one bit of a frame.
    FlipBit { frame: u8, at: u16, bit: u8 },
    /// Overwrite one byte.
    SetByte { frame: u8, at: u16, value: u8 },
    /// Cut a frame short.
    Truncate { frame: u8, len: u16 },
    /// Append bytes.
    Append { frame: u8, bytes: Vec<u8> },
    /// Insert bytes.
    Insert { frame: u8, at: u16, bytes: Vec<u8> },
    /// Make the total length and both CRCs right again after byte-level changes.
    FixLengthsAndCrcs { frame: u8 },
    /// Recompute only the CRCs.
    FixCrcs { frame: u8 },
    /// Move `:date` by some milliseconds.
    ShiftDate { frame: u8, delta_ms: i32 },
    /// Give `:date` another value (or type).
    SetDate { frame: u8, value: ArbValue },
    /// Change one byte of `:chunk-signature`.
    SetSignatureByte { frame: u8, at: u8, value: u8 },
    /// Give `:chunk-signature` another value (or type, or length).
    SetSignature { frame: u8, value: ArbValue },
    /// Change one byte of the payload.
    SetPayloadByte { frame: u8, at: u16, value: u8 },
    /// Replace the payload.
    SetPayload { frame: u8, payload: Vec<u8> },
    /// Reverse the header order.
    ReverseHeaders { frame: u8 },
    /// Add a header.
    AddHeader {
        frame: u8,
        name: String,
        value: ArbValue,
    },
    /// Repeat one of the headers.
    RepeatHeader { frame: u8, index: u8 },
    /// Remove a header.
    RemoveHeader { frame: u8, index: u8 },
    /// Rename a header.
    RenameHeader { frame: u8, index: u8, name: String },
    /// Swap two frames.
    Swap { a: u8, b: u8 },
    /// Repeat a frame right after itself.
    Duplicate { frame: u8 },
    /// Drop a frame.
    Remove { frame: u8 },
    /// Put arbitrary bytes in a frame's place.
    Replace { frame: u8, bytes: Vec<u8> },
    /// Put a frame of the chain in another frame's place.
    CopyFrom { from: u8, to: u8 },
}

/// A fuzzed chain: mutations of the valid frames, and the verifier's clock.
#[derive(Arbitrary, Debug, Clone)]
pub struct ChainInput {
    /// Clock shift from `T0`, in ms (taken modulo 700 s, so that about half the inputs fall
    /// inside the 5-minute window).
    pub clock_shift: i32,
    /// The mutations, applied in order.
    pub ops: Vec<FrameOp>,
}

fn pick(len: usize, i: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(i) % len)
}

/// Decodes, changes and re-encodes one frame (unchanged if it does not decode or re-encode).
fn edit_message(frame: &mut Vec<u8>, edit: impl FnOnce(&mut Vec<Header>, &mut Bytes)) {
    let Ok(m) = Message::decode(frame) else {
        return;
    };
    let (mut headers, mut payload) = m.into_parts();
    edit(&mut headers, &mut payload);
    if let Ok(bytes) = Message::from_parts(headers, payload).encode() {
        *frame = bytes.to_vec();
    }
}

fn edit_header(headers: &mut [Header], name: &str, edit: impl FnOnce(HeaderValue) -> HeaderValue) {
    if let Some(h) = headers.iter_mut().find(|h| h.name() == name) {
        let (n, v) = h.clone().into_parts();
        *h = Header::new(n, edit(v));
    }
}

/// Applies the mutations to the fixture's frames.
pub fn mutate_frames(ops: &[FrameOp]) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = fixture().frames.iter().map(|f| f.to_vec()).collect();
    for op in ops {
        let n = frames.len();
        match op.clone() {
            FrameOp::FlipBit { frame, at, bit } => {
                if let Some(f) = pick(n, frame).map(|i| &mut frames[i]) {
                    if !f.is_empty() {
                        let i = usize::from(at) % f.len();
                        f[i] ^= 1 << (bit % 8);
                    }
                }
            }
            FrameOp::SetByte { frame, at, value } => {
                if let Some(f) = pick(n, frame).map(|i| &mut frames[i]) {
                    if !f.is_empty() {
                        let i = usize::from(at) % f.len();
                        f[i] = value;
                    }
                }
            }
            FrameOp::Truncate { frame, len } => {
                if let Some(i) = pick(n, frame) {
                    let f = &mut frames[i];
                    f.truncate(usize::from(len) % (f.len() + 1));
                }
            }
            FrameOp::Append { frame, bytes } => {
                if let Some(i) = pick(n, frame) {
                    frames[i].extend_from_slice(&bytes);
                }
            }
            FrameOp::Insert { frame, at, bytes } => {
                if let Some(i) = pick(n, frame) {
                    let f = &mut frames[i];
                    let at = usize::from(at) % (f.len() + 1);
                    f.splice(at..at, bytes);
                }
            }
            FrameOp::FixLengthsAndCrcs { frame } => {
                if let Some(i) = pick(n, frame) {
                    fix_lengths_and_crcs(&mut frames[i]);
                }
            }
            FrameOp::FixCrcs { frame } => {
                if let Some(i) = pick(n, frame) {
                    fix_crcs(&mut frames[i]);
                }
            }
            FrameOp::ShiftDate { frame, delta_ms } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        edit_header(h, DATE, |v| match v {
                            HeaderValue::Timestamp(ms) => {
                                HeaderValue::Timestamp(ms.wrapping_add(i64::from(delta_ms)))
                            }
                            other => other,
                        })
                    });
                }
            }
            FrameOp::SetDate { frame, value } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        edit_header(h, DATE, |_| value.to_value())
                    });
                }
            }
            FrameOp::SetSignatureByte { frame, at, value } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        edit_header(h, CHUNK_SIGNATURE, |v| match v {
                            HeaderValue::ByteArray(b) if !b.is_empty() => {
                                let mut b = b.to_vec();
                                let len = b.len();
                                b[usize::from(at) % len] = value;
                                HeaderValue::ByteArray(Bytes::from(b))
                            }
                            other => other,
                        })
                    });
                }
            }
            FrameOp::SetSignature { frame, value } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        edit_header(h, CHUNK_SIGNATURE, |_| value.to_value())
                    });
                }
            }
            FrameOp::SetPayloadByte { frame, at, value } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |_, p| {
                        if !p.is_empty() {
                            let mut b = p.to_vec();
                            let len = b.len();
                            b[usize::from(at) % len] = value;
                            *p = Bytes::from(b);
                        }
                    });
                }
            }
            FrameOp::SetPayload { frame, payload } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |_, p| *p = Bytes::from(payload));
                }
            }
            FrameOp::ReverseHeaders { frame } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| h.reverse());
                }
            }
            FrameOp::AddHeader { frame, name, value } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        h.push(Header::new(name, value.to_value()))
                    });
                }
            }
            FrameOp::RepeatHeader { frame, index } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        if let Some(j) = pick(h.len(), index) {
                            let copy = h[j].clone();
                            h.insert(j, copy);
                        }
                    });
                }
            }
            FrameOp::RemoveHeader { frame, index } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        if let Some(j) = pick(h.len(), index) {
                            h.remove(j);
                        }
                    });
                }
            }
            FrameOp::RenameHeader { frame, index, name } => {
                if let Some(i) = pick(n, frame) {
                    edit_message(&mut frames[i], |h, _| {
                        if let Some(j) = pick(h.len(), index) {
                            let (_, v) = h[j].clone().into_parts();
                            h[j] = Header::new(name, v);
                        }
                    });
                }
            }
            FrameOp::Swap { a, b } => {
                if let (Some(a), Some(b)) = (pick(n, a), pick(n, b)) {
                    frames.swap(a, b);
                }
            }
            FrameOp::Duplicate { frame } => {
                if let Some(i) = pick(n, frame) {
                    let copy = frames[i].clone();
                    frames.insert(i, copy);
                }
            }
            FrameOp::Remove { frame } => {
                if let Some(i) = pick(n, frame) {
                    frames.remove(i);
                }
            }
            FrameOp::Replace { frame, bytes } => {
                if let Some(i) = pick(n, frame) {
                    frames[i] = bytes;
                }
            }
            FrameOp::CopyFrom { from, to } => {
                let originals = &fixture().frames;
                if let (Some(src), Some(dst)) = (pick(originals.len(), from), pick(n, to)) {
                    frames[dst] = originals[src].to_vec();
                }
            }
        }
        if frames.len() > 64 {
            frames.truncate(64);
        }
    }
    frames
}

/// Mutates the chain, sets the clock, decodes what still decodes and verifies it in order.
pub fn check_chain(input: &ChainInput) {
    set_clock(i64::from(input.clock_shift % 700_000));
    let frames = mutate_frames(&input.ops);
    let decoded: Vec<Message> = frames
        .iter()
        .filter_map(|f| Message::decode(f).ok())
        .collect();
    run_chain(&decoded);
}

/// Arbitrary bytes as a stream of frames: everything that decodes goes to a fresh chain.
pub fn check_arbitrary_frames(data: &[u8], clock_shift: i32) {
    set_clock(i64::from(clock_shift % 700_000));
    let mut buf = BytesMut::from(data);
    let mut decoder = sigv4_ws::proto::codec::FrameDecoder::new();
    let mut messages = Vec::new();
    while let Ok(Some(m)) = decoder.decode(&mut buf) {
        messages.push(m);
    }
    if messages.is_empty() {
        if let Ok(m) = Message::decode(data) {
            messages.push(m);
        }
    }
    run_chain(&messages);
}

/// One edit of the upgrade's request target or host.
#[derive(Arbitrary, Debug, Clone)]
pub enum UpgradeOp {
    /// Insert text at a byte position (moved back to a character boundary).
    Insert { at: u16, text: String },
    /// Delete a byte range (moved to character boundaries).
    Delete { at: u16, len: u8 },
    /// Replace a byte with another ASCII byte.
    SetAscii { at: u16, value: u8 },
    /// Swap two `&`-separated parameters.
    SwapParams { a: u8, b: u8 },
    /// Repeat a parameter.
    RepeatParam { index: u8 },
    /// Drop a parameter.
    DropParam { index: u8 },
    /// Percent-encode the byte at a position.
    PercentEncode { at: u16 },
    /// Upper-case everything.
    Upper,
    /// Edit the host instead: replace it.
    SetHost { host: String },
    /// Edit the host instead: append text (e.g. a port).
    AppendHost { text: String },
}

/// The upgrade target: the fixture's request, edited, or raw strings.
#[derive(Arbitrary, Debug, Clone)]
pub enum UpgradeInput {
    /// Raw path-and-query and host.
    Raw {
        path_and_query: String,
        host: String,
        clock_shift: i32,
    },
    /// The valid request, edited.
    Edit {
        ops: Vec<UpgradeOp>,
        clock_shift: i32,
    },
}

fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn edit_params(target: &mut String, edit: impl FnOnce(&mut Vec<String>)) {
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let mut params: Vec<String> = query.split('&').map(str::to_owned).collect();
    let path = path.to_owned();
    edit(&mut params);
    *target = format!("{path}?{}", params.join("&"));
}

/// Applies the edits to the fixture's request target and host.
pub fn edit_upgrade(ops: &[UpgradeOp]) -> (String, String) {
    let fx = fixture();
    let mut target = fx.path_and_query.clone();
    let mut host = fx.host.clone();
    for op in ops {
        match op.clone() {
            UpgradeOp::Insert { at, text } => {
                let at = floor_boundary(&target, usize::from(at));
                target.insert_str(at, &text);
            }
            UpgradeOp::Delete { at, len } => {
                let start = floor_boundary(&target, usize::from(at));
                let end = floor_boundary(&target, start + usize::from(len));
                target.replace_range(start..end, "");
            }
            UpgradeOp::SetAscii { at, value } => {
                if !target.is_empty() {
                    let start = floor_boundary(&target, usize::from(at) % target.len());
                    if let Some(c) = target[start..].chars().next() {
                        let ascii = char::from(value & 0x7f).to_string();
                        target.replace_range(start..start + c.len_utf8(), &ascii);
                    }
                }
            }
            UpgradeOp::SwapParams { a, b } => edit_params(&mut target, |p| {
                if let (Some(a), Some(b)) = (pick(p.len(), a), pick(p.len(), b)) {
                    p.swap(a, b);
                }
            }),
            UpgradeOp::RepeatParam { index } => edit_params(&mut target, |p| {
                if let Some(i) = pick(p.len(), index) {
                    let copy = p[i].clone();
                    p.push(copy);
                }
            }),
            UpgradeOp::DropParam { index } => edit_params(&mut target, |p| {
                if let Some(i) = pick(p.len(), index) {
                    p.remove(i);
                }
            }),
            UpgradeOp::PercentEncode { at } => {
                if !target.is_empty() {
                    let at = floor_boundary(&target, usize::from(at) % target.len());
                    if let Some(c) = target[at..].chars().next() {
                        let mut buf = [0u8; 4];
                        let encoded: String = c
                            .encode_utf8(&mut buf)
                            .bytes()
                            .map(|b| format!("%{b:02X}"))
                            .collect();
                        target.replace_range(at..at + c.len_utf8(), &encoded);
                    }
                }
            }
            UpgradeOp::Upper => target = target.to_uppercase(),
            UpgradeOp::SetHost { host: h } => host = h,
            UpgradeOp::AppendHost { text } => host.push_str(&text),
        }
        if target.len() > 4096 {
            target.truncate(floor_boundary(&target, 4096));
        }
    }
    (target, host)
}

/// Known bug (reported, not fixed here): `verify_upgrade` accepts request targets that do not
/// start with `/`. The first form, `x/<signed path>?<signed query>`, is fixed in
/// `proto::sigv4::canonical_path` (commit 2b648d6); the fuzzer then found `x/../<signed path>`
/// (dot-segment removal pops the unrooted piece), still accepted, with `path()` reporting
/// `x/../…`. While this is `true` the target skips accepted upgrades whose path does not start
/// with `/` (after checking they do not panic); set it to `false` once the verifier refuses
/// targets that are not origin-form (`tests/fuzz_regressions.rs` has the ignored test).
pub const KNOWN_ISSUE_UNROOTED_PATH: bool = false;

/// Verifies an upgrade; an accepted one must be the fixture's key, scope, signature and path
/// (after SigV4 normalisation).
pub fn check_upgrade(input: &UpgradeInput) {
    let fx = fixture();
    let (target, host, shift) = match input {
        UpgradeInput::Raw {
            path_and_query,
            host,
            clock_shift,
        } => (path_and_query.clone(), host.clone(), *clock_shift),
        UpgradeInput::Edit { ops, clock_shift } => {
            let (t, h) = edit_upgrade(ops);
            (t, h, *clock_shift)
        }
    };
    set_clock(i64::from(shift % 700_000));
    match fx.verifier.verify_upgrade(&target, &host) {
        Ok(up) => {
            assert_eq!(up.access_key_id(), AKID);
            assert_eq!(up.region(), REGION);
            assert_eq!(up.service(), SERVICE);
            assert!(
                up.seed_signature().eq_ignore_ascii_case(&fx.seed),
                "accepted an upgrade with another signature: {target} {host}"
            );
            let _ = (up.signed_at(), up.expires(), up.expires_at(), up.params());
            let _ = (
                up.path(),
                up.host(),
                up.has_session_token(),
                up.service_kind(),
            );
            if KNOWN_ISSUE_UNROOTED_PATH && !up.path().starts_with('/') {
                return;
            }
            let signed_path = fx.path_and_query.split('?').next().unwrap_or_default();
            assert!(
                up.path().starts_with('/')
                    && canonical_path(up.path()) == canonical_path(signed_path),
                "accepted an upgrade for another path: target {target:?}, host {host:?}"
            );
            let debug = format!("{up:?}");
            for secret in secrets_not_in(&[SECRET, &fx.seed], &[target.as_bytes(), host.as_bytes()])
            {
                assert!(
                    !debug.contains(secret),
                    "an accepted upgrade shows a secret: {debug}\ntarget {target:?}\nhost {host:?}"
                );
            }
            // The accepted upgrade seeds a chain that the original frames verify against, as
            // long as the clock is within the window of the frames.
            if let Some(mut chain) = fx.verifier.chain_verifier(&up) {
                if let Some(first) = fx.messages.first() {
                    let _ = chain.verify_frame(first);
                }
            }
        }
        Err(r) => {
            let sent = [target.as_bytes(), host.as_bytes()];
            check_rejection_texts(&r, &secrets_not_in(&[SECRET], &sent));
        }
    }
}
