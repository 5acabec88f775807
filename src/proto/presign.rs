//! SigV4 query-string presigning of a WebSocket URL, as the AWS clients do it.
//!
//! GET, only `host` signed (with its port when it is not the scheme's default), payload hash
//! of the empty string, the session token inside the signed query, `X-Amz-Expires` defaulting
//! to 60 seconds and never above 300. Time is read from the [`Clock`] at the moment of
//! presigning, so a URL is never older than the connection attempt that uses it.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use url::Url;

use super::clock::Clock;
use super::redact::RedactedUrl;
use super::sigv4::{sign_query, QuerySigningInput};

/// Default lifetime of a presigned URL: 60 seconds, as the JavaScript SDK uses.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(60);
/// Longest lifetime the streaming services accept: 300 seconds.
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(300);

/// Query parameters the presigner owns; a URL that already carries one is refused.
const SIGNING_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

/// Why a URL could not be presigned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresignError {
    /// The scheme is not `wss`, `ws`, `https` or `http`.
    #[error("cannot presign a `{scheme}` URL: use wss:// (or https://, which becomes wss://)")]
    UnsupportedScheme {
        /// The scheme given.
        scheme: String,
    },
    /// The URL has no host to sign.
    #[error("the URL has no host; give the service endpoint, e.g. wss://transcribestreaming.us-east-1.amazonaws.com:8443/...")]
    MissingHost,
    /// The URL already carries SigV4 parameters.
    #[error("the URL already carries the signing parameter `{param}`; pass the unsigned URL")]
    AlreadySigned {
        /// The parameter found.
        param: String,
    },
    /// `X-Amz-Expires` outside 1..=300 seconds.
    #[error("X-Amz-Expires of {seconds} s is not allowed: the streaming services accept 1 to 300 seconds")]
    InvalidExpiry {
        /// The lifetime asked for.
        seconds: u64,
    },
    /// The signing time is before 1970 (a clock or offset far off).
    #[error("the signing time is before 1970; check the host clock and the clock offset")]
    TimeOutOfRange,
    /// The region or service name is empty or has characters that cannot be in a credential scope.
    #[error(
        "invalid {what} `{value}` for a credential scope: use e.g. `us-east-1` / `transcribe`"
    )]
    InvalidScope {
        /// "region" or "service".
        what: &'static str,
        /// The value given.
        value: String,
    },
}

/// Presigns WebSocket URLs for one set of credentials, region and signing name.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use aws_credential_types::Credentials;
/// use sigv4_ws::{Clock, ManualTime, Presigner};
///
/// let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "example");
/// let clock = Clock::new(ManualTime::new(UNIX_EPOCH + Duration::from_secs(1_724_194_903)));
/// let url = url::Url::parse("https://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000").unwrap();
/// let signed = Presigner::new(creds, "us-west-2", "transcribe").presign(&url, &clock).unwrap();
/// assert_eq!(signed.url().scheme(), "wss");
/// assert_eq!(signed.signature().len(), 64);
/// // Debug and Display never show the signature.
/// assert!(!format!("{signed:?} {signed}").contains(signed.signature()));
/// ```
#[derive(Clone)]
pub struct Presigner {
    credentials: Credentials,
    region: String,
    service: String,
    expires_in: Duration,
}

impl Presigner {
    /// A presigner for `region` and the signing name `service` (`transcribe` or `rekognition`).
    pub fn new(
        credentials: Credentials,
        region: impl Into<String>,
        service: impl Into<String>,
    ) -> Presigner {
        Presigner {
            credentials,
            region: region.into(),
            service: service.into(),
            expires_in: DEFAULT_EXPIRES_IN,
        }
    }

    /// Sets `X-Amz-Expires` (default 60 s). Values above 300 s are refused by [`Presigner::presign`].
    pub fn expires_in(mut self, d: Duration) -> Presigner {
        self.expires_in = d;
        self
    }

    /// The region URLs are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The signing name URLs are signed for.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The credentials URLs are signed with.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Presigns `url` at the clock's current (corrected) time.
    pub fn presign(&self, url: &Url, clock: &Clock) -> Result<PresignedUrl, PresignError> {
        self.presign_at(url, clock.now())
    }

    /// Presigns `url` as of `time` (sans-IO form; tests and vectors use it).
    pub fn presign_at(&self, url: &Url, time: SystemTime) -> Result<PresignedUrl, PresignError> {
        let expires = self.expires_in.as_secs();
        if expires == 0 || self.expires_in > MAX_EXPIRES_IN || self.expires_in.subsec_nanos() != 0 {
            return Err(PresignError::InvalidExpiry { seconds: expires });
        }
        check_scope_part("region", &self.region)?;
        check_scope_part("service", &self.service)?;
        let mut target = websocket_url(url)?;
        let host = host_header(&target)?;
        let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
        if let Some((param, _)) = pairs
            .iter()
            .find(|(k, _)| SIGNING_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(k)))
        {
            return Err(PresignError::AlreadySigned {
                param: param.clone(),
            });
        }

        let signed = sign_query(
            &QuerySigningInput {
                access_key_id: self.credentials.access_key_id(),
                secret_access_key: self.credentials.secret_access_key(),
                session_token: self.credentials.session_token(),
                region: &self.region,
                service: &self.service,
                host: &host,
                wire_path: target.path(),
                params: &pairs,
                expires_secs: expires,
            },
            time,
        )
        .ok_or(PresignError::TimeOutOfRange)?;
        let signature = signed.signature;
        let query = signed.canonical_query;

        target.set_query(Some(&format!("{query}&X-Amz-Signature={signature}")));
        tracing::trace!(url = %RedactedUrl(&target), "presigned");
        Ok(PresignedUrl {
            url: target,
            signature,
            signed_at: time,
            expires_in: self.expires_in,
        })
    }
}

impl fmt::Debug for Presigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presigner")
            .field("access_key_id", &self.credentials.access_key_id())
            .field("region", &self.region)
            .field("service", &self.service)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

fn check_scope_part(what: &'static str, value: &str) -> Result<(), PresignError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(PresignError::InvalidScope {
            what,
            value: value.to_owned(),
        })
    }
}

/// `https`/`http` become `wss`/`ws`; the fragment is dropped (it is never sent).
fn websocket_url(url: &Url) -> Result<Url, PresignError> {
    let scheme = match url.scheme() {
        "wss" | "https" => "wss",
        "ws" | "http" => "ws",
        other => {
            return Err(PresignError::UnsupportedScheme {
                scheme: other.to_owned(),
            })
        }
    };
    let mut text = String::with_capacity(url.as_str().len());
    text.push_str(scheme);
    text.push_str(&url.as_str()[url.scheme().len()..]);
    let mut converted = Url::parse(&text).map_err(|_| PresignError::MissingHost)?;
    converted.set_fragment(None);
    Ok(converted)
}

/// The `Host` header a WebSocket client sends for `url`: host, plus the port unless default.
pub fn host_header(url: &Url) -> Result<String, PresignError> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(PresignError::MissingHost)?;
    // `Url::port` is None when the port is the scheme's default (443 for wss, 80 for ws).
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// A presigned WebSocket URL and the seed signature of its event chain.
///
/// `Debug` and `Display` mask the signature and session token; use [`PresignedUrl::url`]
/// to connect and [`PresignedUrl::signature`] to seed an [`crate::EventSigner`].
#[derive(Clone, PartialEq, Eq)]
pub struct PresignedUrl {
    url: Url,
    signature: String,
    signed_at: SystemTime,
    expires_in: Duration,
}

impl PresignedUrl {
    /// The full URL to connect to. It is a bearer token: do not log it (log `self` instead).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The hex `X-Amz-Signature`: the seed of the event signature chain.
    pub fn signature(&self) -> &str {
        &self.signature
    }

    /// The (corrected) time the URL was signed at.
    pub fn signed_at(&self) -> SystemTime {
        self.signed_at
    }

    /// The URL's `X-Amz-Expires`.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// The `Host` header value that was signed.
    pub fn host_header(&self) -> String {
        host_header(&self.url).unwrap_or_default()
    }

    /// The URL and the seed signature.
    pub fn into_parts(self) -> (Url, String) {
        (self.url, self.signature)
    }
}

impl fmt::Display for PresignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&RedactedUrl(&self.url), f)
    }
}

impl fmt::Debug for PresignedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresignedUrl")
            .field("url", &RedactedUrl(&self.url))
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "ANOTREAL",
            "notrealrnrELgWzOk3IfjzDKtFBhDby",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    #[test]
    fn protocol_md_worked_example() {
        let url = Url::parse("https://transcribestreaming.us-west-2.amazonaws.com:8443/stream-transcription-websocket?language-code=en-US&media-encoding=pcm&sample-rate=16000").unwrap();
        let at = UNIX_EPOCH + Duration::from_millis(1_724_194_903_250);
        let signed = Presigner::new(
            creds(Some("notarealsessiontoken")),
            "us-west-2",
            "transcribe",
        )
        .presign_at(&url, at)
        .unwrap();
        assert_eq!(
            signed.signature(),
            "3bda071a1cf6a5d4c3a3a6a572bc5d6b685c567428447c32ecbd5a08f6619b94"
        );
        let q: Vec<(String, String)> = signed.url().query_pairs().into_owned().collect();
        assert!(q.contains(&("X-Amz-Date".into(), "20240820T230143Z".into())));
        assert!(q.contains(&(
            "X-Amz-Credential".into(),
            "ANOTREAL/20240820/us-west-2/transcribe/aws4_request".into()
        )));
        assert!(q.contains(&("X-Amz-Security-Token".into(), "notarealsessiontoken".into())));
        assert_eq!(signed.url().scheme(), "wss");
        assert_eq!(
            signed.host_header(),
            "transcribestreaming.us-west-2.amazonaws.com:8443"
        );
        let shown = format!("{signed} {signed:?}");
        assert!(!shown.contains("notarealsessiontoken"));
        assert!(!shown.contains(signed.signature()));
    }

    #[test]
    fn default_port_is_not_signed() {
        let at = UNIX_EPOCH + Duration::from_secs(1_724_194_903);
        let p = Presigner::new(creds(None), "us-east-1", "rekognition");
        let a = p
            .presign_at(&Url::parse("wss://h.example/p").unwrap(), at)
            .unwrap();
        let b = p
            .presign_at(&Url::parse("https://h.example:443/p").unwrap(), at)
            .unwrap();
        assert_eq!(a.signature(), b.signature());
        assert_eq!(a.host_header(), "h.example");
        let c = p
            .presign_at(&Url::parse("wss://h.example:8443/p").unwrap(), at)
            .unwrap();
        assert_ne!(a.signature(), c.signature());
    }

    #[test]
    fn bad_inputs_are_refused_by_name() {
        let at = UNIX_EPOCH + Duration::from_secs(1_724_194_903);
        let p = Presigner::new(creds(None), "us-east-1", "transcribe");
        assert!(matches!(
            p.clone()
                .expires_in(Duration::from_secs(301))
                .presign_at(&Url::parse("wss://h/").unwrap(), at),
            Err(PresignError::InvalidExpiry { seconds: 301 })
        ));
        assert!(matches!(
            p.presign_at(&Url::parse("ftp://h/").unwrap(), at),
            Err(PresignError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            p.presign_at(&Url::parse("wss://h/?X-Amz-Signature=x").unwrap(), at),
            Err(PresignError::AlreadySigned { .. })
        ));
        assert!(matches!(
            Presigner::new(creds(None), "us east", "transcribe")
                .presign_at(&Url::parse("wss://h/").unwrap(), at),
            Err(PresignError::InvalidScope { what: "region", .. })
        ));
        assert_eq!(
            p.presign_at(
                &Url::parse("wss://h/").unwrap(),
                UNIX_EPOCH - Duration::from_secs(1)
            ),
            Err(PresignError::TimeOutOfRange)
        );
    }
}
