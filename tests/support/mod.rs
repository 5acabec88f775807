//! Shared helpers of the vector tests: fixture loading, hex, times, and a hand decoder of
//! the signed envelopes our `EventSigner` writes (`:date` first, then `:chunk-signature`).
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use sigv4_ws::proto::sigv4::parse_amz_date;

/// Absolute path of a file under `fixtures/`.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// A fixture file as text (panics with the path when missing: a broken checkout).
pub fn read_text(relative: &str) -> String {
    let path = fixture_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A fixture file parsed as JSON.
pub fn read_json(relative: &str) -> serde_json::Value {
    serde_json::from_str(&read_text(relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid JSON: {e}"))
}

/// The string at `key` of a JSON object (panics naming the key when absent).
pub fn str_at<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("missing string field `{key}` in {value}"))
}

/// The unsigned integer at `key` of a JSON object.
pub fn u64_at(value: &serde_json::Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing integer field `{key}` in {value}"))
}

/// Hex to bytes (panics on bad hex: the vector itself would be broken).
pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap_or_else(|e| panic!("bad hex {text:?}: {e}"))
}

/// `UNIX_EPOCH + millis`.
pub fn at_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Milliseconds since the epoch.
pub fn epoch_millis(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).expect("time after 1970");
    u64::try_from(since.as_millis()).expect("fits in u64")
}

/// Parses an ISO 8601 UTC time such as `2026-01-01T00:00:00Z` or `2020-07-23T22:39:55.029943Z`
/// (fraction optional, nanosecond precision kept).
pub fn iso_time(text: &str) -> SystemTime {
    let body = text
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("{text:?} is not a UTC time"));
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let compact: String = whole.chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let seconds = parse_amz_date(&format!("{compact}Z"))
        .unwrap_or_else(|| panic!("{text:?} is not yyyy-mm-ddThh:mm:ss"));
    assert!(
        fraction.len() <= 9 && fraction.bytes().all(|b| b.is_ascii_digit()),
        "bad fraction in {text:?}"
    );
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().expect("digits")
    };
    seconds + Duration::from_nanos(u64::from(nanos))
}

/// Static credentials for tests.
pub fn creds(access_key_id: &str, secret: &str, token: Option<&str>) -> Credentials {
    Credentials::new(
        access_key_id,
        secret,
        token.map(str::to_owned),
        None,
        "vectors",
    )
}

/// Prelude + `:date` header + `:chunk-signature` header name/type/length, in our order.
pub const ENVELOPE_SIGNATURE_RANGE: std::ops::Range<usize> = 47..79;

/// A signed envelope taken apart by hand (without the crate's codec), every CRC checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Total frame length from the prelude.
    pub total_len: u32,
    /// Headers length from the prelude.
    pub headers_len: u32,
    /// The 15 encoded bytes of the `:date` header (bytes 12..27).
    pub date_header: [u8; 15],
    /// The `:date` value, epoch milliseconds (big-endian i64 at 19..27).
    pub date_millis: i64,
    /// The 32 raw signature bytes (47..79).
    pub signature: [u8; 32],
    /// The payload (the inner message, or nothing for the end frame).
    pub payload: Vec<u8>,
}

impl Envelope {
    /// The signature as lower-case hex.
    pub fn signature_hex(&self) -> String {
        hex::encode(self.signature)
    }
}

/// Takes apart an envelope laid out as `prelude | :date | :chunk-signature | payload | crc`.
pub fn decode_envelope(frame: &[u8]) -> Envelope {
    assert!(
        frame.len() >= 83,
        "an envelope is at least 83 bytes, got {}",
        frame.len()
    );
    let be32 = |at: usize| u32::from_be_bytes(frame[at..at + 4].try_into().expect("4 bytes"));
    let total_len = be32(0);
    let headers_len = be32(4);
    assert_eq!(total_len as usize, frame.len(), "total length field");
    assert_eq!(headers_len, 67, "headers length field");
    assert_eq!(be32(8), crc32fast::hash(&frame[..8]), "prelude CRC");
    let end = frame.len() - 4;
    assert_eq!(be32(end), crc32fast::hash(&frame[..end]), "message CRC");
    assert_eq!(
        &frame[12..19],
        b"\x05:date\x08",
        ":date header name and type"
    );
    assert_eq!(
        &frame[27..47],
        b"\x10:chunk-signature\x06\x00\x20",
        ":chunk-signature header name, type and length"
    );
    Envelope {
        total_len,
        headers_len,
        date_header: frame[12..27].try_into().expect("15 bytes"),
        date_millis: i64::from_be_bytes(frame[19..27].try_into().expect("8 bytes")),
        signature: frame[ENVELOPE_SIGNATURE_RANGE]
            .try_into()
            .expect("32 bytes"),
        payload: frame[79..end].to_vec(),
    }
}
