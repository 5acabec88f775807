//! SigV4 building blocks shared by the presigner, the event signer and the verifier:
//! date formats, key derivation, hashing, and the RFC 3986 escaping SigV4 prescribes.
//!
//! Both the client side and the server side use these, so a bug here would pass both:
//! that is why each function is pinned by the public vectors in `fixtures/`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// The SigV4 algorithm name of a request or presigned URL.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The algorithm line of an event (chunk) string-to-sign.
pub const EVENT_ALGORITHM: &str = "AWS4-HMAC-SHA256-PAYLOAD";
/// Hex SHA-256 of the empty string: the payload hash of a presigned WebSocket upgrade.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but `A-Z a-z 0-9 - _ . ~` is escaped, as SigV4 requires.
pub const SIGV4_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Escapes a query key or value (or a path segment) the SigV4 way.
pub fn escape(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, SIGV4_ESCAPE).to_string()
}

/// A UTC civil date and time of day, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UtcTime {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

/// Whole seconds since the epoch, or `None` before 1970 (SigV4 dates are never that old).
pub(crate) fn epoch_seconds(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Milliseconds since the epoch, or `None` before 1970 or past `i64`.
pub(crate) fn epoch_millis(time: SystemTime) -> Option<i64> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian), after H. Hinnant's well-known method.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A civil date to days since 1970-01-01; the inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl UtcTime {
    pub(crate) fn from_epoch_seconds(secs: u64) -> UtcTime {
        let secs = secs as i64;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400) as u32;
        UtcTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    pub(crate) fn to_system_time(self) -> Option<SystemTime> {
        let valid = (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61;
        if !valid || !(1970..=9999).contains(&self.year) {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        // Reject dates like 20240231 that days_from_civil would roll over.
        if civil_from_days(days) != (self.year, self.month, self.day) {
            return None;
        }
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
    }

    /// `yyyymmddTHHMMSSZ` into a fixed buffer (no allocation).
    pub(crate) fn amz_date_bytes(self) -> [u8; 16] {
        let mut out = *b"00000000T000000Z";
        write_digits(&mut out[0..4], self.year.clamp(0, 9999) as u32);
        write_digits(&mut out[4..6], self.month);
        write_digits(&mut out[6..8], self.day);
        write_digits(&mut out[9..11], self.hour);
        write_digits(&mut out[11..13], self.minute);
        write_digits(&mut out[13..15], self.second);
        out
    }
}

fn write_digits(dst: &mut [u8], mut value: u32) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Formats a time as SigV4's `yyyymmddTHHMMSSZ` (sub-seconds dropped). `None` before 1970.
pub fn format_amz_date(time: SystemTime) -> Option<String> {
    let bytes = UtcTime::from_epoch_seconds(epoch_seconds(time)?).amz_date_bytes();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses SigV4's `yyyymmddTHHMMSSZ`. Returns `None` for anything else.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    UtcTime {
        year: i64::from(num(0..4)?),
        month: num(4..6)?,
        day: num(6..8)?,
        hour: num(9..11)?,
        minute: num(11..13)?,
        second: num(13..15)?,
    }
    .to_system_time()
}

/// Derives the SigV4 signing key for one UTC day (`yyyymmdd`), region and service.
pub fn derive_signing_key(
    secret_access_key: &str,
    date: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    let mut secret = Vec::with_capacity(4 + secret_access_key.len());
    secret.extend_from_slice(b"AWS4");
    secret.extend_from_slice(secret_access_key.as_bytes());
    let k_date = hmac_sha256(&secret, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = keyed_hmac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub(crate) fn keyed_hmac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; the error case does not exist for HMAC-SHA256.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of bytes.
pub fn hex_lower(bytes: &[u8]) -> String {
    // A table rather than `write!`: this runs per frame and `fmt` costs several times more.
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Lower-case hex of a 32-byte digest into a fixed buffer (no allocation).
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
    out
}

/// Decodes hex (either case). `None` if the text is not hex.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Builds the canonical query string from decoded `(key, value)` pairs: each escaped,
/// sorted by escaped key and then escaped value (byte order), joined with `&`.
pub fn canonical_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut escaped: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| (escape(k), escape(v)))
        .collect();
    escaped.sort();
    let mut out = String::new();
    for (i, (k, v)) in escaped.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The canonical path of a URL path as it appears on the wire (already percent-encoded
/// once): normalised (`.` and `..` segments removed) and each segment escaped again, as
/// SigV4 does for every service but S3.
pub fn canonical_path(wire_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    // An unrooted path keeps its first piece: text is never silently dropped.
    for segment in wire_path.strip_prefix('/').unwrap_or(wire_path).split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::from("/");
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        out.push_str(&escape(segment));
        if i < last {
            out.push('/');
        }
    }
    out
}

/// The canonical request of a presigned WebSocket upgrade: GET, only `host` signed, empty payload.
pub fn presign_canonical_request(
    canonical_path: &str,
    canonical_query: &str,
    host: &str,
) -> String {
    format!("GET\n{canonical_path}\n{canonical_query}\nhost:{host}\n\nhost\n{EMPTY_SHA256_HEX}")
}

/// Every intermediate of a query-string (presigned) SigV4 signature, for tests and diagnoses.
///
/// The canonical request and the query contain the session token when there is one: treat
/// both as secrets (never log them unredacted).
#[derive(Clone, PartialEq, Eq)]
pub struct QuerySignature {
    /// The canonical query string, without `X-Amz-Signature`.
    pub canonical_query: String,
    /// The canonical request.
    pub canonical_request: String,
    /// The string-to-sign.
    pub string_to_sign: String,
    /// Hex signature.
    pub signature: String,
}

impl std::fmt::Debug for QuerySignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySignature").finish_non_exhaustive()
    }
}

/// Inputs of a generic query-string SigV4 signature of a GET whose only signed header is `host`.
#[derive(Clone, Copy)]
pub struct QuerySigningInput<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a str,
    /// Session token, signed inside the query when present.
    pub session_token: Option<&'a str>,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Signing name of the credential scope.
    pub service: &'a str,
    /// The `Host` header value.
    pub host: &'a str,
    /// The path as sent on the wire (percent-encoded once).
    pub wire_path: &'a str,
    /// The request's own query parameters, decoded.
    pub params: &'a [(String, String)],
    /// `X-Amz-Expires`, in seconds (not capped here; [`crate::Presigner`] caps it at 300).
    pub expires_secs: u64,
}

impl std::fmt::Debug for QuerySigningInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySigningInput")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Signs a GET in query-string mode at `time` (sub-seconds dropped): the generic SigV4 rules,
/// shared by the presigner and the verifier. `None` if `time` is before 1970.
pub fn sign_query(input: &QuerySigningInput<'_>, time: SystemTime) -> Option<QuerySignature> {
    let secs = epoch_seconds(time)?;
    let amz_bytes = UtcTime::from_epoch_seconds(secs).amz_date_bytes();
    let amz_date = std::str::from_utf8(&amz_bytes).ok()?;
    let date = &amz_date[..8];
    let scope = credential_scope(date, input.region, input.service);
    let credential = format!("{}/{scope}", input.access_key_id);
    let expires_text = input.expires_secs.to_string();
    let mut all: Vec<(&str, &str)> = input
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.push(("X-Amz-Algorithm", ALGORITHM));
    all.push(("X-Amz-Credential", &credential));
    all.push(("X-Amz-Date", amz_date));
    all.push(("X-Amz-Expires", &expires_text));
    all.push(("X-Amz-SignedHeaders", "host"));
    if let Some(token) = input.session_token {
        all.push(("X-Amz-Security-Token", token));
    }
    let canonical_query = canonical_query(all);
    let canonical_request = presign_canonical_request(
        &canonical_path(input.wire_path),
        &canonical_query,
        input.host,
    );
    let string_to_sign = request_string_to_sign(amz_date, &scope, &canonical_request);
    let key = derive_signing_key(input.secret_access_key, date, input.region, input.service);
    let signature = hex_lower(&hmac_sha256(&key, string_to_sign.as_bytes()));
    Some(QuerySignature {
        canonical_query,
        canonical_request,
        string_to_sign,
        signature,
    })
}

/// The credential scope `yyyymmdd/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string-to-sign of a request: algorithm, date, scope, hash of the canonical request.
pub fn request_string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Encodes the `:date` header alone (name length, name, type 8, big-endian epoch milliseconds):
/// the bytes whose hash is the fifth line of an event string-to-sign.
pub fn encode_date_header(epoch_millis: i64) -> [u8; 15] {
    let mut out = [0u8; 15];
    out[0] = 5;
    out[1..6].copy_from_slice(b":date");
    out[6] = 8;
    out[7..15].copy_from_slice(&epoch_millis.to_be_bytes());
    out
}

/// Signs one event the way every SDK does: HMAC of the six-line payload string-to-sign.
///
/// `date_header` is the encoded `:date` header (normally [`encode_date_header`]), `payload` the
/// envelope payload (the encoded inner message, or nothing for the end frame).
pub fn event_string_to_sign(
    time: SystemTime,
    region: &str,
    service: &str,
    prior_signature_hex: &str,
    date_header: &[u8],
    payload: &[u8],
) -> Option<String> {
    let amz_date = UtcTime::from_epoch_seconds(epoch_seconds(time)?).amz_date_bytes();
    // 260 bytes of fixed text, plus the region and service (and a longer prior, rarely).
    let mut out = Vec::with_capacity(288 + region.len() + service.len());
    let mut append = |piece: &[u8]| out.extend_from_slice(piece);
    feed_event_prefix(&amz_date, region, service, &mut append);
    feed_event_tail(
        prior_signature_hex.as_bytes(),
        &Sha256::digest(date_header).into(),
        &Sha256::digest(payload).into(),
        &mut append,
    );
    // Every piece is ASCII or a whole `&str`, so the lossy branch is never taken.
    Some(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// Lines 1-3 of an event string-to-sign (algorithm, `amz_date`, credential scope), each with
/// its trailing `\n`, handed to `sink` piece by piece.
///
/// With [`feed_event_tail`] this is [`event_string_to_sign`] without building the string:
/// a verifier or signer can feed the pieces straight into an HMAC (no allocation per frame),
/// and cache the HMAC state after these three lines, which change at most once a second.
/// `amz_date` is `yyyymmddTHHMMSSZ` (as from [`format_amz_date`]).
pub fn feed_event_prefix(
    amz_date: &[u8; 16],
    region: &str,
    service: &str,
    sink: &mut impl FnMut(&[u8]),
) {
    sink(EVENT_ALGORITHM.as_bytes());
    sink(b"\n");
    sink(amz_date);
    sink(b"\n");
    sink(&amz_date[..8]);
    sink(b"/");
    sink(region.as_bytes());
    sink(b"/");
    sink(service.as_bytes());
    sink(b"/aws4_request\n");
}

/// Lines 4-6 of an event string-to-sign: the prior signature (hex, as received or as
/// chained), then the lower-case hex SHA-256 of the encoded `:date` header and of the payload,
/// given here as digests. See [`feed_event_prefix`].
pub fn feed_event_tail(
    prior_signature_hex: &[u8],
    date_header_sha256: &[u8; 32],
    payload_sha256: &[u8; 32],
    sink: &mut impl FnMut(&[u8]),
) {
    let mut tail = [b'\n'; 1 + 64 + 1 + 64];
    tail[1..65].copy_from_slice(&hex32(date_header_sha256));
    tail[66..].copy_from_slice(&hex32(payload_sha256));
    sink(prior_signature_hex);
    sink(&tail);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trips() {
        let t = UNIX_EPOCH + Duration::from_millis(1_724_194_903_250);
        assert_eq!(format_amz_date(t).as_deref(), Some("20240820T230143Z"));
        assert_eq!(
            parse_amz_date("20240820T230143Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_724_194_903))
        );
        assert_eq!(
            format_amz_date(UNIX_EPOCH + Duration::from_secs(123_456_789)).as_deref(),
            Some("19731129T213309Z")
        );
    }

    #[test]
    fn bad_amz_dates_are_refused() {
        for bad in [
            "",
            "20240820T230143",
            "2024082XT230143Z",
            "20240231T000000Z",
            "20241320T000000Z",
            "20240820T250000Z",
            "20240820 230143Z",
            "２０240820T230143Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_dates_agree_over_centuries() {
        for days in (-1000..200_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn escaping_follows_sigv4() {
        assert_eq!(escape("a b/c=d~e_f.g-h"), "a%20b%2Fc%3Dd~e_f.g-h");
        assert_eq!(escape("ሴ"), "%E1%88%B4");
    }

    #[test]
    fn canonical_query_sorts_after_escaping_by_key_then_value() {
        assert_eq!(
            canonical_query([("b", "2"), ("a", "z"), ("a", "y"), ("A", "1")]),
            "A=1&a=y&a=z&b=2"
        );
    }

    #[test]
    fn canonical_path_normalises_and_double_escapes() {
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(
            canonical_path("/stream-transcription-websocket"),
            "/stream-transcription-websocket"
        );
        assert_eq!(canonical_path("/a/./b/../c%20d"), "/a/c%2520d");
    }

    #[test]
    fn hex_round_trips() {
        let digest: [u8; 32] = Sha256::digest(b"x").into();
        let hex = hex32(&digest);
        assert_eq!(
            std::str::from_utf8(&hex).ok(),
            Some(hex_lower(&digest).as_str())
        );
        assert_eq!(
            decode_hex(&hex_lower(&digest)).as_deref(),
            Some(&digest[..])
        );
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
        let every: Vec<u8> = (0..=255).collect();
        let formatted: String = every.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_lower(&every), formatted);
    }

    #[test]
    fn the_fed_pieces_are_the_event_string_to_sign() {
        let millis = 1_724_198_399_950;
        let time = UNIX_EPOCH + Duration::from_millis(millis as u64);
        let date_header = encode_date_header(millis);
        let prior = "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94";
        let text = event_string_to_sign(time, "us-west-2", "transcribe", prior, &date_header, b"x")
            .unwrap();
        let mut fed = Vec::new();
        let mut sink = |piece: &[u8]| fed.extend_from_slice(piece);
        let amz_date = UtcTime::from_epoch_seconds(millis as u64 / 1000).amz_date_bytes();
        feed_event_prefix(&amz_date, "us-west-2", "transcribe", &mut sink);
        feed_event_tail(
            prior.as_bytes(),
            &Sha256::digest(date_header).into(),
            &Sha256::digest(b"x").into(),
            &mut sink,
        );
        assert_eq!(std::str::from_utf8(&fed).unwrap(), text);
        assert_eq!(
            text,
            format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n20240820T235959Z\n20240820/us-west-2/transcribe/aws4_request\n{prior}\n{}\n{}",
                sha256_hex(&date_header),
                sha256_hex(b"x")
            )
        );
    }
}
