//! The typed error of a service, declared once for both: [`service_error!`] turns a table of
//! the exceptions a service models into its error enum, and [`service_exception`] decides which
//! transport errors are such exceptions.

use crate::transport::{self, ErrorKind};

/// The exception type of a transport error that is one of the service's own exceptions and so
/// becomes a typed variant; `None` keeps it a transport error.
///
/// An exception the transport classified as a plain service error always is. A clock-skew
/// rejection never is, whatever its type: it needs a clock fix, not a request fix. Auth and
/// signature rejections are only for a service that models auth exceptions itself (Face
/// Liveness has `AccessDeniedException` and `InvalidSignatureException`), and only when their
/// type is one the service models; a service that does not (Transcribe) leaves them to the
/// transport error, whose `is_auth()` explains them.
pub(crate) fn service_exception<'e>(
    error: &'e transport::Error,
    modeled: &[&str],
    models_auth: bool,
) -> Option<&'e str> {
    let exception_type = error.exception_type()?;
    let typed = match error.kind() {
        ErrorKind::Service => true,
        ErrorKind::Auth | ErrorKind::SignatureMismatch => {
            models_auth && modeled.contains(&exception_type)
        }
        _ => false,
    };
    typed.then_some(exception_type)
}

/// Strips the `"<ExceptionType>: "` prefix the transport puts before a service's own message.
pub(crate) fn service_message(error: &transport::Error) -> String {
    let message = error.message();
    match error.exception_type() {
        Some(exception_type) => message
            .strip_prefix(exception_type)
            .and_then(|rest| rest.strip_prefix(": "))
            .unwrap_or(message)
            .to_owned(),
        None => message.to_owned(),
    }
}

/// Whether a transport failure may pass with a new stream: a timeout or a dropped connection.
pub(crate) fn is_retryable_transport(error: &transport::Error) -> bool {
    error.is_timeout() || matches!(error.kind(), ErrorKind::ConnectionClosed | ErrorKind::Io)
}

/// Declares a service's error enum from the exceptions it models.
///
/// Each exception becomes a `Variant { message }` that displays as
/// `"<ExceptionType>: <message> (<advice>)"`. The enum also gets the variant for a request
/// refused before sending (displayed as `"<not sent>: <reason>"`), `Unknown` for other
/// exception types, `MalformedEvent` and `Transport`; `from_exception`, `exception_type` and
/// the `is_*` predicates; and conversions from [`ValidationError`](crate::services::ValidationError),
/// [`EventError`](crate::services::EventError) and [`transport::Error`] (see
/// [`service_exception`]). Auth exceptions are listed apart: `is_auth()` is true for them.
macro_rules! service_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(#[$refused_meta:meta])*
            $refused:ident(ValidationError) => $not_sent:literal,
            exceptions {
                $($(#[$variant_meta:meta])* $variant:ident($wire:literal) => $advice:literal,)*
            }
            auth_exceptions {
                $($(#[$auth_meta:meta])* $auth:ident($auth_wire:literal) => $auth_advice:literal,)*
            }
            $(#[$retryable_meta:meta])*
            retryable { $($retryable:ident),* $(,)? }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $name {
            $(#[$refused_meta])*
            $refused($crate::services::ValidationError),
            $(
                $(#[$variant_meta])*
                $variant {
                    /// The service's message.
                    message: String,
                },
            )*
            $(
                $(#[$auth_meta])*
                $auth {
                    /// The service's message.
                    message: String,
                },
            )*
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
            Transport($crate::transport::Error),
        }

        impl $name {
            const EXCEPTIONS: &'static [&'static str] = &[$($wire,)* $($auth_wire,)*];
            const AUTH_EXCEPTIONS: &'static [&'static str] = &[$($auth_wire,)*];

            /// The typed error for an exception type and message.
            pub fn from_exception(exception_type: &str, message: impl Into<String>) -> Self {
                let message = message.into();
                match exception_type {
                    $($wire => $name::$variant { message },)*
                    $($auth_wire => $name::$auth { message },)*
                    other => $name::Unknown {
                        exception_type: other.to_owned(),
                        message,
                    },
                }
            }

            /// The exception type (the service's `:exception-type`), for service errors.
            pub fn exception_type(&self) -> Option<&str> {
                match self {
                    $($name::$variant { .. } => Some($wire),)*
                    $($name::$auth { .. } => Some($auth_wire),)*
                    $name::Unknown { exception_type, .. } => Some(exception_type),
                    $name::Transport(e) => e.exception_type(),
                    $name::$refused(_) | $name::MalformedEvent { .. } => None,
                }
            }

            /// The transport error, when this is one.
            pub fn transport_error(&self) -> Option<&$crate::transport::Error> {
                match self {
                    $name::Transport(e) => Some(e),
                    _ => None,
                }
            }

            /// The validation error, when the request was refused before being sent.
            pub fn validation_error(&self) -> Option<&$crate::services::ValidationError> {
                match self {
                    $name::$refused(e) => Some(e),
                    _ => None,
                }
            }

            /// The clock was the problem (see
            /// [`transport::Error::is_clock_skew`](crate::transport::Error::is_clock_skew)).
            pub fn is_clock_skew(&self) -> bool {
                self.transport_error()
                    .is_some_and($crate::transport::Error::is_clock_skew)
            }

            /// Credentials, permissions or signatures were the problem (see
            /// [`transport::Error::is_auth`](crate::transport::Error::is_auth)).
            pub fn is_auth(&self) -> bool {
                match self {
                    $($name::$auth { .. } => true,)*
                    $name::Transport(e) => e.is_auth(),
                    _ => false,
                }
            }

            /// A connect, idle or write timeout (see
            /// [`transport::Error::is_timeout`](crate::transport::Error::is_timeout)).
            pub fn is_timeout(&self) -> bool {
                self.transport_error()
                    .is_some_and($crate::transport::Error::is_timeout)
            }

            $(#[$retryable_meta])*
            pub fn is_retryable(&self) -> bool {
                match self {
                    $($name::$retryable { .. } => true,)*
                    $name::Transport(e) => $crate::services::error::is_retryable_transport(e),
                    _ => false,
                }
            }
        }

        impl From<$crate::services::ValidationError> for $name {
            fn from(e: $crate::services::ValidationError) -> Self {
                $name::$refused(e)
            }
        }

        impl From<$crate::services::EventError> for $name {
            fn from(e: $crate::services::EventError) -> Self {
                match e {
                    $crate::services::EventError::Exception {
                        exception_type,
                        message,
                    } => $name::from_exception(&exception_type, message),
                    $crate::services::EventError::Malformed { event_type, reason } => {
                        $name::MalformedEvent { event_type, reason }
                    }
                }
            }
        }

        /// The service's own exceptions become typed variants; clock skew and every other
        /// transport failure stay [`Transport`](Self::Transport) errors.
        impl From<$crate::transport::Error> for $name {
            fn from(e: $crate::transport::Error) -> Self {
                let exception = $crate::services::error::service_exception(
                    &e,
                    $name::EXCEPTIONS,
                    !$name::AUTH_EXCEPTIONS.is_empty(),
                );
                match exception {
                    Some(exception_type) => $name::from_exception(
                        exception_type,
                        $crate::services::error::service_message(&e),
                    ),
                    None => $name::Transport(e),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $name::$refused(e) => write!(f, "{}: {}", $not_sent, e),
                    $($name::$variant { message } => {
                        write!(f, "{}: {} ({})", $wire, message, $advice)
                    })*
                    $($name::$auth { message } => {
                        write!(f, "{}: {} ({})", $auth_wire, message, $auth_advice)
                    })*
                    $name::Unknown {
                        exception_type,
                        message,
                    } => write!(f, "{exception_type}: {message}"),
                    $name::MalformedEvent { event_type, reason } => write!(
                        f,
                        "the server sent a {event_type} event that could not be read: {reason}"
                    ),
                    $name::Transport(e) => std::fmt::Display::fmt(e, f),
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $name::$refused(e) => Some(e),
                    $name::Transport(e) => Some(e),
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use service_error;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::{EventError, ValidationError};

    service_error! {
        /// A service for the tests.
        pub enum TestError {
            /// Refused before sending.
            Refused(ValidationError) => "not sent",
            exceptions {
                /// Throttled.
                Throttled("ThrottlingException") => "retry later",
                /// Not found.
                NotFound("NotFoundException") => "check the id",
            }
            auth_exceptions {
                /// Denied.
                Denied("AccessDeniedException") => "allow it",
            }
            /// Throttling passes.
            retryable { Throttled }
        }
    }

    #[test]
    fn exceptions_display_their_type_message_and_advice() {
        let e = TestError::from_exception("ThrottlingException", "slow down");
        assert_eq!(
            e.to_string(),
            "ThrottlingException: slow down (retry later)"
        );
        assert!(e.is_retryable() && !e.is_auth());
        let denied = TestError::from_exception("AccessDeniedException", "no");
        assert_eq!(denied.to_string(), "AccessDeniedException: no (allow it)");
        assert!(denied.is_auth() && !denied.is_retryable());
        assert_eq!(denied.exception_type(), Some("AccessDeniedException"));
    }

    #[test]
    fn unknown_exceptions_keep_type_and_message() {
        let e = TestError::from_exception("UnrecognizedClientException", "who?");
        assert!(matches!(&e, TestError::Unknown { exception_type, message }
            if exception_type == "UnrecognizedClientException" && message == "who?"));
        assert_eq!(e.exception_type(), Some("UnrecognizedClientException"));
        assert_eq!(e.to_string(), "UnrecognizedClientException: who?");
    }

    #[test]
    fn event_errors_convert() {
        let e: TestError = EventError::Exception {
            exception_type: "ThrottlingException".into(),
            message: "too many".into(),
        }
        .into();
        assert!(matches!(&e, TestError::Throttled { message } if message == "too many"));
        let m: TestError = EventError::Malformed {
            event_type: "X".into(),
            reason: "eof".into(),
        }
        .into();
        assert!(matches!(m, TestError::MalformedEvent { .. }));
        assert!(m.exception_type().is_none());
        assert_eq!(
            m.to_string(),
            "the server sent a X event that could not be read: eof"
        );
    }

    #[test]
    fn validation_errors_convert() {
        let v: TestError = ValidationError::new("sample-rate", "x").into();
        assert_eq!(v.validation_error().map(|e| e.field), Some("sample-rate"));
        assert_eq!(v.to_string(), "not sent: invalid `sample-rate`: x");
        assert!(std::error::Error::source(&v).is_some());
        assert!(v.exception_type().is_none() && !v.is_retryable());
    }

    #[test]
    fn which_transport_errors_are_service_exceptions() {
        let modeled = ["AccessDeniedException", "ThrottlingException"];
        let error = |kind: ErrorKind, exception_type: &str| {
            transport::Error::new(kind, format!("{exception_type}: m"))
                .with_exception(exception_type)
        };
        let service = error(ErrorKind::Service, "NewException");
        assert_eq!(
            service_exception(&service, &modeled, false),
            Some("NewException")
        );
        let denied = error(ErrorKind::Auth, "AccessDeniedException");
        assert_eq!(
            service_exception(&denied, &modeled, true),
            Some("AccessDeniedException")
        );
        assert_eq!(service_exception(&denied, &modeled, false), None);
        let unrecognized = error(ErrorKind::Auth, "UnrecognizedClientException");
        assert_eq!(service_exception(&unrecognized, &modeled, true), None);
        let skew = error(ErrorKind::ClockSkew, "AccessDeniedException");
        assert_eq!(service_exception(&skew, &modeled, true), None);
        let untyped = transport::Error::new(ErrorKind::Service, "no type");
        assert_eq!(service_exception(&untyped, &modeled, true), None);
        assert_eq!(service_message(&denied), "m");
        let typed: TestError = denied.into();
        assert!(matches!(&typed, TestError::Denied { message } if message == "m"));
        let skewed: TestError = skew.into();
        assert!(skewed.is_clock_skew() && skewed.transport_error().is_some());
        let quiet: TestError = transport::Error::new(ErrorKind::IdleTimeout, "quiet").into();
        assert!(quiet.is_timeout() && quiet.is_retryable());
        assert!(is_retryable_transport(&error(ErrorKind::Io, "x")));
    }
}
