//! Transcribe's exceptions as one typed error.

use std::fmt;

use crate::services::{service_message, ValidationError};
use crate::transport::{self, ErrorKind};

use super::model::EventError;

/// What went wrong with a Transcribe stream.
///
/// The service's five modeled exceptions have their own variants; a clock, signature or
/// credential problem, a timeout or a broken connection stays a [`transport::Error`] in
/// [`TranscribeError::Transport`] (so `Signature expired` is `is_clock_skew()`, not
/// `BadRequest`). The predicates below look inside.
#[derive(Debug)]
#[non_exhaustive]
pub enum TranscribeError {
    /// The request was refused before connecting.
    Validation(ValidationError),
    /// `BadRequestException` (400): a parameter the service refused, no audio for 15 seconds, …
    BadRequest {
        /// The service's message.
        message: String,
    },
    /// `LimitExceededException` (429): too many streams, or the stream ran too long.
    LimitExceeded {
        /// The service's message.
        message: String,
    },
    /// `InternalFailureException` (500).
    InternalFailure {
        /// The service's message.
        message: String,
    },
    /// `ConflictException` (409): a stream with the same session id was started.
    Conflict {
        /// The service's message.
        message: String,
    },
    /// `ServiceUnavailableException` (503).
    ServiceUnavailable {
        /// The service's message.
        message: String,
    },
    /// Another exception type.
    Unknown {
        /// The `:exception-type`.
        exception_type: String,
        /// The service's message.
        message: String,
    },
    /// A server event whose payload could not be read.
    MalformedEvent {
        /// Its `:event-type`.
        event_type: String,
        /// What is wrong.
        reason: String,
    },
    /// Connecting, the clock, credentials, signatures, timeouts, the connection.
    Transport(transport::Error),
}

impl TranscribeError {
    /// The typed error for an exception type and message.
    pub fn from_exception(exception_type: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        match exception_type {
            "BadRequestException" => TranscribeError::BadRequest { message },
            "LimitExceededException" => TranscribeError::LimitExceeded { message },
            "InternalFailureException" => TranscribeError::InternalFailure { message },
            "ConflictException" => TranscribeError::Conflict { message },
            "ServiceUnavailableException" => TranscribeError::ServiceUnavailable { message },
            other => TranscribeError::Unknown {
                exception_type: other.to_owned(),
                message,
            },
        }
    }

    /// The exception type (`BadRequestException`, …), for service errors.
    pub fn exception_type(&self) -> Option<&str> {
        match self {
            TranscribeError::BadRequest { .. } => Some("BadRequestException"),
            TranscribeError::LimitExceeded { .. } => Some("LimitExceededException"),
            TranscribeError::InternalFailure { .. } => Some("InternalFailureException"),
            TranscribeError::Conflict { .. } => Some("ConflictException"),
            TranscribeError::ServiceUnavailable { .. } => Some("ServiceUnavailableException"),
            TranscribeError::Unknown { exception_type, .. } => Some(exception_type),
            TranscribeError::Transport(e) => e.exception_type(),
            TranscribeError::Validation(_) | TranscribeError::MalformedEvent { .. } => None,
        }
    }

    /// The transport error, when this is one.
    pub fn transport_error(&self) -> Option<&transport::Error> {
        match self {
            TranscribeError::Transport(e) => Some(e),
            _ => None,
        }
    }

    /// The validation error, when the request was refused before connecting.
    pub fn validation_error(&self) -> Option<&ValidationError> {
        match self {
            TranscribeError::Validation(e) => Some(e),
            _ => None,
        }
    }

    /// The clock was the problem (see [`transport::Error::is_clock_skew`]).
    pub fn is_clock_skew(&self) -> bool {
        self.transport_error()
            .is_some_and(transport::Error::is_clock_skew)
    }

    /// Credentials or signatures were the problem (see [`transport::Error::is_auth`]).
    pub fn is_auth(&self) -> bool {
        self.transport_error()
            .is_some_and(transport::Error::is_auth)
    }

    /// A connect, idle or write timeout (see [`transport::Error::is_timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.transport_error()
            .is_some_and(transport::Error::is_timeout)
    }

    /// Worth retrying with a new stream later: throttling, internal failure, unavailability,
    /// timeouts and dropped connections.
    pub fn is_retryable(&self) -> bool {
        match self {
            TranscribeError::LimitExceeded { .. }
            | TranscribeError::InternalFailure { .. }
            | TranscribeError::ServiceUnavailable { .. } => true,
            TranscribeError::Transport(e) => {
                e.is_timeout() || matches!(e.kind(), ErrorKind::ConnectionClosed | ErrorKind::Io)
            }
            _ => false,
        }
    }
}

impl From<ValidationError> for TranscribeError {
    fn from(e: ValidationError) -> Self {
        TranscribeError::Validation(e)
    }
}

impl From<EventError> for TranscribeError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::Exception {
                exception_type,
                message,
            } => TranscribeError::from_exception(&exception_type, message),
            EventError::Malformed { event_type, reason } => {
                TranscribeError::MalformedEvent { event_type, reason }
            }
        }
    }
}

/// Exception frames the transport classified as plain service errors become typed variants;
/// everything else (clock skew, signature mismatch, auth, I/O, timeouts) stays a transport error.
impl From<transport::Error> for TranscribeError {
    fn from(e: transport::Error) -> Self {
        if e.kind() == &ErrorKind::Service {
            if let Some(exception_type) = e.exception_type() {
                return TranscribeError::from_exception(exception_type, service_message(&e));
            }
        }
        TranscribeError::Transport(e)
    }
}

impl fmt::Display for TranscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranscribeError::Validation(e) => write!(f, "the request was not sent: {e}"),
            TranscribeError::BadRequest { message } => write!(
                f,
                "BadRequestException: {message} (check the request parameters and the audio format)"
            ),
            TranscribeError::LimitExceeded { message } => write!(
                f,
                "LimitExceededException: {message} (too many concurrent streams or a stream too long; retry later)"
            ),
            TranscribeError::InternalFailure { message } => {
                write!(f, "InternalFailureException: {message} (retry with a new stream)")
            }
            TranscribeError::Conflict { message } => write!(
                f,
                "ConflictException: {message} (a stream with this session id was started elsewhere; use a new session id)"
            ),
            TranscribeError::ServiceUnavailable { message } => {
                write!(f, "ServiceUnavailableException: {message} (retry later)")
            }
            TranscribeError::Unknown { exception_type, message } => write!(f, "{exception_type}: {message}"),
            TranscribeError::MalformedEvent { event_type, reason } => write!(
                f,
                "the server sent a {event_type} event that could not be read: {reason}"
            ),
            TranscribeError::Transport(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for TranscribeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TranscribeError::Validation(e) => Some(e),
            TranscribeError::Transport(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_modeled_exception_has_its_variant() {
        let cases = [
            ("BadRequestException", "BadRequest"),
            ("LimitExceededException", "LimitExceeded"),
            ("InternalFailureException", "InternalFailure"),
            ("ConflictException", "Conflict"),
            ("ServiceUnavailableException", "ServiceUnavailable"),
        ];
        for (exception_type, variant) in cases {
            let e = TranscribeError::from_exception(exception_type, "text");
            let shown = format!("{e:?}");
            assert!(shown.starts_with(variant), "{exception_type} -> {shown}");
            assert_eq!(e.exception_type(), Some(exception_type));
            assert!(e.to_string().contains("text"));
            assert!(!e.is_clock_skew());
        }
        assert!(
            matches!(TranscribeError::from_exception("BadRequestException", "m"), TranscribeError::BadRequest { message } if message == "m")
        );
        assert!(matches!(
            TranscribeError::from_exception("LimitExceededException", "m"),
            TranscribeError::LimitExceeded { .. }
        ));
        assert!(matches!(
            TranscribeError::from_exception("InternalFailureException", "m"),
            TranscribeError::InternalFailure { .. }
        ));
        assert!(matches!(
            TranscribeError::from_exception("ConflictException", "m"),
            TranscribeError::Conflict { .. }
        ));
        assert!(matches!(
            TranscribeError::from_exception("ServiceUnavailableException", "m"),
            TranscribeError::ServiceUnavailable { .. }
        ));
    }

    #[test]
    fn unknown_exceptions_keep_type_and_message() {
        let e = TranscribeError::from_exception("UnrecognizedClientException", "bad key");
        assert!(
            matches!(&e, TranscribeError::Unknown { exception_type, message }
            if exception_type == "UnrecognizedClientException" && message == "bad key")
        );
        assert_eq!(e.exception_type(), Some("UnrecognizedClientException"));
    }

    #[test]
    fn transport_service_errors_become_typed() {
        let e: TranscribeError =
            transport::Error::service("ConflictException", "same session id").into();
        assert!(
            matches!(&e, TranscribeError::Conflict { message } if message == "same session id")
        );
        let e: TranscribeError =
            transport::Error::service("BadRequestException", "no audio").into();
        assert!(matches!(&e, TranscribeError::BadRequest { message } if message == "no audio"));
    }

    #[test]
    fn skew_and_other_transport_errors_stay_transport() {
        let skew = transport::Error::new(
            ErrorKind::ClockSkew,
            "BadRequestException: Signature expired",
        )
        .with_exception("BadRequestException");
        let e: TranscribeError = skew.into();
        assert!(e.is_clock_skew());
        assert!(matches!(e, TranscribeError::Transport(_)));
        assert_eq!(e.exception_type(), Some("BadRequestException"));
        let auth: TranscribeError = transport::Error::new(ErrorKind::Auth, "nope").into();
        assert!(auth.is_auth());
        let closed: TranscribeError =
            transport::Error::new(ErrorKind::ConnectionClosed, "gone").into();
        assert!(closed.is_retryable());
        assert!(!closed.is_auth());
        let timeout: TranscribeError =
            transport::Error::new(ErrorKind::IdleTimeout, "quiet").into();
        assert!(timeout.is_timeout());
    }

    #[test]
    fn event_errors_convert() {
        let e: TranscribeError = EventError::Exception {
            exception_type: "LimitExceededException".into(),
            message: "too many".into(),
        }
        .into();
        assert!(matches!(e, TranscribeError::LimitExceeded { .. }));
        assert!(e.is_retryable());
        let m: TranscribeError = EventError::Malformed {
            event_type: "TranscriptEvent".into(),
            reason: "eof".into(),
        }
        .into();
        assert!(matches!(m, TranscribeError::MalformedEvent { .. }));
        assert!(m.exception_type().is_none());
        let v: TranscribeError = ValidationError::new("sample-rate", "x").into();
        assert_eq!(v.validation_error().map(|e| e.field), Some("sample-rate"));
        assert!(v.to_string().contains("sample-rate"));
    }
}
