//! Transcribe's exceptions as one typed error.

use crate::services::error::service_error;

service_error! {
    /// What went wrong with a Transcribe stream.
    ///
    /// The service's five modeled exceptions have their own variants; a clock, signature or
    /// credential problem, a timeout or a broken connection stays a [`transport::Error`] in
    /// [`TranscribeError::Transport`] (so `Signature expired` is `is_clock_skew()`, not
    /// `BadRequest`). The predicates below look inside.
    ///
    /// [`transport::Error`]: crate::transport::Error
    pub enum TranscribeError {
        /// The request was refused before connecting.
        Validation(ValidationError) => "the request was not sent",
        exceptions {
            /// `BadRequestException` (400): a parameter the service refused, no audio for 15 seconds, …
            BadRequest("BadRequestException") => "check the request parameters and the audio format",
            /// `LimitExceededException` (429): too many streams, or the stream ran too long.
            LimitExceeded("LimitExceededException") => "too many concurrent streams or a stream too long; retry later",
            /// `InternalFailureException` (500).
            InternalFailure("InternalFailureException") => "retry with a new stream",
            /// `ConflictException` (409): a stream with the same session id was started.
            Conflict("ConflictException") => "a stream with this session id was started elsewhere; use a new session id",
            /// `ServiceUnavailableException` (503).
            ServiceUnavailable("ServiceUnavailableException") => "retry later",
        }
        auth_exceptions {}
        /// Worth retrying with a new stream later: throttling, internal failure, unavailability,
        /// timeouts and dropped connections.
        retryable { LimitExceeded, InternalFailure, ServiceUnavailable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{self, ErrorKind};

    #[test]
    fn every_modeled_exception_has_its_variant() {
        // (exception type, variant, advice, worth retrying)
        let cases = [
            (
                "BadRequestException",
                "BadRequest",
                "check the request parameters and the audio format",
                false,
            ),
            (
                "LimitExceededException",
                "LimitExceeded",
                "too many concurrent streams or a stream too long; retry later",
                true,
            ),
            (
                "InternalFailureException",
                "InternalFailure",
                "retry with a new stream",
                true,
            ),
            (
                "ConflictException",
                "Conflict",
                "a stream with this session id was started elsewhere; use a new session id",
                false,
            ),
            (
                "ServiceUnavailableException",
                "ServiceUnavailable",
                "retry later",
                true,
            ),
        ];
        for (exception_type, variant, advice, retryable) in cases {
            let e = TranscribeError::from_exception(exception_type, "text");
            assert_eq!(e.to_string(), format!("{exception_type}: text ({advice})"));
            assert!(format!("{e:?}").starts_with(&format!("{variant} ")));
            assert_eq!(e.exception_type(), Some(exception_type));
            assert_eq!(e.is_retryable(), retryable, "{exception_type}");
            assert!(!e.is_clock_skew() && !e.is_auth());
        }
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
        // Transcribe models no auth exception: a signature mismatch stays the transport's.
        let mismatch: TranscribeError = transport::Error::new(
            ErrorKind::SignatureMismatch,
            "BadRequestException: the signature we calculated does not match",
        )
        .with_exception("BadRequestException")
        .into();
        assert!(matches!(mismatch, TranscribeError::Transport(_)));
        assert!(mismatch.is_auth());
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
    fn refused_requests_say_so() {
        let v: TranscribeError = crate::services::ValidationError::new("sample-rate", "x").into();
        assert_eq!(v.validation_error().map(|e| e.field), Some("sample-rate"));
        assert_eq!(
            v.to_string(),
            "the request was not sent: invalid `sample-rate`: x"
        );
    }
}
