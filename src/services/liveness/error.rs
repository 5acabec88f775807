//! Face Liveness exceptions as one typed error.

use std::fmt;

use crate::services::{service_message, ValidationError};
use crate::transport::{self, ErrorKind};

use super::model::EventError;

/// What went wrong with a Face Liveness session.
///
/// Note the two validations: [`LivenessError::InvalidRequest`] is this crate refusing a request
/// before connecting; [`LivenessError::Validation`] is the service's `ValidationException`
/// (bad video, expired session, …).
///
/// A `Signature expired` / `Signature not yet current` rejection stays a
/// [`LivenessError::Transport`] error with `is_clock_skew()` true, even though the service sends
/// it as `InvalidSignatureException`: it needs a clock fix, not a credential fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum LivenessError {
    /// The request (or an event) was refused before being sent.
    InvalidRequest(ValidationError),
    /// `ValidationException`: the video or the session was not acceptable (wrong format or
    /// size, no face, session expired or already used, …).
    Validation {
        /// The service's message.
        message: String,
    },
    /// `InternalServerException`.
    InternalServer {
        /// The service's message.
        message: String,
    },
    /// `ThrottlingException`.
    Throttling {
        /// The service's message.
        message: String,
    },
    /// `ServiceQuotaExceededException`.
    ServiceQuotaExceeded {
        /// The service's message.
        message: String,
    },
    /// `ServiceUnavailableException`.
    ServiceUnavailable {
        /// The service's message.
        message: String,
    },
    /// `SessionNotFoundException`: the session id is unknown (or from another region/account).
    SessionNotFound {
        /// The service's message.
        message: String,
    },
    /// `AccessDeniedException`: the credentials may not start this session.
    AccessDenied {
        /// The service's message.
        message: String,
    },
    /// `InvalidSignatureException` that is not about time: the signature did not match.
    InvalidSignature {
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
    /// Connecting, the clock, credentials, timeouts, the connection.
    Transport(transport::Error),
}

impl LivenessError {
    /// The typed error for an exception type and message.
    pub fn from_exception(exception_type: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        match exception_type {
            "ValidationException" => LivenessError::Validation { message },
            "InternalServerException" => LivenessError::InternalServer { message },
            "ThrottlingException" => LivenessError::Throttling { message },
            "ServiceQuotaExceededException" => LivenessError::ServiceQuotaExceeded { message },
            "ServiceUnavailableException" => LivenessError::ServiceUnavailable { message },
            "SessionNotFoundException" => LivenessError::SessionNotFound { message },
            "AccessDeniedException" => LivenessError::AccessDenied { message },
            "InvalidSignatureException" => LivenessError::InvalidSignature { message },
            other => LivenessError::Unknown {
                exception_type: other.to_owned(),
                message,
            },
        }
    }

    fn is_modeled(exception_type: &str) -> bool {
        !matches!(
            LivenessError::from_exception(exception_type, String::new()),
            LivenessError::Unknown { .. }
        )
    }

    /// The exception type, for service errors.
    pub fn exception_type(&self) -> Option<&str> {
        match self {
            LivenessError::Validation { .. } => Some("ValidationException"),
            LivenessError::InternalServer { .. } => Some("InternalServerException"),
            LivenessError::Throttling { .. } => Some("ThrottlingException"),
            LivenessError::ServiceQuotaExceeded { .. } => Some("ServiceQuotaExceededException"),
            LivenessError::ServiceUnavailable { .. } => Some("ServiceUnavailableException"),
            LivenessError::SessionNotFound { .. } => Some("SessionNotFoundException"),
            LivenessError::AccessDenied { .. } => Some("AccessDeniedException"),
            LivenessError::InvalidSignature { .. } => Some("InvalidSignatureException"),
            LivenessError::Unknown { exception_type, .. } => Some(exception_type),
            LivenessError::Transport(e) => e.exception_type(),
            LivenessError::InvalidRequest(_) | LivenessError::MalformedEvent { .. } => None,
        }
    }

    /// The transport error, when this is one.
    pub fn transport_error(&self) -> Option<&transport::Error> {
        match self {
            LivenessError::Transport(e) => Some(e),
            _ => None,
        }
    }

    /// The validation error, when the request was refused before being sent.
    pub fn validation_error(&self) -> Option<&ValidationError> {
        match self {
            LivenessError::InvalidRequest(e) => Some(e),
            _ => None,
        }
    }

    /// The clock was the problem (see [`transport::Error::is_clock_skew`]).
    pub fn is_clock_skew(&self) -> bool {
        self.transport_error()
            .is_some_and(transport::Error::is_clock_skew)
    }

    /// Credentials, permissions or signatures were the problem.
    pub fn is_auth(&self) -> bool {
        match self {
            LivenessError::AccessDenied { .. } | LivenessError::InvalidSignature { .. } => true,
            LivenessError::Transport(e) => e.is_auth(),
            _ => false,
        }
    }

    /// A connect, idle or write timeout.
    pub fn is_timeout(&self) -> bool {
        self.transport_error()
            .is_some_and(transport::Error::is_timeout)
    }

    /// Worth retrying later (with a new session id: a used one cannot be restarted).
    pub fn is_retryable(&self) -> bool {
        match self {
            LivenessError::InternalServer { .. }
            | LivenessError::Throttling { .. }
            | LivenessError::ServiceUnavailable { .. } => true,
            LivenessError::Transport(e) => {
                e.is_timeout() || matches!(e.kind(), ErrorKind::ConnectionClosed | ErrorKind::Io)
            }
            _ => false,
        }
    }
}

impl From<ValidationError> for LivenessError {
    fn from(e: ValidationError) -> Self {
        LivenessError::InvalidRequest(e)
    }
}

impl From<EventError> for LivenessError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::Exception {
                exception_type,
                message,
            } => LivenessError::from_exception(&exception_type, message),
            EventError::Malformed { event_type, reason } => {
                LivenessError::MalformedEvent { event_type, reason }
            }
        }
    }
}

/// Exception frames become typed variants when their type is one Face Liveness models (the
/// transport may classify `AccessDeniedException` as an auth error and a mismatched
/// `InvalidSignatureException` as a signature error; both still become their variants).
/// Clock-skew rejections and every other transport failure stay [`LivenessError::Transport`].
impl From<transport::Error> for LivenessError {
    fn from(e: transport::Error) -> Self {
        let typed = match e.kind() {
            ErrorKind::Service => true,
            ErrorKind::Auth | ErrorKind::SignatureMismatch => {
                e.exception_type().is_some_and(LivenessError::is_modeled)
            }
            _ => false,
        };
        match e.exception_type() {
            Some(exception_type) if typed => {
                LivenessError::from_exception(exception_type, service_message(&e))
            }
            _ => LivenessError::Transport(e),
        }
    }
}

impl fmt::Display for LivenessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LivenessError::InvalidRequest(e) => write!(f, "not sent: {e}"),
            LivenessError::Validation { message } => write!(
                f,
                "ValidationException: {message} (check the video format and size, and that the session id is fresh)"
            ),
            LivenessError::InternalServer { message } => {
                write!(f, "InternalServerException: {message} (retry with a new session)")
            }
            LivenessError::Throttling { message } => write!(f, "ThrottlingException: {message} (retry later)"),
            LivenessError::ServiceQuotaExceeded { message } => {
                write!(f, "ServiceQuotaExceededException: {message} (raise the quota or retry later)")
            }
            LivenessError::ServiceUnavailable { message } => {
                write!(f, "ServiceUnavailableException: {message} (retry later)")
            }
            LivenessError::SessionNotFound { message } => write!(
                f,
                "SessionNotFoundException: {message} (create the session with CreateFaceLivenessSession in the same region and account)"
            ),
            LivenessError::AccessDenied { message } => write!(
                f,
                "AccessDeniedException: {message} (allow rekognition:StartFaceLivenessSession for these credentials)"
            ),
            LivenessError::InvalidSignature { message } => write!(
                f,
                "InvalidSignatureException: {message} (check the secret key, region and signing name)"
            ),
            LivenessError::Unknown { exception_type, message } => write!(f, "{exception_type}: {message}"),
            LivenessError::MalformedEvent { event_type, reason } => {
                write!(f, "the server sent a {event_type} event that could not be read: {reason}")
            }
            LivenessError::Transport(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for LivenessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LivenessError::InvalidRequest(e) => Some(e),
            LivenessError::Transport(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELED: [(&str, &str); 8] = [
        ("ValidationException", "Validation"),
        ("InternalServerException", "InternalServer"),
        ("ThrottlingException", "Throttling"),
        ("ServiceQuotaExceededException", "ServiceQuotaExceeded"),
        ("ServiceUnavailableException", "ServiceUnavailable"),
        ("SessionNotFoundException", "SessionNotFound"),
        ("AccessDeniedException", "AccessDenied"),
        ("InvalidSignatureException", "InvalidSignature"),
    ];

    #[test]
    fn every_modeled_exception_has_its_variant() {
        for (exception_type, variant) in MODELED {
            let e = LivenessError::from_exception(exception_type, "text");
            let shown = format!("{e:?}");
            assert!(
                shown.starts_with(&format!("{variant} ")),
                "{exception_type} -> {shown}"
            );
            assert_eq!(e.exception_type(), Some(exception_type));
            assert!(e.to_string().contains("text"));
        }
        assert!(
            matches!(LivenessError::from_exception("ValidationException", "m"), LivenessError::Validation { message } if message == "m")
        );
        assert!(matches!(
            LivenessError::from_exception("SessionNotFoundException", "m"),
            LivenessError::SessionNotFound { .. }
        ));
        assert!(matches!(
            LivenessError::from_exception("InvalidSignatureException", "m"),
            LivenessError::InvalidSignature { .. }
        ));
    }

    #[test]
    fn unknown_exceptions_keep_type_and_message() {
        let e = LivenessError::from_exception("UnrecognizedClientException", "who?");
        assert!(
            matches!(&e, LivenessError::Unknown { exception_type, message }
            if exception_type == "UnrecognizedClientException" && message == "who?")
        );
    }

    #[test]
    fn transport_errors_map_by_kind() {
        for (exception_type, _) in MODELED {
            let e: LivenessError = transport::Error::service(exception_type, "m").into();
            assert_eq!(e.exception_type(), Some(exception_type));
            assert!(e.transport_error().is_none(), "{exception_type}");
        }
        let denied: LivenessError =
            transport::Error::new(ErrorKind::Auth, "AccessDeniedException: no")
                .with_exception("AccessDeniedException")
                .into();
        assert!(matches!(&denied, LivenessError::AccessDenied { message } if message == "no"));
        assert!(denied.is_auth());
        let mismatch: LivenessError = transport::Error::new(
            ErrorKind::SignatureMismatch,
            "InvalidSignatureException: does not match",
        )
        .with_exception("InvalidSignatureException")
        .into();
        assert!(matches!(mismatch, LivenessError::InvalidSignature { .. }));
        let skew: LivenessError = transport::Error::new(
            ErrorKind::ClockSkew,
            "InvalidSignatureException: Signature expired",
        )
        .with_exception("InvalidSignatureException")
        .into();
        assert!(skew.is_clock_skew());
        assert!(matches!(skew, LivenessError::Transport(_)));
        let unrecognized: LivenessError =
            transport::Error::new(ErrorKind::Auth, "UnrecognizedClientException: x")
                .with_exception("UnrecognizedClientException")
                .into();
        assert!(matches!(unrecognized, LivenessError::Transport(_)));
        assert!(unrecognized.is_auth());
        let other: LivenessError = transport::Error::service("NewException", "m").into();
        assert!(matches!(other, LivenessError::Unknown { .. }));
        let io: LivenessError = transport::Error::new(ErrorKind::Io, "reset").into();
        assert!(io.is_retryable());
    }

    #[test]
    fn event_and_validation_errors_convert() {
        let e: LivenessError = EventError::Exception {
            exception_type: "ThrottlingException".into(),
            message: "slow down".into(),
        }
        .into();
        assert!(matches!(e, LivenessError::Throttling { .. }));
        assert!(e.is_retryable());
        let m: LivenessError = EventError::Malformed {
            event_type: "X".into(),
            reason: "r".into(),
        }
        .into();
        assert!(matches!(m, LivenessError::MalformedEvent { .. }));
        let v: LivenessError = ValidationError::new("video-width", "must be positive").into();
        assert_eq!(v.validation_error().map(|e| e.field), Some("video-width"));
        assert!(!v.is_retryable());
    }
}
