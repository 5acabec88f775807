//! Why a presigned upgrade or a signed frame was refused: the AWS exception to send, the exact
//! AWS message, and a [`Diagnosis`] written for the person whose client was refused.
//!
//! Nothing here ever contains the secret access key, the session token, or a received
//! signature: messages and diagnoses only show what a user may safely paste into a bug report.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::proto::skew::skew_message_time;

/// Which streaming service a request was addressed to. It decides the exception names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// Amazon Transcribe Streaming (signing name `transcribe`).
    Transcribe,
    /// Amazon Rekognition Face Liveness streaming (signing name `rekognition`).
    Liveness,
}

/// Transcribe's WebSocket paths (standard, medical, call analytics).
pub const TRANSCRIBE_PATHS: [&str; 3] = [
    "/stream-transcription-websocket",
    "/medical-stream-transcription-websocket",
    "/call-analytics-stream-transcription-websocket",
];

/// Rekognition Face Liveness's WebSocket path.
pub const LIVENESS_PATH: &str = "/start-face-liveness-session-websocket";

impl Service {
    /// The service a WebSocket path belongs to, if it is one of the known paths.
    pub fn from_path(path: &str) -> Option<Service> {
        if TRANSCRIBE_PATHS.contains(&path) {
            Some(Service::Transcribe)
        } else if path == LIVENESS_PATH {
            Some(Service::Liveness)
        } else {
            None
        }
    }

    /// The service whose SigV4 signing name this is (`transcribe` or `rekognition`).
    pub fn from_signing_name(name: &str) -> Option<Service> {
        match name {
            "transcribe" => Some(Service::Transcribe),
            "rekognition" => Some(Service::Liveness),
            _ => None,
        }
    }

    /// The SigV4 signing name: `transcribe` or `rekognition`.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Transcribe => "transcribe",
            Service::Liveness => "rekognition",
        }
    }
}

/// Which check refused the request or frame.
///
/// Upgrade checks run in the order the variants are listed, so the first problem found is
/// the one reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionKind {
    /// A required `X-Amz-*` query parameter is missing.
    MissingParameter,
    /// A SigV4 query parameter appears more than once.
    DuplicateParameter,
    /// `X-Amz-Algorithm` is not `AWS4-HMAC-SHA256`.
    UnsupportedAlgorithm,
    /// `X-Amz-Date` is not `yyyymmddTHHMMSSZ`.
    MalformedDate,
    /// `X-Amz-Credential` is not `AKID/yyyymmdd/region/service/aws4_request`, names the wrong
    /// service, or its date differs from `X-Amz-Date`'s.
    MalformedCredential,
    /// The access key id is unknown, or the session token does not belong to it.
    UnrecognizedClient,
    /// `X-Amz-SignedHeaders` is not `host`.
    UnsupportedSignedHeaders,
    /// `X-Amz-Expires` is not an integer from 1 to 300.
    InvalidExpires,
    /// The signing time is more than 5 minutes behind the server's clock.
    SignatureExpired,
    /// The signing time is more than 5 minutes ahead of the server's clock.
    SignatureNotYetCurrent,
    /// `X-Amz-Date` + `X-Amz-Expires` is in the past.
    UrlExpired,
    /// The signature differs from the one recomputed from what was received.
    SignatureMismatch,
    /// A frame carries neither `:date` nor `:chunk-signature`: it is not signed at all.
    MissingSignature,
    /// A frame's envelope is not exactly `:date` (timestamp) and `:chunk-signature` (32 bytes).
    MalformedEnvelope,
    /// A frame arrived after the signed empty end frame.
    ChainEnded,
}

impl RejectionKind {
    /// The failed check, in plain words.
    pub fn check(self) -> &'static str {
        match self {
            RejectionKind::MissingParameter => "a required X-Amz-* query parameter is missing",
            RejectionKind::DuplicateParameter => "a signing query parameter appears more than once",
            RejectionKind::UnsupportedAlgorithm => "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
            RejectionKind::MalformedDate => "X-Amz-Date must be yyyymmddTHHMMSSZ",
            RejectionKind::MalformedCredential => {
                "X-Amz-Credential must be AKID/yyyymmdd/region/service/aws4_request with the date of X-Amz-Date"
            }
            RejectionKind::UnrecognizedClient => "the access key id (or its session token) is not known to this server",
            RejectionKind::UnsupportedSignedHeaders => "X-Amz-SignedHeaders must be exactly `host`",
            RejectionKind::InvalidExpires => "X-Amz-Expires must be an integer from 1 to 300",
            RejectionKind::SignatureExpired => {
                "the signing time is more than 5 minutes behind the server's clock"
            }
            RejectionKind::SignatureNotYetCurrent => {
                "the signing time is more than 5 minutes ahead of the server's clock"
            }
            RejectionKind::UrlExpired => "the presigned URL has expired (X-Amz-Date + X-Amz-Expires is past)",
            RejectionKind::SignatureMismatch => {
                "the signature does not match the one recomputed from what the server received"
            }
            RejectionKind::MissingSignature => "the frame is not signed (no :date / :chunk-signature envelope)",
            RejectionKind::MalformedEnvelope => {
                "the signed envelope must have exactly :date (timestamp) and :chunk-signature (32 bytes)"
            }
            RejectionKind::ChainEnded => "a frame arrived after the signed empty end frame",
        }
    }

    /// Whether the kind is about time (window or expiry).
    pub fn is_time(self) -> bool {
        matches!(
            self,
            RejectionKind::SignatureExpired
                | RejectionKind::SignatureNotYetCurrent
                | RejectionKind::UrlExpired
        )
    }
}

/// A refused upgrade or frame: what to send back, and what to tell the user.
///
/// `Display` is `<exception type>: <message>`; neither ever contains a secret or a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    kind: RejectionKind,
    message: String,
    service: Option<Service>,
    diagnosis: Box<Diagnosis>,
}

impl Rejection {
    pub(crate) fn new(
        kind: RejectionKind,
        message: String,
        service: Option<Service>,
        diagnosis: Diagnosis,
    ) -> Self {
        Rejection {
            kind,
            message,
            service,
            diagnosis: Box::new(diagnosis),
        }
    }

    /// Which check failed.
    pub fn kind(&self) -> RejectionKind {
        self.kind
    }

    /// The message AWS sends for it (the `"Message"` of the exception payload).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The service the request was addressed to, when known (from the path, else the scope).
    pub fn service(&self) -> Option<Service> {
        self.service
    }

    /// The same rejection, for `service` (changes [`Rejection::exception_type`]).
    pub fn with_service(mut self, service: Service) -> Rejection {
        self.service = Some(service);
        self
    }

    /// The explanation for the user.
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.diagnosis
    }

    /// The AWS exception name to send.
    ///
    /// * unknown access key or session token: `UnrecognizedClientException` (both services);
    /// * signature mismatch: `InvalidSignatureException` (both services);
    /// * time (window or URL expiry): Liveness `InvalidSignatureException`, Transcribe
    ///   `BadRequestException`;
    /// * unsigned or malformed frame envelope: Liveness `InvalidSignatureException`,
    ///   Transcribe `BadRequestException`;
    /// * frame after the end frame: Liveness `ValidationException`, Transcribe
    ///   `BadRequestException`;
    /// * malformed SigV4 query parameters: `IncompleteSignatureException` (AWS's generic name
    ///   for a signature that does not conform; the streaming services' exact choice is
    ///   unconfirmed).
    ///
    /// With no known service, Liveness's names are used.
    pub fn exception_type(&self) -> &'static str {
        let transcribe = self.service == Some(Service::Transcribe);
        match self.kind {
            RejectionKind::UnrecognizedClient => "UnrecognizedClientException",
            RejectionKind::SignatureMismatch => "InvalidSignatureException",
            RejectionKind::SignatureExpired
            | RejectionKind::SignatureNotYetCurrent
            | RejectionKind::UrlExpired
            | RejectionKind::MissingSignature
            | RejectionKind::MalformedEnvelope => {
                if transcribe {
                    "BadRequestException"
                } else {
                    "InvalidSignatureException"
                }
            }
            RejectionKind::ChainEnded => {
                if transcribe {
                    "BadRequestException"
                } else {
                    "ValidationException"
                }
            }
            RejectionKind::MissingParameter
            | RejectionKind::DuplicateParameter
            | RejectionKind::UnsupportedAlgorithm
            | RejectionKind::MalformedDate
            | RejectionKind::MalformedCredential
            | RejectionKind::UnsupportedSignedHeaders
            | RejectionKind::InvalidExpires => "IncompleteSignatureException",
        }
    }

    /// The HTTP status of [`Rejection::exception_type`]: 403 for authentication failures
    /// (`UnrecognizedClientException`, `InvalidSignatureException`), 400 for the rest.
    pub fn http_status(&self) -> u16 {
        exception_http_status(self.exception_type())
    }

    /// The payload of an exception frame: `{"Message":"..."}`.
    pub fn exception_payload(&self) -> String {
        exception_payload(&self.message)
    }

    /// The body of an HTTP error response: `{"__type":"...","message":"..."}`.
    pub fn http_error_body(&self) -> String {
        http_error_body(self.exception_type(), &self.message)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.exception_type(), self.message)
    }
}

impl std::error::Error for Rejection {}

/// The HTTP status AWS uses for an exception name: 403 for the authentication failures
/// (`UnrecognizedClientException`, `InvalidSignatureException`,
/// `MissingAuthenticationTokenException`, `AccessDeniedException`), 404 for
/// `SessionNotFoundException`, 429 for `LimitExceededException` / `ThrottlingException`, 500
/// for internal failures, 503 for `ServiceUnavailableException`, 400 otherwise.
pub fn exception_http_status(exception_type: &str) -> u16 {
    match exception_type {
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "MissingAuthenticationTokenException"
        | "AccessDeniedException" => 403,
        "SessionNotFoundException" => 404,
        "LimitExceededException" | "ThrottlingException" => 429,
        "InternalFailureException" | "InternalServerException" => 500,
        "ServiceUnavailableException" => 503,
        _ => 400,
    }
}

/// `{"Message":"<message>"}`, the payload of an AWS exception frame.
pub fn exception_payload(message: &str) -> String {
    format!("{{\"Message\":{}}}", json_string(message))
}

/// `{"__type":"<type>","message":"<message>"}`, the body of an AWS JSON error response.
pub fn http_error_body(exception_type: &str, message: &str) -> String {
    format!(
        "{{\"__type\":{},\"message\":{}}}",
        json_string(exception_type),
        json_string(message)
    )
}

/// A JSON string literal (quotes included).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What went wrong, for a person: the failed check, the clock skew when time is involved,
/// and for a signature mismatch what the server computed, so it can be compared with what
/// the client computed.
///
/// The expected canonical request has any `X-Amz-Security-Token` value replaced by `***`;
/// the prior-signature line of an event string-to-sign is replaced by `***` as well. No
/// secret and no received signature ever appears.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Diagnosis {
    check: String,
    detail: String,
    skew_millis: Option<i64>,
    expected_canonical_request: Option<String>,
    expected_string_to_sign: Option<String>,
    received_host: Option<String>,
    received_path: Option<String>,
    advice: Vec<String>,
}

impl Diagnosis {
    pub(crate) fn new(kind: RejectionKind, detail: impl Into<String>) -> Diagnosis {
        Diagnosis {
            check: kind.check().to_owned(),
            detail: detail.into(),
            ..Diagnosis::default()
        }
    }

    pub(crate) fn skew(mut self, millis: i64) -> Self {
        self.skew_millis = Some(millis);
        self
    }

    pub(crate) fn expected(
        mut self,
        canonical_request: Option<String>,
        string_to_sign: Option<String>,
    ) -> Self {
        self.expected_canonical_request = canonical_request;
        self.expected_string_to_sign = string_to_sign;
        self
    }

    pub(crate) fn received(mut self, host: &str, path: &str) -> Self {
        self.received_host = Some(host.to_owned());
        self.received_path = Some(path.to_owned());
        self
    }

    pub(crate) fn advise(mut self, advice: impl Into<String>) -> Self {
        self.advice.push(advice.into());
        self
    }

    /// The failed check, in plain words.
    pub fn check(&self) -> &str {
        &self.check
    }

    /// What exactly was wrong with this request or frame.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Signing time minus the server's time, in milliseconds, when time was judged
    /// (positive: the signer's clock is ahead).
    pub fn skew_millis(&self) -> Option<i64> {
        self.skew_millis
    }

    /// For a mismatch: the canonical request the server computed (session token masked).
    /// For a frame: `None` (events have no canonical request).
    pub fn expected_canonical_request(&self) -> Option<&str> {
        self.expected_canonical_request.as_deref()
    }

    /// For a mismatch: the string-to-sign the server computed (for a frame, with the prior
    /// signature line masked).
    pub fn expected_string_to_sign(&self) -> Option<&str> {
        self.expected_string_to_sign.as_deref()
    }

    /// The `Host` header the server received (upgrade rejections).
    pub fn received_host(&self) -> Option<&str> {
        self.received_host.as_deref()
    }

    /// The path the server received (upgrade rejections).
    pub fn received_path(&self) -> Option<&str> {
        self.received_path.as_deref()
    }

    /// What to do about it, most likely fix first.
    pub fn advice(&self) -> &[String] {
        &self.advice
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "check failed: {}", self.check)?;
        if !self.detail.is_empty() {
            writeln!(f, "{}", self.detail)?;
        }
        if let Some(skew) = self.skew_millis {
            let side = if skew >= 0 { "ahead of" } else { "behind" };
            writeln!(
                f,
                "clock: the signing time is {} {side} the server's clock ({skew:+} ms)",
                human_duration(skew)
            )?;
        }
        if let (Some(host), Some(path)) = (&self.received_host, &self.received_path) {
            writeln!(f, "received: Host `{host}`, path `{path}`")?;
        }
        if let Some(cr) = &self.expected_canonical_request {
            writeln!(f, "expected canonical request:")?;
            for line in cr.split('\n') {
                writeln!(f, "    {line}")?;
            }
        }
        if let Some(sts) = &self.expected_string_to_sign {
            writeln!(f, "expected string-to-sign:")?;
            for line in sts.split('\n') {
                writeln!(f, "    {line}")?;
            }
        }
        if !self.advice.is_empty() {
            writeln!(f, "what to do:")?;
            for advice in &self.advice {
                writeln!(f, "  - {advice}")?;
            }
        }
        Ok(())
    }
}

/// `1 h 00 m`, `4 m 12 s`, `3.2 s`, `850 ms` (sign dropped).
pub(crate) fn human_duration(millis: i64) -> String {
    let ms = millis.unsigned_abs();
    // Whole seconds, rounded: a signing time 400 ms short of an hour reads "1 h 00 m".
    let secs = ms.saturating_add(500) / 1000;
    if ms < 1000 {
        format!("{ms} ms")
    } else if secs >= 3600 {
        format!("{} h {:02} m", secs / 3600, secs / 60 % 60)
    } else if secs >= 60 {
        format!("{} m {:02} s", secs / 60, secs % 60)
    } else {
        format!("{}.{} s", ms / 1000, ms % 1000 / 100)
    }
}

/// The AWS time-window check: `Ok` inside `now ± window`, else the kind and AWS's exact text.
///
/// Texts (times `yyyymmddTHHMMSSZ`, the parenthesised value the server's now):
/// `Signature expired: <signed> is now earlier than <now-5m> (<now> - 5 min.)` and
/// `Signature not yet current: <signed> is still later than <now+5m> (<now> + 5 min.)`.
pub(crate) fn window_check(
    signed: SystemTime,
    now: SystemTime,
    window: Duration,
) -> Result<(), (RejectionKind, String)> {
    let minutes = window.as_secs() / 60;
    let earliest = now.checked_sub(window).unwrap_or(now);
    let latest = now.checked_add(window).unwrap_or(now);
    if signed < earliest {
        Err((
            RejectionKind::SignatureExpired,
            format!(
                "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
                skew_message_time(signed),
                skew_message_time(earliest),
                skew_message_time(now)
            ),
        ))
    } else if signed > latest {
        Err((
            RejectionKind::SignatureNotYetCurrent,
            format!(
                "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
                skew_message_time(signed),
                skew_message_time(latest),
                skew_message_time(now)
            ),
        ))
    } else {
        Ok(())
    }
}

/// Advice for a time-window rejection, from the skew (signed minus server now, ms).
pub(crate) fn clock_advice(skew_millis: i64, what: &str) -> String {
    let amount = human_duration(skew_millis);
    if skew_millis >= 0 {
        format!(
            "your clock is {amount} ahead of the server: shift the clock offset by {} ms \
             (Clock::set_offset_millis) or let the client learn it from the Date header of the \
             upgrade response or from the server time in parentheses in this message, then sign {what} again",
            -skew_millis
        )
    } else {
        format!(
            "your clock is {amount} behind the server, or {what} was signed long before it was sent: \
             sign at send time, and if the clock is off shift the clock offset by {} ms \
             (Clock::set_offset_millis) or let the client learn it from the Date header of the \
             upgrade response or from the server time in parentheses in this message",
            skew_millis.saturating_neg()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn window_texts_are_aws_texts() {
        let now = UNIX_EPOCH + Duration::from_secs(1_724_194_903);
        let past = now - Duration::from_secs(3600);
        let (kind, text) = window_check(past, now, Duration::from_secs(300)).unwrap_err();
        assert_eq!(kind, RejectionKind::SignatureExpired);
        assert_eq!(
            text,
            "Signature expired: 20240820T220143Z is now earlier than 20240820T225643Z (20240820T230143Z - 5 min.)"
        );
        let (kind, text) = window_check(
            now + Duration::from_secs(3600),
            now,
            Duration::from_secs(300),
        )
        .unwrap_err();
        assert_eq!(kind, RejectionKind::SignatureNotYetCurrent);
        assert_eq!(
            text,
            "Signature not yet current: 20240821T000143Z is still later than 20240820T230643Z (20240820T230143Z + 5 min.)"
        );
        assert!(window_check(
            now + Duration::from_secs(300),
            now,
            Duration::from_secs(300)
        )
        .is_ok());
        assert!(window_check(
            now - Duration::from_secs(300),
            now,
            Duration::from_secs(300)
        )
        .is_ok());
    }

    #[test]
    fn json_is_escaped() {
        assert_eq!(
            exception_payload("a \"b\"\n\\"),
            r#"{"Message":"a \"b\"\n\\"}"#
        );
        assert_eq!(
            http_error_body("X", "\u{1}"),
            r#"{"__type":"X","message":"\u0001"}"#
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(3_600_000), "1 h 00 m");
        assert_eq!(human_duration(-252_000), "4 m 12 s");
        assert_eq!(human_duration(3_250), "3.2 s");
        assert_eq!(human_duration(850), "850 ms");
    }

    #[test]
    fn statuses() {
        assert_eq!(exception_http_status("InvalidSignatureException"), 403);
        assert_eq!(exception_http_status("BadRequestException"), 400);
        assert_eq!(exception_http_status("ServiceUnavailableException"), 503);
    }
}
