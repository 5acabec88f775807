//! Connecting: resolve credentials once, presign at the moment of dialling, TCP + TLS + upgrade,
//! learn the server's time from the answer, and retry once when the clock was the problem.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use http::Response;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use url::Url;

use crate::proto::clock::{Clock, OffsetUpdate};
use crate::proto::presign::{PresignedUrl, Presigner};
use crate::proto::redact::RedactedUrl;
use crate::proto::skew::{observe_date_header, SKEW_THRESHOLD};

use super::config::{PlaintextPolicy, SessionConfig};
use super::error::{Error, ErrorKind};
use super::rejection::{Cause, Rejection};
use super::session::{OffsetLearned, OffsetSource, Session};
use super::stream::MaybeTls;

/// What to connect to, as whom, and on which clock.
///
/// ```
/// use aws_credential_types::Credentials;
/// use sigv4_ws::transport::ConnectRequest;
/// use sigv4_ws::Clock;
///
/// let url = url::Url::parse("https://streaming-rekognition.us-east-1.amazonaws.com/start-face-liveness-session-websocket?session-id=x").unwrap();
/// let request = ConnectRequest::new(url, "us-east-1", "rekognition")
///     .credentials(Credentials::new("AKID", "secret", None, None, "static"))
///     .clock(Clock::system());
/// ```
#[derive(Clone)]
pub struct ConnectRequest {
    pub(crate) url: Url,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) credentials: Option<SharedCredentialsProvider>,
    pub(crate) clock: Clock,
}

impl ConnectRequest {
    /// The unsigned endpoint URL (`https://`/`wss://`, or `http://`/`ws://` to loopback), with the
    /// service's query parameters; the region and signing name (`transcribe`, `rekognition`).
    pub fn new(url: Url, region: impl Into<String>, service: impl Into<String>) -> Self {
        ConnectRequest {
            url,
            region: region.into(),
            service: service.into(),
            credentials: None,
            clock: Clock::system(),
        }
    }

    /// The credentials provider (a static [`Credentials`] works, as does aws-config's default
    /// chain). Credentials are resolved when connecting and pinned for the whole session.
    pub fn credentials(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// The clock (and its offset) used for the URL and every frame. Default: a fresh system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The endpoint URL (unsigned).
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("url", &RedactedUrl(&self.url))
            .field("region", &self.region)
            .field("service", &self.service)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Opens streaming sessions: one entry point, configured by [`SessionConfig`].
#[derive(Clone, Debug)]
pub struct Connector {
    config: SessionConfig,
}

impl Connector {
    /// A connector with this configuration.
    pub fn new(config: SessionConfig) -> Self {
        Connector { config }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Connects: resolves credentials, presigns the URL now (never earlier), upgrades, learns
    /// the clock offset from the response, and retries once with a corrected clock if the
    /// rejection was about time. Other rejections fail at once with a typed error.
    pub async fn connect(&self, request: ConnectRequest) -> Result<Session, Error> {
        let provider = request.credentials.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Credentials,
                "no credentials provider was given to ConnectRequest::credentials",
            )
        })?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            Error::new(
                ErrorKind::Credentials,
                format!("could not load credentials: {e}"),
            )
            .with_source(e)
        })?;
        check_plaintext(&request.url, self.config.plaintext)?;
        let dialer = Arc::new(Dialer {
            config: self.config.clone(),
            tls: self.config.tls.clone(),
            url: request.url.clone(),
            presigner: Presigner::new(
                credentials.clone(),
                request.region.clone(),
                request.service.clone(),
            )
            .expires_in(self.config.url_expires_in),
            credentials,
            region: request.region,
            service: request.service,
            clock: request.clock,
        });
        let mut retries_left = self.config.skew_retries;
        let mut learned = Vec::new();
        loop {
            match dialer.dial(&mut learned).await {
                Ok(established) => {
                    return Ok(Session::start(dialer, established, retries_left, learned));
                }
                Err(DialError::Retryable(error)) if retries_left > 0 => {
                    retries_left -= 1;
                    tracing::info!(error = %error, offset_ms = dialer.clock.offset_millis(), "clock corrected; presigning again");
                }
                Err(DialError::Retryable(error)) | Err(DialError::Fatal(error)) => {
                    return Err(error)
                }
            }
        }
    }
}

/// Whether a URL that the server sees `age_millis` old (negative: signed in its future) will be
/// refused: older than its expiry or the skew threshold, or more than the threshold early.
fn url_is_stale(
    age_millis: i64,
    sent_at: SystemTime,
    received_at: SystemTime,
    expires_in: std::time::Duration,
) -> bool {
    let half_trip = received_at.duration_since(sent_at).unwrap_or_default() / 2;
    let uncertainty = 1_000 + i64::try_from(half_trip.as_millis()).unwrap_or(i64::MAX);
    let threshold = i64::try_from(SKEW_THRESHOLD.as_millis()).unwrap_or(i64::MAX);
    let expires = i64::try_from(expires_in.as_millis()).unwrap_or(i64::MAX);
    let expired = age_millis.saturating_sub(uncertainty) >= threshold.min(expires);
    let too_early = age_millis.saturating_neg().saturating_sub(uncertainty) >= threshold;
    expired || too_early
}

fn check_plaintext(url: &Url, policy: PlaintextPolicy) -> Result<(), Error> {
    if !matches!(url.scheme(), "ws" | "http") || policy == PlaintextPolicy::Allow {
        return Ok(());
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false)
        }
        None => false,
    };
    if loopback {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::PlaintextRefused,
            format!(
                "refusing plain ws:// to non-loopback host {}: the presigned URL would travel unencrypted",
                url.host_str().unwrap_or("")
            ),
        ))
    }
}

/// Everything needed to (re)open the connection of one session.
pub(crate) struct Dialer {
    pub(crate) config: SessionConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    url: Url,
    presigner: Presigner,
    pub(crate) credentials: Credentials,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) clock: Clock,
}

/// An open WebSocket and the URL it was opened with.
pub(crate) struct Established {
    pub(crate) ws: WebSocketStream<MaybeTls>,
    pub(crate) presigned: PresignedUrl,
}

pub(crate) enum DialError {
    /// A clock problem whose evidence corrected the clock: presign again.
    Retryable(Error),
    Fatal(Error),
}

impl Dialer {
    pub(crate) fn ws_config(&self) -> WebSocketConfig {
        let max = self.config.max_incoming_message;
        WebSocketConfig::default()
            .read_buffer_size(self.config.read_buffer_size.max(1024))
            .write_buffer_size(self.config.write_buffer_size)
            .max_write_buffer_size(
                self.config
                    .write_buffer_size
                    .saturating_add(64 * 1024 * 1024),
            )
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }

    /// One connection attempt. Evidence of the server's time is applied to the clock, and
    /// each change is appended to `learned`.
    pub(crate) async fn dial(
        &self,
        learned: &mut Vec<OffsetLearned>,
    ) -> Result<Established, DialError> {
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, self.dial_inner(learned)).await {
            Ok(result) => result,
            Err(_) => Err(DialError::Fatal(Error::timeout(
                ErrorKind::ConnectTimeout,
                "the WebSocket upgrade did not complete",
                timeout,
            ))),
        }
    }

    async fn dial_inner(&self, learned: &mut Vec<OffsetLearned>) -> Result<Established, DialError> {
        let fatal = DialError::Fatal;
        let presigned = self
            .presigner
            .presign(&self.url, &self.clock)
            .map_err(|e| {
                fatal(Error::new(ErrorKind::InvalidRequest, e.to_string()).with_source(e))
            })?;
        let url = presigned.url();
        let host = url
            .host_str()
            .ok_or_else(|| fatal(Error::new(ErrorKind::InvalidRequest, "the URL has no host")))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let connect_host = host.trim_start_matches('[').trim_end_matches(']');
        tracing::debug!(url = %RedactedUrl(url), "connecting");
        let tcp = TcpStream::connect((connect_host, port))
            .await
            .map_err(|e| fatal(Error::io(&format!("could not connect to {host}:{port}"), e)))?;
        let _ = tcp.set_nodelay(true);
        let stream = if url.scheme() == "wss" {
            let server_name = rustls::pki_types::ServerName::try_from(connect_host.to_owned())
                .map_err(|e| {
                    fatal(
                        Error::new(ErrorKind::Tls, format!("invalid TLS server name {host}"))
                            .with_source(e),
                    )
                })?;
            let tls = tokio_rustls::TlsConnector::from(self.tls_config().map_err(fatal)?);
            let stream = tls.connect(server_name, tcp).await.map_err(|e| {
                fatal(
                    Error::new(
                        ErrorKind::Tls,
                        format!("TLS handshake with {host} failed: {e}"),
                    )
                    .with_source(e),
                )
            })?;
            MaybeTls::Tls(stream)
        } else {
            MaybeTls::Plain(tcp)
        };
        let sent_at = self.clock.source_now();
        let result = tokio_tungstenite::client_async_with_config(
            url.as_str(),
            stream,
            Some(self.ws_config()),
        )
        .await;
        let received_at = self.clock.source_now();
        match result {
            Ok((ws, response)) => {
                if let Some(update) = self.learn_from_date(response.headers(), sent_at, received_at)
                {
                    learned.push(OffsetLearned::new(OffsetSource::UpgradeDate, update));
                    // The URL was signed with the old offset. Seen from the server it is
                    // `delta` old (negative: from the future). If that puts it past its expiry or
                    // near the edge of the 5-minute window, the server will reject the stream:
                    // reconnect now rather than after the first frame. The Date header's
                    // one-second resolution and the round trip are allowed for, so a host just
                    // inside the window is not re-presigned for nothing.
                    if url_is_stale(
                        update.delta_millis(),
                        sent_at,
                        received_at,
                        self.config.url_expires_in,
                    ) {
                        return Err(DialError::Retryable(
                            Error::new(
                                ErrorKind::ClockSkew,
                                format!(
                                    "the server's Date header shows this host's clock is off by {} ms",
                                    update.current_millis
                                ),
                            )
                            .with_offset(update.current_millis),
                        ));
                    }
                }
                Ok(Established { ws, presigned })
            }
            Err(WsError::Http(response)) => {
                Err(self.refused(&response, sent_at, received_at, learned))
            }
            Err(e) => Err(fatal(
                Error::new(ErrorKind::Io, format!("WebSocket upgrade failed: {e}")).with_source(e),
            )),
        }
    }

    fn learn_from_date(
        &self,
        headers: &http::HeaderMap,
        sent_at: SystemTime,
        received_at: SystemTime,
    ) -> Option<OffsetUpdate> {
        let date = headers.get(http::header::DATE)?.to_str().ok()?;
        if headers.contains_key(http::header::AGE) {
            return None;
        }
        match observe_date_header(date, sent_at, received_at) {
            Ok(observation) => {
                let update = self.clock.observe(&observation);
                if update.changed() {
                    tracing::info!(
                        offset_ms = update.current_millis,
                        previous_ms = update.previous_millis,
                        "clock offset learned from the Date header"
                    );
                    Some(update)
                } else {
                    None
                }
            }
            Err(e) => {
                tracing::trace!(error = %e, "Date header not usable");
                None
            }
        }
    }

    fn refused(
        &self,
        response: &Response<Option<Vec<u8>>>,
        sent_at: SystemTime,
        received_at: SystemTime,
        learned: &mut Vec<OffsetLearned>,
    ) -> DialError {
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok());
        let body = response.body().as_deref().unwrap_or_default();
        let rejection = Rejection::from_http(status, error_type, body);
        let from_date = self.learn_from_date(response.headers(), sent_at, received_at);
        if let Some(update) = from_date {
            learned.push(OffsetLearned::new(OffsetSource::RejectedUpgrade, update));
        }
        let from_message = match rejection.cause {
            Cause::Skew(skew) => {
                let update = self.clock.observe(&skew.observation(received_at));
                update.changed().then(|| {
                    learned.push(OffsetLearned::new(OffsetSource::RejectedUpgrade, update));
                    update
                })
            }
            _ => None,
        };
        let offset = self.clock.offset_millis();
        let big_date_change = from_date
            .is_some_and(|u| u.delta_millis().unsigned_abs() >= SKEW_THRESHOLD.as_millis() as u64);
        let skew_cause = matches!(rejection.cause, Cause::Skew(_))
            || (big_date_change
                && crate::proto::skew::is_clock_skew_error_code(&rejection.exception_type))
            || (big_date_change && status == 403);
        let corrected = from_message.is_some() || from_date.is_some();
        let error = if skew_cause {
            let mut e = rejection
                .into_error()
                .with_status(status)
                .with_offset(offset);
            e = Error::new(ErrorKind::ClockSkew, e.message().to_owned())
                .with_status(status)
                .with_offset(offset)
                .with_exception(e.exception_type().unwrap_or_default().to_owned());
            e
        } else {
            let kind_error = rejection.into_error().with_status(status);
            if kind_error.kind() == &ErrorKind::Service {
                Error::new(ErrorKind::UpgradeRejected, kind_error.message().to_owned())
                    .with_status(status)
                    .with_exception(kind_error.exception_type().unwrap_or_default().to_owned())
            } else {
                kind_error
            }
        };
        if skew_cause && corrected {
            DialError::Retryable(error)
        } else {
            DialError::Fatal(error)
        }
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        if let Some(config) = &self.tls {
            return Ok(config.clone());
        }
        default_tls_config()
    }
}

/// rustls with the ring provider and the webpki (Mozilla) roots, HTTP/1.1 ALPN. Built once.
fn default_tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(|e| {
            Error::new(
                ErrorKind::Tls,
                format!("could not build the default TLS configuration: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_only_to_loopback_by_default() {
        let ok = [
            "ws://127.0.0.1:9/x",
            "http://localhost:9/",
            "ws://[::1]:9/",
            "wss://example.com/",
            "https://example.com/",
        ];
        for u in ok {
            assert!(
                check_plaintext(&Url::parse(u).unwrap(), PlaintextPolicy::LoopbackOnly).is_ok(),
                "{u}"
            );
        }
        let refused = check_plaintext(
            &Url::parse("ws://example.com/").unwrap(),
            PlaintextPolicy::LoopbackOnly,
        )
        .unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::PlaintextRefused);
        assert!(check_plaintext(
            &Url::parse("ws://example.com/").unwrap(),
            PlaintextPolicy::Allow
        )
        .is_ok());
        assert!(check_plaintext(
            &Url::parse("ws://10.0.0.1/").unwrap(),
            PlaintextPolicy::LoopbackOnly
        )
        .is_err());
    }

    #[test]
    fn stale_urls_are_judged_with_the_date_headers_resolution() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
        let t2 = t + std::time::Duration::from_millis(40);
        let expiry = std::time::Duration::from_secs(60);
        assert!(!url_is_stale(0, t, t2, expiry));
        assert!(!url_is_stale(59_000, t, t2, expiry), "inside the expiry");
        assert!(url_is_stale(62_000, t, t2, expiry), "past the 60 s expiry");
        assert!(
            !url_is_stale(-240_900, t, t2, expiry),
            "4 min early, within the resolution"
        );
        assert!(
            url_is_stale(-242_000, t, t2, expiry),
            "more than 4 min early"
        );
        let long = std::time::Duration::from_secs(300);
        assert!(
            !url_is_stale(240_500, t, t2, long),
            "4 min old with a 300 s expiry"
        );
        assert!(url_is_stale(250_000, t, t2, long));
    }

    #[test]
    fn default_tls_config_builds() {
        assert!(default_tls_config().is_ok());
    }
}
