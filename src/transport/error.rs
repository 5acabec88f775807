//! The transport layer's one error type, with predicates for what went wrong and what to do.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// What kind of failure an [`Error`] is. Match on it or use the `is_*` predicates.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be built or presigned (bad URL, bad region, expiry above 300 s).
    InvalidRequest,
    /// `ws://` to a non-loopback host without opting in.
    PlaintextRefused,
    /// The credentials provider failed.
    Credentials,
    /// TCP, TLS or WebSocket I/O failed.
    Io,
    /// TLS could not be set up or the server's certificate was not trusted.
    Tls,
    /// Connect (TCP + TLS + upgrade) did not finish in time.
    ConnectTimeout,
    /// The server sent nothing for the idle timeout.
    IdleTimeout,
    /// A frame could not be written in time: the server stopped reading.
    WriteTimeout,
    /// After the end of the stream, the server neither closed it nor finished within
    /// [`SessionConfig::final_results_timeout`](super::SessionConfig::final_results_timeout):
    /// its last results may be missing.
    FinalResultsTimeout,
    /// The rejection was caused by a clock difference that retries did not cure.
    ClockSkew,
    /// The server computed a different signature (wrong secret, wrong signing name, region or host).
    SignatureMismatch,
    /// The server did not accept the credentials (unknown access key, access denied).
    Auth,
    /// The upgrade was refused with an HTTP status that is not an auth or skew problem.
    UpgradeRejected,
    /// The service sent an exception or error message.
    Service,
    /// The server broke the event-stream or WebSocket protocol (bad CRC, oversized frame, garbage).
    Protocol,
    /// The connection closed before the stream ended.
    ConnectionClosed,
    /// The session was already closed or finished by this side.
    Closed,
}

/// An error of the WebSocket transport.
///
/// `Display` is one line that says what happened and what to do; [`StdError::source`] gives the
/// underlying cause where there is one. No secret, token or signature is ever included.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    exception_type: Option<String>,
    http_status: Option<u16>,
    close_code: Option<u16>,
    offset_millis: Option<i64>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            exception_type: None,
            http_status: None,
            close_code: None,
            offset_millis: None,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_exception(mut self, exception_type: impl Into<String>) -> Self {
        self.exception_type = Some(exception_type.into());
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub(crate) fn with_close_code(mut self, code: u16) -> Self {
        self.close_code = Some(code);
        self
    }

    pub(crate) fn with_offset(mut self, offset_millis: i64) -> Self {
        self.offset_millis = Some(offset_millis);
        self
    }

    pub(crate) fn io(context: &str, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{context}: {source}")).with_source(source)
    }

    pub(crate) fn timeout(kind: ErrorKind, what: &str, after: Duration) -> Self {
        Error::new(kind, format!("{what} after {} ms", after.as_millis()))
    }

    /// An error the service reported in an exception or error frame.
    pub fn service(exception_type: impl Into<String>, message: impl Into<String>) -> Self {
        let exception_type = exception_type.into();
        let message = message.into();
        Error::new(ErrorKind::Service, format!("{exception_type}: {message}"))
            .with_exception(exception_type)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The service's exception type (`BadRequestException`, `InvalidSignatureException`, …), if any.
    pub fn exception_type(&self) -> Option<&str> {
        self.exception_type.as_deref()
    }

    /// The human-readable message (for a service error: the service's own message).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of a refused upgrade.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The WebSocket close code, when the server closed the connection.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The clock offset in force when the error happened, when the clock was involved.
    pub fn clock_offset_millis(&self) -> Option<i64> {
        self.offset_millis
    }

    /// The rejection was about time: a skewed clock, or signatures older than the 5-minute window.
    pub fn is_clock_skew(&self) -> bool {
        self.kind == ErrorKind::ClockSkew
    }

    /// A connect, idle or write timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectTimeout
                | ErrorKind::IdleTimeout
                | ErrorKind::WriteTimeout
                | ErrorKind::FinalResultsTimeout
        )
    }

    /// Credentials were refused or could not be loaded, or the signature did not match.
    pub fn is_auth(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Auth | ErrorKind::SignatureMismatch | ErrorKind::Credentials
        )
    }

    /// The signature the server computed differs from ours.
    pub fn is_signature_mismatch(&self) -> bool {
        self.kind == ErrorKind::SignatureMismatch
    }

    /// The service reported an exception.
    pub fn is_service(&self) -> bool {
        self.kind == ErrorKind::Service
    }

    /// The server broke the protocol.
    pub fn is_protocol(&self) -> bool {
        self.kind == ErrorKind::Protocol
    }

    /// The connection is gone (closed by the server, or already closed here).
    pub fn is_closed(&self) -> bool {
        matches!(self.kind, ErrorKind::ConnectionClosed | ErrorKind::Closed)
    }

    fn advice(&self) -> &'static str {
        match self.kind {
            ErrorKind::InvalidRequest => "check the endpoint URL, region and parameters",
            ErrorKind::PlaintextRefused => {
                "use wss://, or set PlaintextPolicy::Allow if you really mean to send a presigned URL in clear text"
            }
            ErrorKind::Credentials => "check the credential chain (environment, profile, SSO, container or instance role)",
            ErrorKind::Io => "check the network path to the endpoint",
            ErrorKind::Tls => "check the endpoint's certificate, or supply a rustls ClientConfig that trusts its root",
            ErrorKind::ConnectTimeout => "check the endpoint and network, or raise SessionConfig::connect_timeout",
            ErrorKind::IdleTimeout => "the server went silent; reconnect, or raise SessionConfig::idle_timeout",
            ErrorKind::WriteTimeout => "the server stopped reading; reconnect, or raise SessionConfig::write_timeout",
            ErrorKind::FinalResultsTimeout => {
                "the last results may be missing; raise SessionConfig::final_results_timeout if the service needs longer to finish"
            }
            ErrorKind::ClockSkew => {
                "fix the host clock or set the Clock offset; for pre-recorded media, send at real-time pace"
            }
            ErrorKind::SignatureMismatch => {
                "check the secret key, the region and signing name, and that the signed Host matches the endpoint"
            }
            ErrorKind::Auth => "check the access key and the IAM permissions for streaming",
            ErrorKind::UpgradeRejected => "check the endpoint path and the request parameters",
            ErrorKind::Service => "see the service's message",
            ErrorKind::Protocol => "the peer sent malformed data; reconnect and report it if it persists",
            ErrorKind::ConnectionClosed => "reconnect to continue the stream",
            ErrorKind::Closed => "open a new session",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(status) = self.http_status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(code) = self.close_code {
            write!(f, " (close code {code})")?;
        }
        if self.kind != ErrorKind::Service {
            write!(f, "; {}", self.advice())?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
