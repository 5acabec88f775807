//! Verification of a presigned WebSocket upgrade request (query-string SigV4).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use hmac::Mac;

use crate::proto::clock::{millis_between, Clock};
use crate::proto::redact::is_secret_param;
use crate::proto::sigv4::{
    canonical_path, canonical_query, credential_scope, decode_hex, derive_signing_key, hmac_sha256,
    keyed_hmac, parse_amz_date, presign_canonical_request, request_string_to_sign, ALGORITHM,
};
use crate::proto::skew::{skew_message_time, SIGNATURE_WINDOW};

use super::chain::ChainVerifier;
use super::rejection::{
    clock_advice, human_duration, window_check, Diagnosis, Rejection, RejectionKind, Service,
};

/// Longest `X-Amz-Expires` accepted, in seconds (Transcribe's documented maximum).
pub const MAX_EXPIRES_SECS: u64 = 300;

/// The AWS text for an unknown access key id.
pub const UNRECOGNIZED_CLIENT_MESSAGE: &str =
    "The security token included in the request is invalid.";

/// The AWS text for a signature mismatch.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

const P_ALGORITHM: &str = "X-Amz-Algorithm";
const P_CREDENTIAL: &str = "X-Amz-Credential";
const P_DATE: &str = "X-Amz-Date";
const P_EXPIRES: &str = "X-Amz-Expires";
const P_SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const P_SIGNATURE: &str = "X-Amz-Signature";
const P_TOKEN: &str = "X-Amz-Security-Token";

/// The six parameters every presigned URL must carry, in the order they are reported.
const REQUIRED: [&str; 6] = [
    P_ALGORITHM,
    P_CREDENTIAL,
    P_DATE,
    P_EXPIRES,
    P_SIGNED_HEADERS,
    P_SIGNATURE,
];

/// Server-side verifier of presigned WebSocket upgrades, sans-IO.
///
/// It recomputes the signature from the received `Host`, the received path and every
/// received query parameter, with the SigV4 primitives of [`crate::proto::sigv4`] (not with
/// the crate's own presigner, so that a bug in the client side cannot hide itself), and judges
/// time with its own [`Clock`]: a 5-minute window around the clock, and the URL's expiry.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use aws_credential_types::Credentials;
/// use sigv4_ws::{Clock, ManualTime, Presigner};
/// use sigv4_ws::verify::{RejectionKind, Verifier};
///
/// let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "example");
/// let clock = Clock::new(ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_194_903)));
/// let url = url::Url::parse("wss://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=x").unwrap();
/// let signed = Presigner::new(creds.clone(), "us-east-1", "rekognition").presign(&url, &clock).unwrap();
/// let path_and_query = &signed.url()[url::Position::BeforePath..];
///
/// let verifier = Verifier::new(clock).with_credentials(creds);
/// let upgrade = verifier.verify_upgrade(path_and_query, "streaming-rekognition.us-east-1.amazonaws.com").unwrap();
/// assert_eq!(upgrade.service(), "rekognition");
///
/// let refused = verifier.verify_upgrade(path_and_query, "127.0.0.1:9000").unwrap_err();
/// assert_eq!(refused.kind(), RejectionKind::SignatureMismatch);
/// ```
#[derive(Clone)]
pub struct Verifier {
    clock: Clock,
    credentials: HashMap<String, Credentials>,
    window: Duration,
    max_expires_secs: u64,
}

impl Verifier {
    /// A verifier judging time with `clock`, accepting no keys yet: 5-minute window,
    /// `X-Amz-Expires` at most 300 s.
    pub fn new(clock: Clock) -> Verifier {
        Verifier {
            clock,
            credentials: HashMap::new(),
            window: SIGNATURE_WINDOW,
            max_expires_secs: MAX_EXPIRES_SECS,
        }
    }

    /// Accepts `credentials` (looked up by access key id; a later entry replaces an earlier
    /// one with the same id). When the credentials carry a session token, requests must carry
    /// exactly that `X-Amz-Security-Token`; when they carry none, any token is accepted
    /// (it is still part of the signature).
    pub fn with_credentials(mut self, credentials: Credentials) -> Verifier {
        self.add_credentials(credentials);
        self
    }

    /// Like [`Verifier::with_credentials`], in place.
    pub fn add_credentials(&mut self, credentials: Credentials) {
        self.credentials
            .insert(credentials.access_key_id().to_owned(), credentials);
    }

    /// The credentials registered for an access key id.
    pub fn credentials_for(&self, access_key_id: &str) -> Option<&Credentials> {
        self.credentials.get(access_key_id)
    }

    /// The clock time is judged by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The tolerance either side of the clock (5 minutes).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The longest `X-Amz-Expires` accepted (300 s).
    pub fn max_expires(&self) -> Duration {
        Duration::from_secs(self.max_expires_secs)
    }

    /// A [`ChainVerifier`] for the frames of a verified upgrade, with the upgrade's credentials
    /// and this verifier's clock. `None` if the key was removed meanwhile (it cannot be, as
    /// keys are only ever added; the `Option` keeps the lookup honest).
    pub fn chain_verifier(&self, upgrade: &VerifiedUpgrade) -> Option<ChainVerifier> {
        let credentials = self.credentials_for(upgrade.access_key_id())?.clone();
        Some(ChainVerifier::new(upgrade, credentials, self.clock.clone()))
    }

    /// Verifies an upgrade request: `path_and_query` raw as received (request target), `host`
    /// the `Host` header actually received.
    ///
    /// Checks, in order: required parameters present (and not repeated); algorithm; date
    /// format; credential scope; access key (and session token) known; signed headers
    /// `host`; `X-Amz-Expires` 1..=300; `X-Amz-Date` within ±5 minutes of the clock; URL not
    /// expired; the signature itself, compared in constant time.
    ///
    /// An expired URL (`X-Amz-Date + X-Amz-Expires` before now, while `X-Amz-Date` is still in
    /// the window) is refused with `Signature expired: <X-Amz-Date> is now earlier than
    /// <now - X-Amz-Expires> (<now> - <N> sec.)`, modelled on AWS's window text so that clients'
    /// skew parsers find the server time in it; AWS's real text for this case is unconfirmed
    /// (protocol.md 7.3).
    pub fn verify_upgrade(
        &self,
        path_and_query: &str,
        host: &str,
    ) -> Result<VerifiedUpgrade, Rejection> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let path_service = Service::from_path(path);
        let reject = |kind: RejectionKind, message: String, detail: String| {
            Rejection::new(
                kind,
                message,
                path_service,
                Diagnosis::new(kind, detail).received(host, path),
            )
        };

        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();

        // 1. Required parameters, each exactly once.
        let mut found: HashMap<&str, &str> = HashMap::new();
        for (k, v) in &pairs {
            let auth = REQUIRED
                .iter()
                .chain([&P_TOKEN])
                .find(|p| **p == k.as_str());
            if let Some(name) = auth {
                if found.insert(name, v.as_str()).is_some() {
                    return Err(reject(
                        RejectionKind::DuplicateParameter,
                        format!("The query parameter '{name}' appears more than once. Re-examine the query-string parameters."),
                        format!("`{name}` is present more than once in the query string; SigV4 allows each once"),
                    ));
                }
            }
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|p| !found.contains_key(p))
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|p| format!("'{p}'"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Rejection::new(
                RejectionKind::MissingParameter,
                format!("AWS query-string parameters must include {list}. Re-examine the query-string parameters."),
                path_service,
                Diagnosis::new(
                    RejectionKind::MissingParameter,
                    format!("missing: {}", missing.join(", ")),
                )
                .received(host, path)
                .advise("presign the URL (GET, signed header `host`, empty payload) and connect with the full signed URL, query string included"),
            ));
        }
        let get = |name: &str| found.get(name).copied().unwrap_or_default();

        // 1b. The request target must be origin-form (RFC 9112 3.2.1) without `.` or `..`
        // segments: SigV4 removes dot segments from the canonical path, so text around them
        // (found by fuzzing: `x/../<signed path>`, `/evil/../<signed path>`) would vanish from
        // what is verified, the service read from the raw path would be none, and `path()`
        // would name a path that was never signed. Refused before the
        // service check reads the path.
        if let Some(detail) = non_canonical_target(path) {
            return Err(reject(
                RejectionKind::SignatureMismatch,
                SIGNATURE_MISMATCH_MESSAGE.to_owned(),
                detail.to_owned(),
            ));
        }

        // 2. Algorithm.
        let algorithm = get(P_ALGORITHM);
        if algorithm != ALGORITHM {
            return Err(reject(
                RejectionKind::UnsupportedAlgorithm,
                format!("Unsupported AWS 'algorithm': '{algorithm}'. The only supported value is '{ALGORITHM}'."),
                format!("X-Amz-Algorithm is `{algorithm}`"),
            ));
        }

        // 3. Date format and credential scope.
        let amz_date = get(P_DATE);
        let Some(signed_at) = parse_amz_date(amz_date) else {
            return Err(reject(
                RejectionKind::MalformedDate,
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"".to_owned(),
                format!("X-Amz-Date is `{amz_date}`"),
            ));
        };
        let credential = get(P_CREDENTIAL);
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
            return Err(reject(
                RejectionKind::MalformedCredential,
                format!("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"),
                format!("X-Amz-Credential is `{credential}`"),
            ));
        };
        if [access_key_id, scope_date, region, service]
            .iter()
            .any(|p| p.is_empty())
        {
            return Err(reject(
                RejectionKind::MalformedCredential,
                format!("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"),
                format!("X-Amz-Credential `{credential}` has an empty element"),
            ));
        }
        if terminator != "aws4_request" {
            return Err(reject(
                RejectionKind::MalformedCredential,
                format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."),
                format!("X-Amz-Credential ends in `{terminator}`"),
            ));
        }
        if let Some(expected) = path_service {
            if service != expected.signing_name() {
                return Err(reject(
                    RejectionKind::MalformedCredential,
                    format!(
                        "Credential should be scoped to correct service: '{}'. ",
                        expected.signing_name()
                    ),
                    format!(
                        "the scope names service `{service}` but `{path}` belongs to `{}`",
                        expected.signing_name()
                    ),
                ));
            }
        }
        let amz_day = amz_date.get(..8).unwrap_or_default();
        if scope_date != amz_day {
            return Err(reject(
                RejectionKind::MalformedCredential,
                format!("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{amz_day}', from 'X-Amz-Date'."),
                "the scope date and X-Amz-Date must be the same UTC day, taken from the same instant".to_owned(),
            ));
        }
        let service_kind = path_service.or_else(|| Service::from_signing_name(service));
        let reject = |kind: RejectionKind, message: String, diagnosis: Diagnosis| {
            Rejection::new(kind, message, service_kind, diagnosis.received(host, path))
        };

        // 4. Access key (and session token).
        let Some(credentials) = self.credentials.get(access_key_id) else {
            return Err(reject(
                RejectionKind::UnrecognizedClient,
                UNRECOGNIZED_CLIENT_MESSAGE.to_owned(),
                Diagnosis::new(
                    RejectionKind::UnrecognizedClient,
                    format!("no credentials are registered for access key id `{access_key_id}`"),
                )
                .advise("sign with credentials this server accepts (for the emulator: its configured keys, by default AKIDEXAMPLE)"),
            ));
        };
        if let Some(expected_token) = credentials.session_token() {
            let received = found.get(P_TOKEN).copied().unwrap_or_default();
            if !constant_time_eq(received.as_bytes(), expected_token.as_bytes()) {
                return Err(reject(
                    RejectionKind::UnrecognizedClient,
                    UNRECOGNIZED_CLIENT_MESSAGE.to_owned(),
                    Diagnosis::new(
                        RejectionKind::UnrecognizedClient,
                        format!(
                            "access key id `{access_key_id}` needs its session token in X-Amz-Security-Token, and the one received {}",
                            if found.contains_key(P_TOKEN) { "is different" } else { "is missing" }
                        ),
                    )
                    .advise("sign with the whole set of temporary credentials: key id, secret and session token together"),
                ));
            }
        }

        // 5. Signed headers.
        let signed_headers = get(P_SIGNED_HEADERS);
        if signed_headers != "host" {
            return Err(reject(
                RejectionKind::UnsupportedSignedHeaders,
                format!("X-Amz-SignedHeaders must be 'host' for a presigned WebSocket request, got '{signed_headers}'."),
                Diagnosis::new(
                    RejectionKind::UnsupportedSignedHeaders,
                    format!("X-Amz-SignedHeaders is `{signed_headers}`; a WebSocket upgrade can only carry `host` reliably"),
                )
                .advise("sign only the host header, as every AWS SDK does for these WebSocket APIs"),
            ));
        }

        // 6. Expires.
        let expires_text = get(P_EXPIRES);
        let expires_secs =
            parse_decimal(expires_text).filter(|s| (1..=self.max_expires_secs).contains(s));
        let Some(expires_secs) = expires_secs else {
            return Err(reject(
                RejectionKind::InvalidExpires,
                format!(
                    "X-Amz-Expires must be an integer from 1 to {}, got '{expires_text}'.",
                    self.max_expires_secs
                ),
                Diagnosis::new(
                    RejectionKind::InvalidExpires,
                    format!("X-Amz-Expires is `{expires_text}`"),
                )
                .advise("presign with an expiry of 1 to 300 seconds (the SDKs use 60 or 299)"),
            ));
        };

        // 7. Window.
        let now = self.clock.now();
        let skew = millis_between(signed_at, now);
        if let Err((kind, message)) = window_check(signed_at, now, self.window) {
            return Err(reject(
                kind,
                message,
                Diagnosis::new(
                    kind,
                    format!(
                        "X-Amz-Date is {} and the server's clock reads {}",
                        skew_message_time(signed_at),
                        skew_message_time(now)
                    ),
                )
                .skew(skew)
                .advise(clock_advice(skew, "the URL")),
            ));
        }

        // 8. Expiry.
        let expires_at = signed_at + Duration::from_secs(expires_secs);
        if expires_at < now {
            let limit = now
                .checked_sub(Duration::from_secs(expires_secs))
                .unwrap_or(now);
            return Err(reject(
                RejectionKind::UrlExpired,
                format!(
                    "Signature expired: {} is now earlier than {} ({} - {expires_secs} sec.)",
                    skew_message_time(signed_at),
                    skew_message_time(limit),
                    skew_message_time(now)
                ),
                Diagnosis::new(
                    RejectionKind::UrlExpired,
                    format!(
                        "the URL was signed at {} with X-Amz-Expires={expires_secs}, so it expired at {}; the server's clock reads {} ({} later)",
                        skew_message_time(signed_at),
                        skew_message_time(expires_at),
                        skew_message_time(now),
                        human_duration(millis_between(now, expires_at))
                    ),
                )
                .skew(skew)
                .advise("presign immediately before connecting (never reuse or pre-sign URLs in advance), or use a longer X-Amz-Expires (at most 300 s)")
                .advise("if the URL was signed just now, your clock is behind the server's: correct the clock offset"),
            ));
        }

        // 9. Signature.
        let scope = credential_scope(scope_date, region, service);
        let canonical_path = canonical_path(path);
        let canonical_query = canonical_query(
            pairs
                .iter()
                .filter(|(k, _)| k != P_SIGNATURE)
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let key = derive_signing_key(credentials.secret_access_key(), scope_date, region, service);
        let sign = |signed_host: &str| -> (String, String) {
            let cr = presign_canonical_request(&canonical_path, &canonical_query, signed_host);
            let sts = request_string_to_sign(amz_date, &scope, &cr);
            (cr, sts)
        };
        let (canonical_request, string_to_sign) = sign(host);
        let received_signature = get(P_SIGNATURE);
        let received_bytes = decode_hex(received_signature).unwrap_or_default();
        let mut mac = keyed_hmac(&key);
        mac.update(string_to_sign.as_bytes());
        if mac.verify_slice(&received_bytes).is_err() {
            let mut diagnosis = Diagnosis::new(
                RejectionKind::SignatureMismatch,
                "the X-Amz-Signature received differs from the signature of the request as received \
                 (compare the canonical request and string-to-sign below with the client's)",
            )
            .expected(Some(mask_token(&canonical_request)), Some(string_to_sign.clone()));
            if let Some(signed_host) = other_host_that_matches(host, &received_bytes, |h| {
                hmac_sha256(&key, sign(h).1.as_bytes())
            }) {
                diagnosis = diagnosis.advise(format!(
                    "the Host you signed (`{signed_host}`) differs from the Host received (`{host}`): sign exactly the \
                     Host header the client sends (with the port when it is not the scheme's default, e.g. :8443 for Transcribe)"
                ));
            } else {
                diagnosis = diagnosis
                    .advise(format!(
                        "check that the Host you signed equals the Host received (`{host}`), including the port"
                    ))
                    .advise(format!(
                        "check that the path you signed equals the path received (`{path}`, canonical `{canonical_path}`)"
                    ))
                    .advise("check that every query parameter is signed as sent (all are, user-agent included), escaped the SigV4 way (RFC 3986, space as %20, only A-Z a-z 0-9 - _ . ~ bare) and sorted")
                    .advise(format!(
                        "check that the secret access key belongs to access key id `{access_key_id}`, and the scope (`{scope}`)"
                    ));
            }
            return Err(reject(
                RejectionKind::SignatureMismatch,
                SIGNATURE_MISMATCH_MESSAGE.to_owned(),
                diagnosis,
            ));
        }

        Ok(VerifiedUpgrade {
            access_key_id: access_key_id.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            service_kind,
            signature: received_signature.to_owned(),
            signed_at,
            expires: Duration::from_secs(expires_secs),
            params: pairs
                .iter()
                .filter(|(k, _)| !k.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("x-amz-")))
                .cloned()
                .collect(),
            path: path.to_owned(),
            host: host.to_owned(),
            session_token_present: found.contains_key(P_TOKEN),
        })
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&str> = self.credentials.keys().map(String::as_str).collect();
        keys.sort_unstable();
        f.debug_struct("Verifier")
            .field("clock", &self.clock)
            .field("access_key_ids", &keys)
            .field("window", &self.window)
            .field("max_expires_secs", &self.max_expires_secs)
            .finish()
    }
}

/// A decimal integer of ASCII digits only (no sign, no spaces).
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Equality without an early exit on the first differing byte (length is not hidden).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a request path is not the path that was signed, or `None` when it is rooted and free of
/// `.` and `..` segments (so it equals its canonical form up to escaping).
fn non_canonical_target(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some(
            "the request target does not start with `/`, so it is not the path that was \
             signed; send the presigned URL's path and query exactly as signed",
        );
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some(
            "the request path contains a `.` or `..` segment, which SigV4 removes before \
             signing, so it is not the path that was signed; send the presigned URL's path \
             exactly as signed, without dot segments",
        );
    }
    None
}

/// The canonical request with the value of `X-Amz-Security-Token` replaced by `***`.
fn mask_token(canonical_request: &str) -> String {
    let mut lines: Vec<String> = canonical_request.split('\n').map(str::to_owned).collect();
    if let Some(query) = lines.get_mut(2) {
        *query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
    }
    lines.join("\n")
}

/// On a mismatch: the usual wrong `Host` values (port dropped, or a default/Transcribe port
/// added) that would have produced the received signature, if any does.
fn other_host_that_matches(
    host: &str,
    received: &[u8],
    sign: impl Fn(&str) -> [u8; 32],
) -> Option<String> {
    let bare = strip_port(host);
    let mut candidates = vec![
        bare.to_owned(),
        format!("{bare}:443"),
        format!("{bare}:8443"),
        host.to_ascii_lowercase(),
    ];
    candidates.retain(|c| c != host);
    candidates.dedup();
    candidates
        .into_iter()
        .find(|candidate| constant_time_eq(&sign(candidate), received))
}

/// `host:port` to `host` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// A presigned upgrade that passed every check.
///
/// `Debug` never shows the seed signature; [`VerifiedUpgrade::seed_signature`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedUpgrade {
    access_key_id: String,
    region: String,
    service: String,
    service_kind: Option<Service>,
    signature: String,
    signed_at: SystemTime,
    expires: Duration,
    params: Vec<(String, String)>,
    path: String,
    host: String,
    session_token_present: bool,
}

impl VerifiedUpgrade {
    /// The access key id of the credential scope.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The region of the credential scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The signing name of the credential scope (`transcribe`, `rekognition`).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The service, from the path when it is a known one, else from the signing name.
    pub fn service_kind(&self) -> Option<Service> {
        self.service_kind
    }

    /// The received `X-Amz-Signature`, verbatim: the seed of the event chain. A bearer
    /// secret while the URL is valid: do not log it.
    pub fn seed_signature(&self) -> &str {
        &self.signature
    }

    /// `X-Amz-Date`.
    pub fn signed_at(&self) -> SystemTime {
        self.signed_at
    }

    /// `X-Amz-Expires`.
    pub fn expires(&self) -> Duration {
        self.expires
    }

    /// When the URL stops being valid: `X-Amz-Date + X-Amz-Expires`.
    pub fn expires_at(&self) -> SystemTime {
        self.signed_at + self.expires
    }

    /// The service's own query parameters (every pair whose name does not start with
    /// `X-Amz-`, case-insensitively), decoded, in received order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The first value of a service parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path as received (without the query). Always rooted and free of `.`/`..` segments
    /// (others are refused), so it names the path that was signed.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Host` header as received (and signed).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the URL carried an `X-Amz-Security-Token`.
    pub fn has_session_token(&self) -> bool {
        self.session_token_present
    }
}

impl fmt::Debug for VerifiedUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedUpgrade")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("signed_at", &self.signed_at)
            .field("expires", &self.expires)
            .field("params", &self.params)
            .field("path", &self.path)
            .field("host", &self.host)
            .field("session_token_present", &self.session_token_present)
            .finish_non_exhaustive()
    }
}
